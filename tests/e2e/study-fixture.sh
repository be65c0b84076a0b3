# The structural example of the design (reorient -> fov -> brain -> group mean) written with
# ordinary commands. Each job appends one line to ran.log, so a test can see exactly what ran.
# Usage: make_study DIR SUBJECT...
make_study() {
	dir=$1
	shift
	mkdir -p "$dir"
	cat >"$dir/study.tree" <<'TREE'
sub-{subject}
    T1w.nii.gz          (t1)
    T1w_reorient.nii.gz (t1_reorient)
    T1w_fov.nii.gz      (t1_fov)
    T1w_brain.nii.gz    (t1_brain)
group
    mean_brain.txt      (group_mean)
TREE
	cat >"$dir/cpipe.yaml" <<'YAML'
tree: study.tree
recipes:
  - name: reorient
    in: [t1]
    out: [t1_reorient]
    run: "cp {t1} {t1_reorient} && echo reorient {subject} >> ran.log"
  - name: fov
    in: [t1_reorient]
    out: [t1_fov]
    run: "cp {t1_reorient} {t1_fov} && echo fov {subject} >> ran.log"
  - name: brain
    in: [t1_fov]
    out: [t1_brain]
    resources: {minutes: 30, ram_gb: 1, threads: 1}
    run: "cp {t1_fov} {t1_brain} && echo brain {subject} >> ran.log"
  - name: group_mean
    in: [t1_brain]
    out: [group_mean]
    batch: [subject]
    run: "cat {t1_brain} > {group_mean} && echo group >> ran.log"
YAML
	for subject in "$@"; do
		mkdir -p "$dir/sub-$subject"
		printf 'T1 of %s\n' "$subject" >"$dir/sub-$subject/T1w.nii.gz"
	done
}

# ran_lines: the sorted content of ran.log (then cleared), one job per line.
ran_lines() {
	if [ -f ran.log ]; then sort ran.log; rm -f ran.log; fi
}

expect_ran() {
	got=$(ran_lines)
	[ "$got" = "$1" ] || fail "jobs that ran:
$got
expected:
$1"
	pass
}

# make_job_study RUN: in the current directory, a study of one recipe `job` making
# sub-{subject}/out.txt (key out) from sub-{subject}/in.txt (key raw) with the command RUN,
# and subject 1. For scenarios about one job's run rather than the pipeline.
make_job_study() {
	cat >study.tree <<'TREE'
sub-{subject}
    in.txt   (raw)
    out.txt  (out)
TREE
	set_job_command "$1"
	mkdir -p sub-1 && echo one >sub-1/in.txt
}

# set_job_command RUN: give make_job_study's recipe the command RUN.
set_job_command() {
	cat >cpipe.yaml <<YAML
tree: study.tree
recipes:
  - name: job
    in: [raw]
    out: [out]
    run: "$1"
YAML
}
