#!/bin/sh
# The graph cache (cpipe(1), FILES: .cpipe/graph.cache): a second plan over unchanged data takes
# the graph from the cache (CPIPE_TIMINGS=1 names the phase "graph cache" instead of "glob" and
# "graph"), and after each kind of change a plan with the cache in place prints exactly what a
# plan without it prints. One study per change, all made before a single wait: a cache is only
# written once every directory the glob read is 2 s older than the walk (the racy rule).
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

# anat/sub-X is never read (T1w.txt is looked up by name); func/sub-X and its sessions are read.
make_cache_study() {
	mkdir -p "$1"
	cat >"$1/study.tree" <<'TREE'
anat
    sub-{subject}
        T1w.txt (t1)
func
    sub-{subject}
        ses-{session}
            run-{run}_bold.txt (bold)
out
    sub-{subject}
        t1_out.txt (t1_out)
        ses-{session}
            run-{run}_bold_out.txt (bold_out)
    group.txt (group_t1)
TREE
	cat >"$1/cpipe.yaml" <<'YAML'
tree: study.tree
recipes:
  - name: t1_step
    in: [t1]
    out: [t1_out]
    run: "cp {t1} {t1_out}"
  - name: bold_step
    in: [bold]
    out: [bold_out]
    run: "cp {bold} {bold_out}"
  - name: group
    in: [t1_out]
    out: [group_t1]
    batch: [subject]
    run: "cat {t1_out} > {group_t1}"
YAML
	for s in 01 02 03; do
		mkdir -p "$1/anat/sub-$s" "$1/func/sub-$s/ses-1" "$1/func/sub-$s/ses-2"
		echo "t1 $s" >"$1/anat/sub-$s/T1w.txt"
		for r in 1 2; do
			echo "bold $s $r" >"$1/func/sub-$s/ses-1/run-${r}_bold.txt"
		done
		echo "bold $s" >"$1/func/sub-$s/ses-2/run-1_bold.txt"
	done
	(cd "$1" && cpipe run -j2 >/dev/null 2>&1) || fail "first run in $1 failed"
}

scenarios="hit edited-command new-subject removed-subject new-run new-session deleted-input edited-tree edited-recipe filter truncated corrupt other-binary"
make_cache_study base
for s in $scenarios; do
	cp -a base "$s"
done
cp "$CPIPE" other-cpipe
chmod +x other-cpipe
sleep 2.2

# plan_cached DIR [ARGS]: plan twice in DIR; the second takes the graph from the cache.
plan_cached() {
	dir=$1
	shift
	(cd "$dir" && cpipe plan "$@" >/dev/null 2>&1) || fail "plan in $dir failed"
	[ -s "$dir/.cpipe/graph.cache" ] || fail "no .cpipe/graph.cache written in $dir"
	pass
	(cd "$dir" && CPIPE_TIMINGS=1 cpipe plan "$@" >"$WORK/out" 2>"$WORK/err") || fail "second plan in $dir failed"
	expect_err_contains "timing: graph cache"
	grep -q "timing: glob" "$WORK/err" && fail "the second plan in $dir globbed: $(cat "$WORK/err")"
	pass
}

# same_as_fresh DIR [ARGS]: plan --json with the cache in place prints what it prints without one.
same_as_fresh() {
	dir=$1
	shift
	(cd "$dir" && cpipe plan --json "$@" >"$WORK/cached.out" 2>"$WORK/cached.err")
	cached_rc=$?
	rm -f "$dir/.cpipe/graph.cache"
	(cd "$dir" && cpipe plan --json "$@" >"$WORK/fresh.out" 2>"$WORK/fresh.err")
	fresh_rc=$?
	[ "$cached_rc" -eq "$fresh_rc" ] || fail "$dir: exit $cached_rc with the cache, $fresh_rc without"
	cmp -s "$WORK/cached.out" "$WORK/fresh.out" ||
		fail "$dir: the plan with the cache differs: $(diff "$WORK/fresh.out" "$WORK/cached.out")"
	cmp -s "$WORK/cached.err" "$WORK/fresh.err" ||
		fail "$dir: messages differ: $(diff "$WORK/fresh.err" "$WORK/cached.err")"
	pass
}

for s in $scenarios; do
	plan_cached "$s"
