#!/bin/sh
# params:, placeholders: and glob keys in an included recipe file mounted twice (include:): the
# parameter keeps its name (--set SUBTREE/RECIPE.PARAM sets one mount's, --set PARAM both), the
# recipe's placeholder values and its glob keys are those of its sub-tree.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/mount-fixture.sh"
mkdir -p study/lab && cd study || exit 2
cat >lab/anat.tree <<'TREE'
raw_run-{run}.txt (t1)
brain_run-{run}.txt (brain)
brain_mask.txt (brain_mask)
csf_mask.txt (csf_mask)
masks.txt (masks)
TREE
cat >lab/anat.yaml <<'YAML'
tree: anat.tree
recipes:
  - name: brain
    in: [t1]
    out: [brain]
    params: {dof: 12}
    placeholders: {run: ["1", "2"]}
    run: "echo dof={dof} > {brain}; echo brain {subject} {run} >> ran.log"
  - name: masks
    in: ["*_mask"]
    out: [masks]
    run: "cat {*_mask} > {masks}"
YAML
mount_anat_twice
cat >cpipe.yaml <<'YAML'
tree: study.tree
include:
  - {file: lab/anat.yaml, subtree: anat}
  - {file: lab/anat.yaml, subtree: t2}
YAML
for s in 01 02; do
	for d in anat t2; do
		mkdir -p sub-$s/$d
		for r in 1 2 3; do echo "$d $s $r" >sub-$s/$d/raw_run-$r.txt; done
		echo "$d brain" >sub-$s/$d/brain_mask.txt
		echo "$d csf" >sub-$s/$d/csf_mask.txt
	done
done
expect_exit 0 cpipe plan -v
expect_out_contains "cat 'sub-01/t2/brain_mask.txt' 'sub-01/t2/csf_mask.txt' > 'sub-01/t2/masks.txt'"
expect_out_contains "12 to run"
expect_exit 0 cpipe run
# Runs 1 and 2 only (the recipe's values), in each mount.
[ "$(sort ran.log)" = "brain 01 1
brain 01 1
brain 01 2
brain 01 2
brain 02 1
brain 02 1
brain 02 2
brain 02 2" ] || fail "first run: $(sort ran.log)"
[ ! -e sub-01/anat/brain_run-3.txt ] || fail "run 3 was made"
[ "$(cat sub-02/anat/masks.txt)" = "anat brain
anat csf" ] || fail "masks.txt: $(cat sub-02/anat/masks.txt)"
pass
expect_exit 0 cpipe plan --set anat/brain.dof=6
expect_out_contains "anat/brain[anat/run=1,subject=01]  (command changed)"
expect_out_contains "4 to run, 8 up to date"
expect_exit 0 cpipe plan --set dof=6
expect_out_contains "8 to run, 4 up to date"
expect_exit 2 cpipe plan --set brain.dof=6
expect_err_contains "--set brain.dof=6: no recipe 'brain'"
echo "ok $checks checks"
