#!/bin/sh
# cpipe run --submit=fsl_sub (and --submit=auto, which picks fsl_sub first) through a STAND-IN
# fsl_sub: tests/cluster/fsl_sub is a small shell script implementing fsl_sub's documented command
# line (-T -R -q -N -l -j -t -s -c; prints only the job id). Real fsl_sub cannot be installed here.
# It forwards to the real sbatch of a private SLURM (ports 7827/7828), and in its shell mode
# behaves like fsl_sub with no cluster: runs each job in the foreground, blocks, prints a
# meaningless id and exits non-zero when the job fails.
# ctest-resource-lock: slurm-7827-7828
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
echo "t0101: NOTE: fsl_sub here is a stand-in (tests/cluster/fsl_sub), not FSL's fsl_sub"
start_slurm 7827 7828
export CPIPE_POLL_INTERVAL=0.5
PATH=$CPIPE_SOURCE_DIR/tests/cluster:$PATH
export FSL_SUB_STANDIN_LOG="$WORK/fsl_sub.log"
: >"$FSL_SUB_STANDIN_LOG"
calls() { wc -l <"$FSL_SUB_STANDIN_LOG" | tr -d ' '; }

make_study local 01 02 03 04
(cd local && cpipe run -q) || fail "local run failed"

# Through the stand-in to SLURM; auto chooses fsl_sub because it is on PATH.
make_study study 01 02 03 04
cd study
expect_exit 0 cpipe run --submit --wait
expect_err_contains "to fsl_sub in 4 submissions (3 arrays)"
same_outputs "$WORK/local" "$WORK/study"
check_order . 01 02 03 04
[ "$(calls)" -eq 4 ] || fail "expected 4 fsl_sub calls: $(cat "$FSL_SUB_STANDIN_LOG")"
pass
grep -q -- "-t $WORK/study/.cpipe/jobs/array_reorient" "$FSL_SUB_STANDIN_LOG" || fail "no task file: $(cat "$FSL_SUB_STANDIN_LOG")"
pass
grep -q -- "-N group_mean -j " "$FSL_SUB_STANDIN_LOG" || fail "the group job is not held"
pass
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "nothing to do"

# A failure through fsl_sub: dependants never run and wait reports it.
ran_lines >/dev/null
sed 's/run: "cp {t1_fov} {t1_brain}/run: "test {subject} != 03 \&\& cp {t1_fov} {t1_brain}/' cpipe.yaml >c.new &&
	mv c.new cpipe.yaml
expect_exit 1 cpipe run --submit=fsl_sub --wait
expect_err_contains "FAILED brain[subject=03]"
expect_err_contains "skipped group_mean"
ran=$(ran_lines)
case $ran in *group*) fail "the group job ran after a failure: $ran" ;; esac
pass
cd ..

# fsl_sub's no-cluster shell mode: every call blocks and prints a meaningless id; cpipe learns
# the results from the markers.
export FSL_SUB_STANDIN_MODE=shell
make_study shell 01 02 03 04
cd shell
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "fsl_sub ran them in the foreground"
same_outputs "$WORK/local" "$WORK/shell"
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "nothing to do"
expect_exit 0 cpipe wait
sed 's/run: "cp {t1_fov} {t1_brain}/run: "test {subject} != 02 \&\& cp {t1_fov} {t1_brain}/' cpipe.yaml >c.new &&
	mv c.new cpipe.yaml
expect_exit 1 cpipe run --submit=fsl_sub
expect_err_contains "FAILED brain[subject=02]"
expect_err_contains "skipped group_mean"
expect_exit 1 cpipe wait
done_testing
