#!/bin/sh
# A second cpipe run never runs a job a live run holds; Ctrl-C stops the children, exits 130 and
# leaves the jobs marked interrupted for the next run; a dead holder's claim expires.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    in.txt   (raw)
    out.txt  (slow_out)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: slow
    in: [raw]
    out: [slow_out]
    run: "echo start {subject} >> ran.log; sleep 29; cp {raw} {slow_out}; echo end {subject} >> ran.log"
YAML
mkdir sub-1 && echo one >sub-1/in.txt

# First run in the background in its own process group, with SIGINT at its default (a shell
# starts background jobs with SIGINT ignored, and a terminal's ^C reaches the whole group).
# shellcheck disable=SC2086
perl -e '$SIG{INT} = "DEFAULT"; setpgrp(0, 0); exec @ARGV or die' $CPIPE_WRAPPER "$CPIPE" run -j1 \
	>first.out 2>first.err &
first=$!
i=0
while ! grep -q "start 1" ran.log 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the first run never started its job"
	sleep 0.1
done
# The second run sees the live holder, does not run the job, says which run holds it and
# exits 3 (nothing failed, the job is left to that run).
expect_exit 3 cpipe run -j1
expect_err_contains "cpipe: 1 job is held (run pid $first on "
expect_err_contains "; they are left to it (-v lists them)"
expect_err_contains "cpipe: nothing else to do (0 jobs up to date); run again when they end"
expect_exit 3 cpipe run -j1 -v
expect_err_contains "cpipe: not running slow[subject=1]: held: run pid $first on "
[ "$(grep -c "start 1" ran.log)" -eq 1 ] || fail "the job ran twice"
pass

# Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
kill -INT -$first
wait $first
code=$?
[ $code -eq 130 ] || fail "interrupted run exited $code, expected 130: $(cat first.err)"
pass
grep -q "end 1" ran.log && fail "the job's process was not stopped"
pass
[ -f sub-1/out.txt ] && fail "a partial output of the interrupted job was left in place"
pass
expect_exit 0 cpipe status -v
expect_out_contains "interrupted slow[subject=1]"

# A run killed outright (SIGKILL: no chance to record anything) leaves a claim with a dead holder.
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >/dev/null 2>&1 &
second=$!
i=0
while [ "$(grep -c "start 1" ran.log)" -lt 2 ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the second run never started its job"
	sleep 0.1
done
kill -KILL $second
wait $second 2>/dev/null
pkill -f "sleep 29" 2>/dev/null
expect_exit 0 cpipe status -v
expect_out_contains "interrupted slow[subject=1]"
done_testing
