#!/bin/sh
# Glob keys (fsl-pipe's In('*_mask')): `in: ["*_mask"]` reads every template key the pattern
# matches, and `{*_mask}` in run stands for all their files, each quoted. A new matching key in the
# tree changes the recipe's definition. A pattern that matches nothing is an error at its line.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    t1.txt (t1)
    brain_mask.txt (brain_mask)
    csf_mask.txt (csf_mask)
    masks.txt (masks)
    logs (logs)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: brain_mask
    in: [t1]
    out: [brain_mask]
    run: "echo brain > {brain_mask}"
  - name: masks
    in: ["*_mask"]
    out: [masks]
    run: "cat {*_mask} > {masks}; echo masks {subject} >> ran.log"
YAML
# csf_mask is raw: one subject's name is hostile.
for s in 1 "2 \$(touch pwned)"; do
	mkdir "sub-$s" && echo t1 >"sub-$s/t1.txt" && echo csf >"sub-$s/csf_mask.txt"
done
expect_exit 0 cpipe plan -v
expect_out_contains "cat 'sub-1/brain_mask.txt' 'sub-1/csf_mask.txt' > 'sub-1/masks.txt'"
expect_out_contains "brain_mask[subject=1]  (output missing: sub-1/brain_mask.txt)"
expect_exit 0 cpipe run
[ "$(cat sub-1/masks.txt)" = "brain
csf" ] || fail "masks.txt: $(cat sub-1/masks.txt)"
[ "$(cat "sub-2 \$(touch pwned)/masks.txt")" = "brain
csf" ] || fail "hostile subject's masks.txt"
[ ! -e pwned ] || fail "a file name ran as shell code"
pass
expect_exit 0 cpipe plan
expect_out_contains "0 to run, 4 up to date"

# A third mask key in the tree: the recipe reads it too, so its jobs rerun.
sed 's/^    masks.txt (masks)/    wm_mask.txt (wm_mask)\n    masks.txt (masks)/' study.tree >new.tree && mv new.tree study.tree
for s in 1 "2 \$(touch pwned)"; do echo wm >"sub-$s/wm_mask.txt"; done
expect_exit 0 cpipe plan -v
expect_out_contains "masks[subject=1]  (command changed)"
expect_out_contains "cat 'sub-1/brain_mask.txt' 'sub-1/csf_mask.txt' 'sub-1/wm_mask.txt' > 'sub-1/masks.txt'"
# ref takes glob keys too; optional picks among what the recipe reads.
sed 's/in: \["\*_mask"\]/in: ["*_mask"]\n    ref: ["log*"]\n    optional: ["wm*"]/; s/cat {\*_mask}/ls -d {log*} >\/dev\/null; cat {*_mask}/' cpipe.yaml >new.yaml
mv new.yaml cpipe.yaml
rm "sub-1/wm_mask.txt"
expect_exit 0 cpipe run masks
[ "$(cat sub-1/masks.txt)" = "brain
csf" ] || fail "an optional glob key's absent file: $(cat sub-1/masks.txt)"
pass

# Mistakes: a pattern matching no key, a {pattern} the recipe does not list, a pattern in out.
expect_plan_error 's/"\*_mask"/"*_msk"/' \
	"cpipe.yaml:8: recipe 'masks': in: the glob key '*_msk' matches no template key of the tree"
expect_plan_error 's/cat {\*_mask}/cat {*_msk}/' \
	"recipe 'masks': run: '{*_msk}' is a glob key this recipe does not list"
expect_plan_error 's/out: \[masks\]/out: ["mask*"]/' \
	"cpipe.yaml:11: recipe 'masks': out: 'mask*' is a glob key"
echo "ok $checks checks"
