#!/bin/sh
# Usage: tools/make-example-study.sh DIR
# Lay out the example study of trees/structural.tree in DIR: four subjects made from the real T1
# image that Debian's python3-nibabel ships for its tests (a 33 x 41 x 25 brain, 2 mm voxels):
#   subject01  the image as it is;
#   subject02  the same image stored with its rows flipped and its axes swapped (a different
#              voxel order on disk: reorienting brings it back to subject01's);
#   subject03  the intensities scaled by 1.5 (another scanner gain);
#   subject04  Gaussian noise added (standard deviation 200).
# Needs MRtrix3 (mrconvert, mrcalc): tools/install-deps.sh --example installs both packages.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
source_image=${CPIPE_EXAMPLE_IMAGE:-/usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii}
[ -r "$source_image" ] || {
	echo "$0: $source_image not found: install python3-nibabel (tools/install-deps.sh --example)" >&2
	exit 2
}
command -v mrconvert >/dev/null || { echo "$0: mrconvert not found: install mrtrix3" >&2; exit 2; }
mkdir -p "$1/subject01" "$1/subject02" "$1/subject03" "$1/subject04"
mrconvert -quiet -force "$source_image" "$1/subject01/T1w.nii.gz"
mrconvert -quiet -force -strides 2,-1,3 "$source_image" "$1/subject02/T1w.nii.gz"
mrcalc -quiet -force "$source_image" 1.5 -mult -datatype int16 "$1/subject03/T1w.nii.gz"
mrcalc -quiet -force "$source_image" randn 200 -mult -add -datatype int16 "$1/subject04/T1w.nii.gz"
