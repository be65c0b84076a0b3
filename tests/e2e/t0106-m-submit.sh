#!/bin/sh
# fsl-pipe's -m submit against a real single-node SLURM (tests/cluster/start-slurm.sh, ports
# 7881/7882): it is --submit (auto finds sbatch), with the target forms fsl-pipe takes (a pattern
# over the output paths, a recipe's name with --subject's space-separated values); -m local runs
# here and submits nothing.
# ctest-resource-lock: slurm-7881-7882
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
start_slurm 7881 7882
export CPIPE_POLL_INTERVAL=0.5
log_submissions sbatch
# auto takes fsl_sub first when it has queues: none here, so the choice is SLURM's sbatch.
command -v fsl_sub >/dev/null && fail "an fsl_sub on PATH would be auto's choice"
pass

make_study study 01 02 03
cd study
# A pattern target, submitted and waited for: subject 01's chain only, on the cluster.
expect_exit 0 cpipe run -m submit --wait 'sub-01/**'
expect_ran "brain 01
fov 01
reorient 01"
[ "$(submissions)" -ge 1 ] || fail "nothing went through sbatch"
pass
ls .cpipe/jobs/*.marker >/dev/null 2>&1 || fail "no job ran on the cluster (no markers)"
pass
# A recipe's name with --subject's space-separated values: brain (and what it needs) for 02 and 03.
expect_exit 0 cpipe run -m submit --subject 02 03 brain
expect_out_contains "reorient[subject=03]"
expect_exit 0 cpipe wait
expect_ran "brain 02
brain 03
fov 02
fov 03
reorient 02
reorient 03"
expect_exit 0 cpipe run --pipeline-method=submit --wait
expect_ran "group"
before=$(submissions)
expect_exit 0 cpipe run -m submit
expect_err_contains "nothing to do"
# -m local runs here: a forced rerun of one subject's brain submits nothing.
expect_exit 0 cpipe run -m local -o 'sub-02/T1w_brain.nii.gz'
expect_ran "brain 02"
[ "$(submissions)" -eq "$before" ] || fail "-m local submitted: $(cat "$WORK/sbatch.log")"
pass
expect_exit 0 cpipe status
expect_out_contains "t1_brain                          3          0          0          0"
nothing_pending

done_testing
