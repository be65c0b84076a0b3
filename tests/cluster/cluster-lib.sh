# Helpers for the e2e scenarios that need a real scheduler (tests/e2e/t01NN-*.sh). Source after
# tests/e2e/lib.sh. Each scenario starts its own private cluster under $WORK with the scripts in
# this directory and stops every daemon it started (by pid) when it exits, whatever happens.
CLUSTER_DIR=$CPIPE_SOURCE_DIR/tests/cluster
CLUSTER_STOP=""

cluster_cleanup() {
	status=$?
	if [ -n "$CLUSTER_STOP" ]; then
		$CLUSTER_STOP >>"$WORK/cluster-stop.log" 2>&1 || cat "$WORK/cluster-stop.log" >&2
	fi
	cd / && rm -rf "$WORK"
	exit $status
}
trap cluster_cleanup EXIT
trap 'exit 130' INT TERM

# skip_unless_root: the daemons run as root; elsewhere the scenario passes vacuously and says so.
skip_unless_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$TEST_NAME: skipped (starting a cluster needs root)"
		exit 0
	fi
}

# start_slurm CTLD_PORT SLURMD_PORT: a single-node SLURM under $WORK/slurm (16 CPUs advertised).
start_slurm() {
	skip_unless_root
	CLUSTER_STOP="$CLUSTER_DIR/stop-slurm.sh $WORK/slurm"
	env SLURMCTLD_PORT="$1" SLURMD_PORT="$2" SLURM_NODE_CPUS=${SLURM_NODE_CPUS:-16} \
		"$CLUSTER_DIR/start-slurm.sh" "$WORK/slurm" >"$WORK/slurm.env" 2>"$WORK/slurm-start.log" ||
		fail "cannot start SLURM: $(tail -5 "$WORK/slurm-start.log")"
	. "$WORK/slurm.env"
}

# start_sge QMASTER_PORT EXECD_PORT: a single-host Grid Engine cell under $WORK/sge (16 slots).
start_sge() {
	skip_unless_root
	CLUSTER_STOP="$CLUSTER_DIR/stop-sge.sh $WORK/sge"
	env SGE_QMASTER_PORT="$1" SGE_EXECD_PORT="$2" SGE_SLOTS=${SGE_SLOTS:-16} \
		"$CLUSTER_DIR/start-sge.sh" "$WORK/sge" >"$WORK/sge.env" 2>"$WORK/sge-start.log" ||
		fail "cannot start SGE: $(tail -5 "$WORK/sge-start.log")"
	. "$WORK/sge.env"
}

# same_outputs DIR1 DIR2: the study's files (not .cpipe/ or ran.log) are identical.
same_outputs() {
	(cd "$1" && find . -path ./.cpipe -prune -o -type f ! -name ran.log ! -name cpipe.yaml -print | sort) >"$WORK/files1"
	(cd "$2" && find . -path ./.cpipe -prune -o -type f ! -name ran.log ! -name cpipe.yaml -print | sort) >"$WORK/files2"
	cmp -s "$WORK/files1" "$WORK/files2" || fail "different files: $(diff "$WORK/files1" "$WORK/files2")"
	while IFS= read -r f; do
		cmp -s "$1/$f" "$2/$f" || fail "$f differs between $1 and $2"
	done <"$WORK/files1"
	pass
}

# marker_time DIR JOB_FILE_PREFIX start|end: a job's start or end (ns) from its marker.
marker_time() {
	m=$(ls "$1"/.cpipe/jobs/"$2"*.marker 2>/dev/null | head -1)
	[ -n "$m" ] || fail "no marker for $2 in $1"
	sed -n "s/^$3_ns //p" "$m"
}

# check_order DIR SUBJECT...: each subject's chain and the group step ran in dependency order.
check_order() {
	dir=$1
	shift
	group_start=$(marker_time "$dir" group_mean start)
	for s in "$@"; do
		r_end=$(marker_time "$dir" "reorient_subject_${s}_" end)
		f_start=$(marker_time "$dir" "fov_subject_${s}_" start)
		f_end=$(marker_time "$dir" "fov_subject_${s}_" end)
		b_start=$(marker_time "$dir" "brain_subject_${s}_" start)
		b_end=$(marker_time "$dir" "brain_subject_${s}_" end)
		[ "$r_end" -le "$f_start" ] && [ "$f_end" -le "$b_start" ] && [ "$b_end" -le "$group_start" ] ||
			fail "subject $s ran out of order: reorient end $r_end, fov $f_start-$f_end, brain $b_start-$b_end, group start $group_start"
	done
	pass
}

# log_submissions COMMAND: put a COMMAND on PATH that logs each call's arguments to
# $WORK/COMMAND.log, then runs the real one; `submissions` counts the calls so far. While
# SUBMIT_FAIL_AT=N is set, call number N (counted in the log) fails instead, as a scheduler
# refusing a submission would.
log_submissions() {
	real=$(command -v "$1") || fail "$1 is not installed"
	mkdir -p "$WORK/bin"
	submit_log=$WORK/$1.log
	cat >"$WORK/bin/$1" <<WRAP
#!/bin/sh
printf '%s\n' "\$*" >>"$submit_log"
if [ "\$(wc -l <"$submit_log")" -eq "\${SUBMIT_FAIL_AT:-0}" ]; then
	echo "$1: error: refused by the test (SUBMIT_FAIL_AT=\$SUBMIT_FAIL_AT)" >&2
	exit 1
fi
exec "$real" "\$@"
WRAP
	chmod +x "$WORK/bin/$1"
	PATH=$WORK/bin:$PATH
	: >"$submit_log"
}

