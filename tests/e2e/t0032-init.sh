#!/bin/sh
# cpipe init: in a BIDS dataset it writes the BIDS tree and a recipe file with one step per T1w
# image and one group step that plan and run as they are; elsewhere a per-subject example that
# runs once a subject's file is there; it never overwrites a file.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

# A BIDS dataset as they come: one subject without sessions, one with two, one with two T1w
# acquisitions, and a functional run that the example does not use.
mkdir -p bids/sub-01/anat bids/sub-02/ses-a/anat bids/sub-02/ses-b/anat bids/sub-03/anat bids/sub-03/func
echo '{"Name": "init test", "BIDSVersion": "1.8.0"}' >bids/dataset_description.json
for f in sub-01/anat/sub-01_T1w.nii.gz sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz \
	sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz sub-03/anat/sub-03_T1w.nii.gz \
	sub-03/anat/sub-03_acq-fast_T1w.nii.gz sub-03/func/sub-03_task-rest_bold.nii.gz; do
	echo "image $f" >"bids/$f"
done
expect_exit 0 cpipe init bids
expect_out_contains "wrote bids/cpipe.yaml and bids/study.tree (a BIDS study); next: cpipe plan -C bids"
# The tree is the shipped BIDS tree, whose derivatives part names what the recipes make.
cmp -s bids/study.tree "$CPIPE_SOURCE_DIR/trees/bids.tree" || fail "study.tree is not trees/bids.tree"
pass
expect_exit 0 cpipe plan -C bids
expect_out_contains "7 to run"
expect_out_contains "to run by recipe: T1w_step 5, bold_step 1, bold_group 1"
expect_exit 0 cpipe run -C bids
for f in sub-01/anat/sub-01_T1w sub-02/ses-a/anat/sub-02_ses-a_T1w sub-02/ses-b/anat/sub-02_ses-b_T1w \
	sub-03/anat/sub-03_T1w sub-03/anat/sub-03_acq-fast_T1w; do
	[ "$(cat "bids/derivatives/cpipe/${f}_stats.txt")" = "$(wc -c <"bids/$f.nii.gz")" ] ||
		fail "per-image step: bids/derivatives/cpipe/${f}_stats.txt"
	pass
done
[ "$(cat bids/derivatives/cpipe/group/bold_stats_list.txt)" = "derivatives/cpipe/sub-03/func/sub-03_task-rest_bold_stats.txt" ] ||
	fail "group output: $(cat bids/derivatives/cpipe/group/bold_stats_list.txt)"
pass

# Nothing is overwritten, and nothing is written when one of the two exists.
echo "mine" >bids/keep.yaml
cp bids/cpipe.yaml bids/keep.yaml
expect_exit 2 cpipe init bids
expect_err_contains "bids/cpipe.yaml already exists; cpipe init writes nothing over it"
cmp -s bids/cpipe.yaml bids/keep.yaml || fail "init changed an existing cpipe.yaml"
pass
mkdir half
echo "my tree" >half/study.tree
expect_exit 2 cpipe init half
[ ! -e half/cpipe.yaml ] && [ "$(cat half/study.tree)" = "my tree" ] || fail "init wrote beside an existing study.tree"
pass

# Not BIDS (subject directories hold the images directly): the per-subject example.
mkdir -p plain/sub-01 plain/sub-02
echo one >plain/sub-01/T1w.nii.gz
echo two >plain/sub-02/T1w.nii.gz
cd plain
expect_exit 0 cpipe init
expect_out_contains "(a per-subject example); next: cpipe plan"
expect_exit 0 cpipe run
[ "$(cat group/T1w_brains.txt)" = "sub-01/T1w_brain.nii.gz
sub-02/T1w_brain.nii.gz" ] || fail "plain group output: $(cat group/T1w_brains.txt)"
pass
cd ..
# --bids forces the BIDS study; a file is not a directory.
mkdir empty
expect_exit 0 cpipe init empty --bids
expect_out_contains "(a BIDS study)"
expect_exit 2 cpipe init plain/sub-01/T1w.nii.gz
expect_err_contains "plain/sub-01/T1w.nii.gz is not a directory"
done_testing
