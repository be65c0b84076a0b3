#!/bin/sh
# cpipe run --submit=sge against a real single-host Grid Engine cell started here
# (tests/cluster/start-sge.sh, ports 7844/7845): the example study gives the same files as a local
# run, in dependency order, as a handful of array jobs; a second run does nothing. SGE's
# -hold_jid releases the dependants of a failed job, so the job scripts check their parents'
# markers and fail fast: the dependants never run their commands and are reported as skipped.
# With max_aj_tasks lowered to 3, the arrays are cut into chunks of 3 and 1.
# ctest-resource-lock: sge-7844-7845
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
start_sge 7844 7845
export CPIPE_POLL_INTERVAL=0.5

log_submissions qsub

make_study local 01 02 03 04
(cd local && cpipe run -q) || fail "local run failed"
make_study study 01 02 03 04
cd study
started=$(date +%s)
expect_exit 0 cpipe run --submit=sge --wait
echo "t0102: 13 jobs submitted and done in $(($(date +%s) - started)) s with $(submissions) qsub calls"
same_outputs "$WORK/local" "$WORK/study"
check_order . 01 02 03 04
[ "$(submissions)" -eq 4 ] || fail "expected 4 qsub calls: $(cat "$WORK/qsub.log")"
pass
grep -q -- '-t 1-4 -hold_jid_ad ' "$WORK/qsub.log" || fail "no task-by-task hold: $(cat "$WORK/qsub.log")"
pass
grep -q -- '-l h_rt=0:30:00 -l h_vmem=1024M' "$WORK/qsub.log" || fail "resources not passed: $(cat "$WORK/qsub.log")"
pass
expect_exit 0 cpipe run --submit=sge
expect_err_contains "nothing to do"

# A failing job: its dependants fail fast (SGE releases them) and are reported as skipped.
# brain asks for ram_gb 1, which SGE enforces as h_vmem (a ulimit -v): a sanitized cpipe cannot
# reserve its shadow memory under it, so there the early-cutoff check on the node fails safe.
[ "${CPIPE_SANITIZED:-0}" = 1 ] && CLUSTER_CUTOFF_CANNOT_START=1
cluster_failure_scenario sge ": not run: fov[subject=02], which it depends on, did not succeed"

# A cell that allows arrays of 3 tasks at most (max_aj_tasks): cpipe asks qconf and cuts the
# 4-task arrays into 3 + 1, each chunk held task by task on the same chunk of the step before.
mkdir "$WORK/conf"
qconf -sconf global | sed 's/^max_aj_tasks .*/max_aj_tasks 3/' >"$WORK/conf/global"
(cd "$WORK/conf" && qconf -Mconf global >/dev/null) || fail "cannot set max_aj_tasks"
sed 's/test {subject} != 02 \&\& //' cpipe.yaml >c.new && mv c.new cpipe.yaml
before=$(submissions)
expect_exit 0 cpipe run --submit=sge --wait --force-all
new_calls=$(tail -n +$((before + 1)) "$WORK/qsub.log")
[ "$(printf '%s\n' "$new_calls" | grep -c -- '-t 1-3 ')" -eq 3 ] && [ "$(printf '%s\n' "$new_calls" | grep -c -- '-t 1-1 ')" -eq 3 ] ||
	fail "arrays not cut at max_aj_tasks 3: $new_calls"
pass
[ "$(printf '%s\n' "$new_calls" | grep -c -- '-hold_jid_ad ')" -eq 4 ] || fail "chunks not held task by task: $new_calls"
pass
same_outputs "$WORK/local" "$WORK/study"
check_order . 01 02 03 04
done_testing
