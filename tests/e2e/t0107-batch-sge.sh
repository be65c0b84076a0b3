#!/bin/sh
# cpipe run --submit=sge -b against a real single-host Grid Engine cell (ports 7853/7854): each
# subject's chain reorient -> fov -> brain goes to SGE as one job (one task of one array of 4),
# the group job on its own: SGE runs 5 jobs instead of 13, from 2 qsub calls. Every step keeps
# its own state (status, rerun), and a failing middle step (fov of subject 02) is recorded as
# that step's failure, brain after it as not run (skipped), while the other subjects' batches
# succeed. The batch asks for brain's ram_gb as h_vmem: under the sanitizers the steps'
# early-cutoff check on the node cannot start there and fails safe (see t0102).
# ctest-resource-lock: sge-7853-7854
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
start_sge 7853 7854
export CPIPE_POLL_INTERVAL=0.5
log_submissions qsub

# sge_jobs_done: how many jobs (array tasks counted one by one) SGE's accounting has recorded.
sge_jobs_done() { qacct -j 2>/dev/null | grep -c '^taskid'; }
five_jobs_done() { [ "$(sge_jobs_done)" -ge 5 ]; }

batch_chain_scenario sge
grep -q -- ' -t 1-4 ' "$WORK/qsub.log" || fail "the batches are not one array: $(cat "$WORK/qsub.log")"
pass
# The batch asks for the most memory a step asks (brain's 1 GB); only brain has minutes, so no
# time limit of its own (the queue's), rather than brain's 30 for all three (as in t0104).
grep -q -- ' -t 1-4 -l h_vmem=1024M /' "$WORK/qsub.log" || fail "batch resources: $(cat "$WORK/qsub.log")"
pass
wait_until "SGE's accounting of 5 jobs" five_jobs_done
[ "$(sge_jobs_done)" -eq 5 ] || fail "SGE ran $(sge_jobs_done) jobs, not 5: $(qacct -j | grep -E '^(jobname|taskid)')"
pass
echo "t0107: 13 jobs (4 chains of 3 and the group) ran as $(sge_jobs_done) SGE jobs in $(submissions) qsub calls"
# Each step wrote its own marker, saying it succeeded.
[ "$(grep -l '^exit 0$' .cpipe/jobs/*.marker | wc -l)" -eq 13 ] || fail "not 13 markers of success: $(grep -H '^exit' .cpipe/jobs/*.marker)"
pass

batch_up_to_date sge

[ "${CPIPE_SANITIZED:-0}" = 1 ] && CLUSTER_CUTOFF_CANNOT_START=1
batch_failure_scenario sge ": not run: fov[subject=02], which it depends on, did not succeed"
grep -q '^message not run' .cpipe/jobs/brain_subject_02_*.marker || fail "brain 02's marker: $(cat .cpipe/jobs/brain_subject_02_*.marker)"
pass
done_testing
