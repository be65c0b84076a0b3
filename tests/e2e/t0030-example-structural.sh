#!/bin/sh
# README's first command, as a test: the structural example (trees/structural.tree with
# recipes/structural-mrtrix.yaml) on the study tools/make-example-study.sh lays out from a real
# NIfTI image, run with the real MRtrix3 tools. Every result image is checked with mrinfo and
# mrstats, so the example cannot rot; the FSL recipe file is checked against the same tree.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
recipes=$CPIPE_SOURCE_DIR/recipes
for tool in mrinfo mrstats mrcalc; do
	command -v $tool >/dev/null || fail "$tool not found: tools/install-deps.sh --test installs mrtrix3"
done
"$CPIPE_SOURCE_DIR/tools/make-example-study.sh" study 2>"$WORK/make.log" || fail "cannot make the study: $(cat "$WORK/make.log")"
pass
mrtrix() { expect_exit 0 cpipe "$@" -f "$recipes/structural-mrtrix.yaml" --data study; }

# The per-subject chain first, as README does, then the group step.
mrtrix run t1_brain -j2
expect_err_contains "12 done, 0 failed"
[ ! -e study/group_mean.nii.gz ] || fail "run t1_brain made the group mean"
pass
mrtrix run group_mean
expect_err_contains "1 done, 0 failed"

# stat_of IMAGE OPTION...: one figure of mrstats, as an integer.
stat_of() {
	image=$1
	shift
	mrstats -quiet "$@" "$image" | awk '{ printf "%d\n", $1 }'
}
for s in 01 02 03 04; do
	brain=study/subject$s/T1w_brain.nii.gz
	[ "$(mrinfo -quiet -size "$brain")" = "33 41 21" ] || fail "$brain: size $(mrinfo -quiet -size "$brain"), expected the 4 neck slices cropped"
	[ "$(mrinfo -quiet -strides "$brain")" = "1 2 3" ] || fail "$brain: strides $(mrinfo -quiet -strides "$brain"), expected 1 2 3"
	# The mask keeps the head and drops the background: between 70% and 95% of the 28,413 voxels.
	voxels=$(stat_of "$brain" -ignorezero -output count)
	[ "$voxels" -gt 19900 ] && [ "$voxels" -lt 27000 ] || fail "$brain: $voxels brain voxels"
	pass
done
# Reorienting undoes subject02's voxel order: its brain is subject01's, voxel for voxel.
difference=$(mrcalc -quiet study/subject01/T1w_brain.nii.gz study/subject02/T1w_brain.nii.gz -sub -abs - |
	mrstats -quiet -output max - | awk '{ printf "%d\n", $1 }')
[ "$difference" -eq 0 ] || fail "subject02's brain differs from subject01's by up to $difference"
pass
# The group mean is the mean of the four brains: (1 + 1 + 1.5 + 1 + noise) / 4 of subject01's.
[ "$(mrinfo -quiet -size study/group_mean.nii.gz)" = "33 41 21" ] || fail "group mean: wrong size"
one=$(stat_of study/subject01/T1w_brain.nii.gz -output mean)
group=$(stat_of study/group_mean.nii.gz -output mean)
[ $((group * 1000)) -gt $((one * 1120)) ] && [ $((group * 1000)) -lt $((one * 1130)) ] ||
	fail "group mean $group is not 1.125 x subject01's $one"
pass

# status knows every output, and a rerun does nothing.
mrtrix status
expect_out_contains "t1_brain                          4          0          0          0"
expect_out_contains "group_mean                        1          0          0          0"
mrtrix run
expect_err_contains "nothing to do (13 jobs up to date)"

# The FSL recipe file loads and fits the same tree: on a new copy of the study, plan lists the 13
# jobs with FSL's commands (FSL itself is not installed here).
"$CPIPE_SOURCE_DIR/tools/make-example-study.sh" fsl-study 2>"$WORK/make.log" || fail "cannot make the study: $(cat "$WORK/make.log")"
expect_exit 0 cpipe plan -f "$recipes/structural-fsl.yaml" --data fsl-study
expect_out_contains "13 to run, 0 up to date"
expect_out_contains "    bet 'subject04/T1w_fov.nii.gz' 'subject04/T1w_brain.nii.gz'"
expect_out_contains "    fslmerge -t 'group_mean.nii.gz' 'subject01/T1w_brain.nii.gz' 'subject02/T1w_brain.nii.gz' 'subject03/T1w_brain.nii.gz' 'subject04/T1w_brain.nii.gz' && fslmaths"
done_testing
