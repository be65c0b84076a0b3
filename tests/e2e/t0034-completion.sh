#!/bin/sh
# Bash completion on a real study: completions/cpipe.bash is sourced into bash and its function
# called with COMP_WORDS and COMP_CWORD set, as bash does on TAB; every answer comes from
# `cpipe __complete`: commands, options from --help, keys, recipe names, placeholder flags and the
# values globbed from the study.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
command -v bash >/dev/null || fail "bash is needed for this test"
make_study study 01 02 03 "it's 10"
mkdir bin
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$CPIPE_WRAPPER" "$CPIPE" >bin/cpipe
chmod +x bin/cpipe

# complete WORD...: what TAB after the last WORD offers, one candidate per line, in $WORK/out.
complete_words() {
	bash -c '
		source "$1/completions/cpipe.bash"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_cpipe
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' complete "$CPIPE_SOURCE_DIR" "$WORK/bin/cpipe" "$@" >"$WORK/out" 2>"$WORK/err" || fail "completion failed: $(cat "$WORK/err")"
	pass
}

cd study
complete_words r
expect_out "run"
complete_words ""
expect_out_contains "status"
expect_out_contains "init"
grep -q __complete "$WORK/out" && fail "the hidden command is offered"
# Options come from the command's own --help.
complete_words run --k
expect_out "--keep-going"
complete_words status -
expect_out_contains "--verbose"
expect_out_contains "--subject"
grep -qx -- "--jobs" "$WORK/out" && fail "status offers run's --jobs"
pass
# Targets: the keys recipes make; log: recipe names.
complete_words plan t1_
expect_out "t1_brain
t1_fov
t1_reorient"
complete_words log g
expect_out "group_mean"
# Placeholder values from the study's files, in each way the command line takes them.
complete_words run --subject ""
expect_out "01
02
03
it's 10"
complete_words run --subject = 0
expect_out "01
02
03"
complete_words run -p sub
expect_out "subject="
complete_words run -p subject = 01,0
expect_out "01,01
01,02
01,03"
# fsl-pipe's --subject 01 02: after a value, more values or a target (keys and recipes);
# after a target, targets only.
complete_words run --subject 01 ""
expect_out_contains "02"
expect_out_contains "it's 10"
expect_out_contains "t1_fov"
expect_out_contains "reorient"
complete_words run --subject 01 t1_fov ""
expect_out_contains "t1_brain"
grep -qx "02" "$WORK/out" && fail "a value offered after a target: $(cat "$WORK/out")"
pass
# Recipe names are targets; -m takes local or submit.
complete_words plan bra
expect_out "brain"
complete_words run -m ""
expect_out "local
submit"
# A value cpipe cannot know offers nothing; -f and -C leave it to bash's file names.
complete_words run -j ""
expect_no_out
complete_words run -f cpipe.y
expect_out "cpipe.yaml"
cd ..
complete_words status -C stu
expect_out "study"
# Another study, named with -C on the command line.
complete_words run -C study --subject 0
expect_out "01
02
03"
# No study here: no candidates and no error in the prompt.
complete_words run t1
expect_no_out
[ ! -s "$WORK/err" ] || fail "completion printed: $(cat "$WORK/err")"
pass
done_testing