submissions() { wc -l <"$submit_log" | tr -d ' '; }

# nothing_pending: no job of this cluster is left pending (e.g. on a dependency never satisfied).
nothing_pending() {
	left=$(squeue -h -t PENDING -o '%i %j %r')
	[ -z "$left" ] || fail "jobs left pending: $left"
	pass
}

# edit_recipe SED_SCRIPT: change the study's cpipe.yaml in place.
edit_recipe() {
	sed "$1" cpipe.yaml >cpipe.yaml.new && mv cpipe.yaml.new cpipe.yaml
}

# cluster_failure_scenario BACKEND [SKIP_DETAIL]: in the example study (run once, up to date), fov
# fails for subject 02 on the cluster: its dependants never run their commands and are reported as
# skipped (SKIP_DETAIL: what the skip of brain[subject=02] must also say), the other subjects' fov
# run (their brains are cut off on the node: fov wrote what it wrote before), status counts the
# failed file, and `cpipe wait` and the job's log say it failed.
# CLUSTER_RUN_OPTIONS: more options for that run (e.g. -b).
cluster_failure_scenario() {
	ran_lines >/dev/null
	edit_recipe 's/run: "cp {t1_reorient} {t1_fov}/run: "test {subject} != 02 \&\& cp {t1_reorient} {t1_fov}/'
	expect_exit 1 cpipe run --submit="$1" ${CLUSTER_RUN_OPTIONS:-} --wait
	expect_err_contains "FAILED fov[subject=02]: exit status 1; log: .cpipe/logs/fov_subject_02_"
	expect_err_contains "skipped brain[subject=02]${2:-}"
	expect_err_contains "skipped group_mean"
	if [ "${CLUSTER_CUTOFF_CANNOT_START:-0}" = 1 ]; then
		# brain's node-side early-cutoff check could not start (see t0102): it fails safe, and runs.
		expect_ran "brain 01
brain 03
brain 04
fov 01
fov 03
fov 04"
		grep -q ReserveShadowMemoryRange .cpipe/logs/brain_subject_01_*.log ||
			fail "brain ran again although its early-cutoff check could start"
	else
		expect_ran "fov 01
fov 03
fov 04"
	fi
	expect_exit 0 cpipe status
	expect_out_contains "t1_fov                            3          0          0          1"
	expect_exit 1 cpipe wait
	grep -q "exit status 1" .cpipe/logs/fov_subject_02_*.log || fail "the log does not say why"
	pass
}

# batch_chain_scenario BACKEND: the example study of 4 subjects, run with -b on BACKEND, gives the
# same files as a local run, each chain in order: the 4 chains reorient -> fov -> brain as one
# array of 4 batches, then the group job, in 2 submissions. Leaves the shell in $WORK/study.
batch_chain_scenario() {
	make_study local 01 02 03 04
	make_study study 01 02 03 04
	(cd local && cpipe run -q) || fail "local run failed"
	pass
	cd study
	expect_exit 2 cpipe run -b
	expect_err_contains "go with --submit"
	expect_exit 0 cpipe run --submit="$1" -b --wait
	expect_ran "$( (echo group; for s in 01 02 03 04; do printf 'brain %s\nfov %s\nreorient %s\n' $s $s $s; done) | sort)"
	same_outputs "$WORK/local" "$WORK/study"
	check_order . 01 02 03 04
	expect_out_contains "array of 4: reorient (batches, 12 jobs)"
	expect_err_contains "submitted 13 of 13 jobs to $1 in 2 submissions (1 array, 4 batches)"
	[ "$(submissions)" -eq 2 ] || fail "expected 2 submissions, got: $(cat "$submit_log")"
	pass
}

# batch_up_to_date BACKEND: after batch_chain_scenario, every step kept its own state: status
# shows every file up to date, and a rerun neither runs nor submits anything.
batch_up_to_date() {
	expect_exit 0 cpipe status
	for key in t1_reorient t1_fov t1_brain; do
		expect_out_contains "$(printf '%-30s%5d%11d%11d%11d' "$key" 4 0 0 0)"
	done
	before=$(submissions)
	expect_exit 0 cpipe run --submit="$1" -b
	expect_err_contains "nothing to do"
	[ "$(submissions)" -eq "$before" ] || fail "a rerun submitted again"
	pass
}

# batch_failure_scenario BACKEND [SKIP_DETAIL]: cluster_failure_scenario with -b: fov and brain of
# every subject (fov's command changed) as one array of 4 batches, then the group job, in 2 more
# submissions; fov of subject 02 fails inside its batch, brain after it is not run (skipped), the
# other subjects' batches succeed and reorient stays up to date.
batch_failure_scenario() {
	before=$(submissions)
	CLUSTER_RUN_OPTIONS=-b
	cluster_failure_scenario "$@"
	unset CLUSTER_RUN_OPTIONS
	[ "$(($(submissions) - before))" -eq 2 ] ||
		fail "expected 2 more submissions: $(tail -n +$((before + 1)) "$submit_log")"
	pass
	expect_exit 0 cpipe status
	expect_out_contains "$(printf '%-30s%5d%11d%11d%11d' t1_reorient 4 0 0 0)"
}
