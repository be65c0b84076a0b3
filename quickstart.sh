#!/bin/sh
# One command for a newcomer: install what is missing, build cpipe, lay out the example study
# (four subjects made from a real T1 image, tools/make-example-study.sh) and run the tutorial's
# structural pipeline on it with MRtrix3 (recipes/structural-mrtrix.yaml over
# trees/structural.tree): every subject's brain, then the group mean, the status, and a rerun
# that finds nothing to do.
set -eu
cd "$(dirname "$0")"
tools/install-deps.sh --example
cmake -S . -B build -DCPIPE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
study=build/example-study
rm -rf "$study"
tools/make-example-study.sh "$study"
cpipe() { ./build/cpipe "$@" -f recipes/structural-mrtrix.yaml --data "$study"; }
echo "== the subjects cpipe finds: cpipe glob t1"
./build/cpipe glob t1 -t trees/structural.tree -C "$study"
echo "== cpipe plan t1_brain"
cpipe plan t1_brain
echo "== cpipe run t1_brain: reorient, crop and brain-extract every subject"
cpipe run t1_brain
echo "== cpipe run group_mean: the mean brain of the group"
cpipe run group_mean
echo "== cpipe status"
cpipe status
echo "== cpipe run again: nothing to do"
cpipe run
echo "== the results: $study/subject*/T1w_brain.nii.gz and $study/group_mean.nii.gz"
mrinfo -quiet -size -spacing "$study/group_mean.nii.gz"