done
same_as_fresh hit
# 3 t1_step, 9 bold_step and the group job, all made by the first run.
grep -q '"run":0,"up_to_date":13,' "$WORK/cached.out" || fail "not 13 jobs up to date: $(cat "$WORK/cached.out")"
pass

# A command is not in the graph, but a cached graph keeps each job's definition hash: after the
# command changed, the plan that saves the cache and the one that reads it both see the change.
# Rewritten in place, so that the study's directory keeps its times.
sed 's/"cp {bold} {bold_out}"/"cp -p {bold} {bold_out}"/' edited-command/cpipe.yaml >"$WORK/edited.yaml"
cat "$WORK/edited.yaml" >edited-command/cpipe.yaml
grep -q 'cp -p {bold}' edited-command/cpipe.yaml || fail "the command was not edited"
plan_cached edited-command
same_as_fresh edited-command
grep -q '"run":9,"up_to_date":4,' "$WORK/cached.out" || fail "not the 9 bold_step jobs to run: $(cat "$WORK/cached.out")"
pass

mkdir -p new-subject/anat/sub-04 && echo t1 >new-subject/anat/sub-04/T1w.txt
same_as_fresh new-subject
grep -q 'sub-04' "$WORK/cached.out" || fail "the new subject is not planned"
pass

rm -r removed-subject/anat/sub-02 removed-subject/func/sub-02
same_as_fresh removed-subject
grep -q '"run":1,"up_to_date":8,' "$WORK/cached.out" || fail "sub-02's 4 jobs are still planned: $(cat "$WORK/cached.out")"
pass

echo new >new-run/func/sub-01/ses-1/run-3_bold.txt
same_as_fresh new-run
grep -q 'run-3' "$WORK/cached.out" || fail "the new run is not planned"
pass

mkdir new-session/func/sub-02/ses-3 && echo new >new-session/func/sub-02/ses-3/run-1_bold.txt
same_as_fresh new-session
grep -q 'ses-3' "$WORK/cached.out" || fail "the new session is not planned"
pass

# anat/sub-03 itself is not read: only the lookup of its T1w.txt sees this.
rm deleted-input/anat/sub-03/T1w.txt
same_as_fresh deleted-input
grep -q '"run":1,"up_to_date":11,' "$WORK/cached.out" || fail "the deleted input's job is still planned: $(cat "$WORK/cached.out")"
pass

sed -i 's/t1_out.txt (t1_out)/t1_result.txt (t1_out)/' edited-tree/study.tree
same_as_fresh edited-tree
grep -q 't1_result' "$WORK/cached.out" || fail "the edited tree's output name is not planned"
pass

# Its own placeholder values: t1_step for two subjects only (the command is not in the graph).
sed -i 's/^    run: "cp {t1} {t1_out}"$/&\n    placeholders: {subject: ["01", "02"]}/' edited-recipe/cpipe.yaml
grep -q 'placeholders: {subject' edited-recipe/cpipe.yaml || fail "the recipe file was not edited"
same_as_fresh edited-recipe
grep -q '"run":1,"up_to_date":11,' "$WORK/cached.out" || fail "t1_step is still planned for sub-03: $(cat "$WORK/cached.out")"
pass

same_as_fresh filter --subject 02
grep -q 'sub-01' "$WORK/cached.out" && fail "--subject 02 planned sub-01"
pass

size=$(wc -c <truncated/.cpipe/graph.cache)
truncate -s $((size / 2)) truncated/.cpipe/graph.cache
same_as_fresh truncated

# One output path in the file changed in place (sub-02 to sub-07), the length kept.
at=$(grep -abo 'out/sub-02/t1_out.txt' corrupt/.cpipe/graph.cache | head -n 1 | cut -d: -f1)
[ -n "$at" ] || fail "no output path in the cache file"
printf 'out/sub-07' | dd of=corrupt/.cpipe/graph.cache bs=1 seek="$at" conv=notrunc 2>/dev/null
same_as_fresh corrupt

# Another binary (a copy: another inode) does not read this one's cache.
(cd other-binary && CPIPE_TIMINGS=1 $CPIPE_WRAPPER "$WORK/other-cpipe" plan >/dev/null 2>"$WORK/err") ||
	fail "plan with another binary failed"
grep -q "timing: graph cache" "$WORK/err" && fail "another binary used the cache: $(cat "$WORK/err")"
pass

echo "t0060: $checks checks"
