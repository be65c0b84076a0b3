# A study that mounts the lab's anat.tree (lab/anat.tree, written by the test) twice under each
# subject: sub-{subject}/anat as sub-tree `anat` and sub-{subject}/t2 as sub-tree `t2` (include:).
# Usage: mount_anat_twice [STUDY_LINE...]  (run in the study directory; each STUDY_LINE is a
# further line of study.tree inside sub-{subject}, e.g. the study's own key for a renamed output)
mount_anat_twice() {
	cp lab/anat.tree anat.tree
	{
		echo 'sub-{subject}'
		for line in "$@"; do echo "    $line"; done
		cat <<'TREE'
    anat
        ->anat (anat)
    t2
        ->anat (t2)
TREE
	} >study.tree
}
