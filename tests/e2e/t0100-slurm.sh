#!/bin/sh
# cpipe run --submit=slurm against a real single-node SLURM started here (tests/cluster/start-slurm.sh,
# ports 7817/7818 so it never meets another cluster): the example study submitted at once with
# --wait gives the same files as a local run, in dependency order, as a handful of array jobs; a
# second run does nothing; a failing job keeps its dependants from running and is reported by run,
# status and wait; jobs in flight are neither submitted twice nor run locally; --job-hold holds
# the first jobs on an outside job.
# ctest-resource-lock: slurm-7817-7818
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
start_slurm 7817 7818
export CPIPE_POLL_INTERVAL=0.5

# Every sbatch call is logged, then passed on to the real one.
log_submissions sbatch

make_study local 01 02 03 04
make_study study 01 02 03 04
(cd local && cpipe run -q) || fail "local run failed"
pass

cd study
started=$(date +%s)
expect_exit 0 cpipe run --submit=slurm --wait
echo "t0100: 13 jobs submitted and done in $(($(date +%s) - started)) s with $(submissions) sbatch calls"
expect_ran "brain 01
brain 02
brain 03
brain 04
fov 01
fov 02
fov 03
fov 04
group
reorient 01
reorient 02
reorient 03
reorient 04"
same_outputs "$WORK/local" "$WORK/study"
check_order . 01 02 03 04
expect_out_contains "array of 4: reorient"
# 13 jobs, 4 submissions: three arrays of 4 (task i of one waits for task i of the one before,
# SLURM's aftercorr) and the group job, which waits for the whole brain array.
[ "$(submissions)" -eq 4 ] || fail "expected 4 sbatch calls, got: $(cat "$WORK/sbatch.log")"
pass
[ "$(grep -c -- '--array=1-4' "$WORK/sbatch.log")" -eq 3 ] || fail "no arrays: $(cat "$WORK/sbatch.log")"
pass
grep -q -- '--dependency=aftercorr:' "$WORK/sbatch.log" || fail "no aftercorr: $(cat "$WORK/sbatch.log")"
pass
grep -q -- '--time=30 --mem=1024M --cpus-per-task=1' "$WORK/sbatch.log" || fail "resources not passed: $(cat "$WORK/sbatch.log")"
pass
left=$(find .cpipe/jobs -name '*.submission' -o -name '*.submitted')
[ -z "$left" ] || fail "submission records left after import: $left"
pass

# A second run does nothing and submits nothing.
expect_exit 0 cpipe run --submit=slurm
expect_err_contains "nothing to do"
[ "$(submissions)" -eq 4 ] || fail "a second run submitted again"
pass

# A failing job: its dependants never run, and run, status and wait report it.
cluster_failure_scenario slurm

# Jobs in flight are not submitted twice, and a local run holds them.
# The fov jobs wait for ../go, so they are surely still in flight while we look (valgrind is slow).
sed 's/run: "test {subject} != 02 \&\& cp/run: "while [ ! -e ..\/go ]; do sleep 0.2; done; cp/' cpipe.yaml >c.new &&
	mv c.new cpipe.yaml
before=$(submissions)
expect_exit 0 cpipe run --submit=slurm
expect_out_contains "array of 4: fov"
after=$(submissions)
expect_exit 0 cpipe run --submit=slurm
expect_err_contains "nothing to submit"
[ "$(submissions)" -eq "$after" ] || fail "jobs in flight were submitted again"
pass
expect_exit 3 cpipe run
# One line for the 9 jobs on the cluster (queued or already running, as the scheduler goes), not
# one per job; -v names each and where it is.
expect_err_contains "cpipe: 9 jobs are held ("
expect_err_contains " on slurm as job "
expect_err_contains "(-v lists them)"
grep -q "not running" "$WORK/err" && fail "a line per held job without -v: $(cat "$WORK/err")"
pass
expect_exit 3 cpipe run -v
[ "$(grep -c '^cpipe: not running .*: held: [a-z]* on slurm as job ' "$WORK/err")" -eq 9 ] ||
	fail "-v does not name the 9 held jobs: $(cat "$WORK/err")"
pass
expect_exit 0 cpipe status -v
expect_out_contains "on the cluster:"
touch ../go
expect_exit 0 cpipe wait
# fov wrote what it wrote before: the brains and the group are cut off on the node (t0105).
expect_ran "fov 01
fov 02
fov 03
fov 04"
same_outputs "$WORK/local" "$WORK/study"
# The log a node wrote, where sync recorded it (the default path, which the state rebuilds).
expect_exit 0 cpipe log 'fov[subject=01]'
grep -q '^# log       \.cpipe/logs/fov_subject_01_-[0-9a-f]\{8\}\.log$' "$WORK/out" ||
	fail "not the node's log: $(cat "$WORK/out")"
pass
echo "t0100: resubmission after the fix: $((after - before)) sbatch calls for 9 jobs"

# --job-hold: the first jobs wait for an outside job; --scale-time scales minutes, rounding up.
outside=$(sbatch --parsable -o /dev/null --wrap 'sleep 1')
expect_exit 0 cpipe run --submit=slurm --wait --force-all --job-hold "$outside" --scale-time 1.5 -p subject=01
grep -q -- "--dependency=afterok:$outside" "$WORK/sbatch.log" || fail "no hold on $outside: $(tail -4 "$WORK/sbatch.log")"
pass
grep -q -- '--time=45 ' "$WORK/sbatch.log" || fail "--scale-time 1.5 did not give 45 minutes"
pass
[ "$(squeue -h -t all -j "$outside" -o %T)" = COMPLETED ] || fail "the outside job did not finish"
pass

# CPIPE_ARRAY_MAX cuts arrays shorter than the scheduler's limit: 4 subjects in chunks of 3 and 1,
# task i of each chunk still waiting for task i of the same chunk of the step before.
before=$(submissions)
export CPIPE_ARRAY_MAX=3
expect_exit 0 cpipe run --submit=slurm --wait --force-all
unset CPIPE_ARRAY_MAX
[ "$(tail -n +$((before + 1)) "$WORK/sbatch.log" | grep -c -- '--array=1-3 ')" -eq 3 ] &&
	[ "$(tail -n +$((before + 1)) "$WORK/sbatch.log" | grep -c -- '--array=1-1 ')" -eq 3 ] ||
	fail "no chunks of 3 and 1: $(tail -n +$((before + 1)) "$WORK/sbatch.log")"
pass
[ "$(tail -n +$((before + 1)) "$WORK/sbatch.log" | grep -c -- '--dependency=aftercorr:')" -eq 4 ] ||
	fail "chunks not held task by task: $(tail -n +$((before + 1)) "$WORK/sbatch.log")"
pass
check_order . 01 02 03 04
done_testing
