#!/bin/sh
# Composition (`include:`): a lab's anatomical recipe file, written once for its own small tree, is
# mounted twice in one study's tree (two sub-trees from one .tree file), runs, and reruns nothing
# the second time. Its keys become SUBTREE/KEY or what `rename:` says, its recipes SUBTREE/NAME
# (as jobs, logs and state know them), its placeholders those of the sub-tree; errors inside an
# included file name that file and line and the chain that reached it; a cycle is refused.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/mount-fixture.sh"
mkdir -p study/lab && cd study || exit 2
# The lab's pipeline: its own tree and recipes, runnable on their own (tree: and default: are
# ignored when the file is included).
cat >lab/anat.tree <<'TREE'
raw_run-{run}.txt (t1)
brain_run-{run}.txt (brain)
stats.txt (stats)
TREE
cat >lab/anat.yaml <<'YAML'
tree: anat.tree
default: [stats]
resources: {minutes: 7}
recipes:
  - name: brain
    in: [t1]
    out: [brain]
    run: "cp {t1} {brain} && echo brain {subject} {run} {brain} >> ran.log # {{not a name}}"
  - name: stats
    in: [brain]
    out: [stats]
    batch: [run]
    run: "cat {brain} > {stats} && echo stats {subject} >> ran.log"
YAML
# The study mounts the anat tree under each subject twice: for the T1w and for the T2w. The T2w
# statistics go to the study's own key `T2w_stats` (rename: maps the lab's `stats` to it).
mount_anat_twice 'T2w_stats.txt (T2w_stats)'
cat >cpipe.yaml <<'YAML'
tree: study.tree
include:
  - {file: lab/anat.yaml, subtree: anat}
  - file: lab/anat.yaml
    subtree: t2
    rename: {stats: T2w_stats}
YAML
for s in 01 02; do
	mkdir -p sub-$s/anat sub-$s/t2
	echo "t1 $s" >sub-$s/anat/raw_run-1.txt
	echo "t2 $s" >sub-$s/t2/raw_run-2.txt
done
echo "t1 01 again" >sub-01/anat/raw_run-3.txt

expect_exit 0 cpipe plan
expect_out_contains "anat/brain[anat/run=1,subject=01]"
expect_out_contains "anat/stats[subject=01]"
expect_out_contains "t2/brain[subject=02,t2/run=2]"
expect_out_contains "t2/stats[subject=02]"
expect_out_contains "# {not a name}"
expect_out_contains "cp 'sub-02/t2/raw_run-2.txt' 'sub-02/t2/brain_run-2.txt'"
expect_out_contains "cat 'sub-02/t2/brain_run-2.txt' > 'sub-02/T2w_stats.txt'"
expect_out_contains "9 to run, 0 up to date"
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "brain 01 1 sub-01/anat/brain_run-1.txt
brain 01 2 sub-01/t2/brain_run-2.txt
brain 01 3 sub-01/anat/brain_run-3.txt
brain 02 1 sub-02/anat/brain_run-1.txt
brain 02 2 sub-02/t2/brain_run-2.txt
stats 01
stats 01
stats 02
stats 02" ] || fail "first run: $(sort ran.log)"
pass
[ "$(cat sub-01/anat/stats.txt)" = "t1 01
t1 01 again" ] || fail "anat/stats of 01: $(cat sub-01/anat/stats.txt)"
[ "$(cat sub-02/T2w_stats.txt)" = "t2 02" ] || fail "t2/stats of 02: $(cat sub-02/T2w_stats.txt)"
pass
rm ran.log
expect_exit 0 cpipe run
expect_err_contains "nothing to do (9 jobs up to date)"
[ ! -e ran.log ] || fail "the second run ran: $(cat ran.log)"
pass
# Jobs, logs and state know the mounted names.
expect_exit 0 cpipe log 'anat/stats[subject=02]'
expect_out_contains "# job       anat/stats[subject=02]"
expect_exit 0 cpipe status anat/stats T2w_stats
expect_out_contains "anat/stats                        2          0          0          0"
# One mount changed: only its jobs rerun.
echo "t2 01 new" >sub-01/t2/raw_run-2.txt
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "brain 01 2 sub-01/t2/brain_run-2.txt
stats 01" ] || fail "after changing a T2w: $(sort ran.log)"
pass
rm ran.log

# An error inside an included file names that file and line, and where it was included from.
cat >lab/broken.yaml <<'YAML'
recipes:
  - name: brain
    in: [t1]
    outt: [brain]
YAML
cat >lab/middle.yaml <<'YAML'
include:
  - {file: broken.yaml, subtree: x}
YAML
cat >errors.yaml <<'YAML'
tree: study.tree
include:
  - {file: lab/middle.yaml, subtree: anat}
YAML
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "lab/broken.yaml:4: recipe 'brain': unknown field 'outt' (did you mean 'out'?) (included from lab/middle.yaml:2, from errors.yaml:3)"
# A key the tree does not have (here: mounted one sub-tree too deep): the included recipe's own line.
printf 'recipes:\n  - name: brain\n    in: [t1]\n    out: [brain]\n    run: cp {t1} {brain}\n' >lab/broken.yaml
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "lab/broken.yaml:3: recipe 'anat/x/brain': in: unknown template key 'anat/x/t1' (did you mean 'anat/t1'?); lab/broken.yaml writes 't1', mounted in sub-tree 'anat/x' (include:)"
# A missing file is an error at the entry that names it.
printf 'include:\n  - file: nothing.yaml\n' >lab/middle.yaml
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "lab/middle.yaml:2: include: cannot read 'nothing.yaml' (lab/nothing.yaml): No such file or directory (included from errors.yaml:3)"
# A cycle names the chain.
printf 'include:\n  - {file: ../errors.yaml, subtree: again}\n' >lab/middle.yaml
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "lab/middle.yaml:2: include: '../errors.yaml' is already being read: a cycle errors.yaml -> lab/middle.yaml -> errors.yaml"
# Two mounts in one sub-tree would make the same keys.
printf 'tree: study.tree\ninclude:\n  - {file: lab/anat.yaml, subtree: anat}\n  - {file: lab/anat.yaml, subtree: anat}\n' >errors.yaml
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "errors.yaml:4: include: recipe 'anat/brain' of lab/anat.yaml (line 5) has the name of recipe 'anat/brain' (lab/anat.yaml:5)"
# A rename of a key the included recipes do not use is a typo.
printf 'tree: study.tree\ninclude:\n  - file: lab/anat.yaml\n    subtree: t2\n    rename: {t2: T2w}\n' >errors.yaml
expect_exit 2 cpipe plan -f errors.yaml
expect_err_contains "errors.yaml:5: include: rename: no recipe of lab/anat.yaml uses a key 't2' (did you mean 't1'?)"
done_testing
