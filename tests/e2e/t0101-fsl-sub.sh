#!/bin/sh
# cpipe run --submit=fsl_sub (and --submit=auto) through a STAND-IN fsl_sub: tests/cluster/fsl_sub
# follows fsl_sub 2.5.8 with its Slurm plugin 1.3.8 in what cpipe relies on (see its header; FSL's
# fsl_sub is not installed here), forwarding a job script to the real sbatch of a private SLURM
# (ports 7827/7828). Shown here: arrays with per-task holds (--array_hold), a failed job's
# dependants cancelled on the cluster (the plugin adds no --kill-on-invalid-dep), threads > 1 with
# a configured parallel environment, a data root with a space refused before anything is
# submitted, --submit=auto with and without queues, and fsl_sub's no-cluster shell mode.
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
# calls: the submissions so far (not counting --has_queues questions).
calls() { grep -vc -- '--has_queues' "$FSL_SUB_STANDIN_LOG"; }

make_study local 01 02 03 04
(cd local && cpipe run -q) || fail "local run failed"

# Through the stand-in to SLURM; auto chooses fsl_sub because it is on PATH and has queues.
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
# fov and brain wait task by task (--array_hold, the only parent), group_mean for the whole array.
[ "$(grep -c -- "--array_hold [0-9]* -t " "$FSL_SUB_STANDIN_LOG")" -eq 2 ] || fail "no --array_hold: $(cat "$FSL_SUB_STANDIN_LOG")"
pass
grep -- "--array_hold" "$FSL_SUB_STANDIN_LOG" | grep -q -- " -j " && fail "-j given with --array_hold (fsl_sub drops it)"
pass
grep -q -- "-N group_mean -l [^ ]* -j [0-9]* /bin/sh " "$FSL_SUB_STANDIN_LOG" || fail "the group job is not held"
pass
# -R 1 with no -s: --mem-per-cpu=1G; -T is no time limit unless the site enables it.
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "nothing to do"

# Per-task holds are real: brain 01 ends while fov 04 is still held back by ../go.
edit_recipe 's/run: "cp {t1_reorient} {t1_fov}/run: "if [ {subject} = 04 ]; then while [ ! -e ..\/go ]; do sleep 0.2; done; fi; cp {t1_reorient} {t1_fov}/'
ran_lines >/dev/null
expect_exit 0 cpipe run --submit=fsl_sub
for _ in $(seq 300); do
	ls .cpipe/jobs/brain_subject_01_*.marker >/dev/null 2>&1 && break
	sleep 0.2
done
ls .cpipe/jobs/brain_subject_01_*.marker >/dev/null 2>&1 || fail "brain 01 waited for the whole fov array"
pass
ls .cpipe/jobs/fov_subject_04_*.marker >/dev/null 2>&1 && fail "fov 04 ended before ../go existed"
pass
touch ../go
expect_exit 0 cpipe wait
same_outputs "$WORK/local" "$WORK/study"

# A failure: its dependants never run and end cancelled on the cluster, not pending for ever.
edit_recipe 's/run: "cp {t1_fov} {t1_brain}/run: "test {subject} != 03 \&\& cp {t1_fov} {t1_brain}/'
ran_lines >/dev/null
expect_exit 1 cpipe run --submit=fsl_sub --wait
expect_err_contains "FAILED brain[subject=03]"
expect_err_contains "skipped group_mean"
group_job=$(sed -n 's/^\([0-9]*\)\tgroup_mean$/\1/p' "$WORK/out")
[ -n "$group_job" ] || fail "no group job id in: $(cat "$WORK/out")"
ran=$(ran_lines)
case $ran in *group*) fail "the group job ran after a failure: $ran" ;; esac
pass
[ "$(squeue -h -t all -j "$group_job" -o %T)" = CANCELLED ] || fail "group job $group_job: $(squeue -h -t all -j "$group_job" -o '%T %r')"
pass
nothing_pending
left=$(find .cpipe/jobs -name '*.submission' -o -name '*.submitted')
[ -z "$left" ] || fail "submission records left: $left"
pass
expect_exit 1 cpipe wait
edit_recipe 's/test {subject} != 03 \&\& //'
expect_exit 0 cpipe run --submit=fsl_sub --wait
nothing_pending

# threads > 1: fsl_sub needs the name of a parallel environment its site defines.
edit_recipe 's/threads: 1}/threads: 2}/'
export FSL_SUB_STANDIN_PES=openmp
before=$(calls)
expect_exit 1 cpipe run --submit=fsl_sub --force-all
expect_err_contains "asks for 2 threads, and fsl_sub needs the name"
expect_err_contains "set resources.pe in the recipe file or CPIPE_FSL_SUB_PE"
[ "$(calls)" -eq "$before" ] || fail "submitted without a parallel environment name"
pass
# A name the site does not know: fsl_sub refuses it, and cpipe says so.
export CPIPE_FSL_SUB_PE=smp
expect_exit 1 cpipe run t1_brain --submit=fsl_sub --force -p subject=01
expect_err_contains "Parallel environment name smp not recognised"
expect_err_contains "submitted 0 of 1 job"
export CPIPE_FSL_SUB_PE=openmp
expect_exit 0 cpipe run t1_brain --submit=fsl_sub --wait --force -p subject=01
grep -q -- "-R 1 -s openmp,2 " "$FSL_SUB_STANDIN_LOG" || fail "no -s openmp,2: $(tail -3 "$FSL_SUB_STANDIN_LOG")"
pass
unset CPIPE_FSL_SUB_PE
edit_recipe 's/threads: 2}/threads: 2, pe: openmp}/'
expect_exit 0 cpipe run t1_brain --submit=fsl_sub --wait --force -p subject=02
[ "$(grep -c -- "-s openmp,2 " "$FSL_SUB_STANDIN_LOG")" -eq 2 ] || fail "resources.pe not used: $(tail -3 "$FSL_SUB_STANDIN_LOG")"
pass
# SLURM ran it with two tasks per node and the RAM split per CPU (ceil(1 GB / 2)).
brain_job=$(sed -n 's/^\([0-9]*\)\tbrain\[subject=02\]$/\1/p' "$WORK/out")
[ -n "$brain_job" ] || fail "no brain job id in: $(cat "$WORK/out")"
scontrol show job "$brain_job" | grep -q "MinMemoryCPU=1G" || fail "memory: $(scontrol show job "$brain_job" | grep -i mem)"
pass
scontrol show job "$brain_job" | grep -q "NumTasks=2" || fail "tasks: $(scontrol show job "$brain_job" | grep -i task)"
pass
# resources.extra_fsl_sub goes to fsl_sub only; extra_slurm is for --submit=slurm.
edit_recipe 's/pe: openmp}/pe: openmp, extra_fsl_sub: [--not_requeueable], extra_slurm: [--requeue]}/'
expect_exit 0 cpipe run t1_brain --submit=fsl_sub --wait --force -p subject=03
grep -q -- "-s openmp,2 --not_requeueable /bin/sh " "$FSL_SUB_STANDIN_LOG" || fail "extra_fsl_sub: $(tail -2 "$FSL_SUB_STANDIN_LOG")"
pass
grep -q -- "--requeue" "$FSL_SUB_STANDIN_LOG" && fail "extra_slurm went to fsl_sub"
pass
cd ..

# A data root with a space: refused before anything is written or submitted; SLURM can do it.
make_study "with space" 01 02 03
cd "with space"
before=$(calls)
expect_exit 1 cpipe run --submit=fsl_sub --wait
expect_err_contains "the data root '$WORK/with space' contains a space"
expect_err_contains "use --submit=slurm"
[ "$(calls)" -eq "$before" ] || fail "fsl_sub was called for a data root with a space"
pass
[ -d .cpipe/jobs ] && fail "job files written for a refused submission"
pass
expect_exit 0 cpipe run --submit=slurm --wait
[ "$(cat group/mean_brain.txt | wc -l)" -eq 3 ] || fail "the space study did not finish"
pass
cd ..

# fsl_sub with no queues (its shell mode): --submit=auto no longer picks it while sbatch is there.
export FSL_SUB_STANDIN_MODE=shell
make_study auto 01 02 03
cd auto
before=$(calls)
expect_exit 0 cpipe run --submit --wait
expect_err_contains "to slurm in"
[ "$(calls)" -eq "$before" ] || fail "auto submitted through fsl_sub: $(tail -3 "$FSL_SUB_STANDIN_LOG")"
pass
grep -q -- "--has_queues" "$FSL_SUB_STANDIN_LOG" || fail "auto did not ask fsl_sub --has_queues"
pass
cd ..

# fsl_sub's shell mode on request: every call blocks and prints a meaningless id; array tasks
# run in parallel and every failure is reported; cpipe learns the results from the markers.
make_study shell 01 02 03 04
cd shell
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "fsl_sub ran them in the foreground"
same_outputs "$WORK/local" "$WORK/shell"
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "nothing to do"
expect_exit 0 cpipe wait
edit_recipe 's/run: "cp {t1_fov} {t1_brain}/run: "test {subject} != 02 \&\& test {subject} != 04 \&\& cp {t1_fov} {t1_brain}/'
expect_exit 1 cpipe run --submit=fsl_sub
expect_err_contains "FAILED brain[subject=02]"
expect_err_contains "FAILED brain[subject=04]"
expect_err_contains "skipped group_mean"
expect_exit 1 cpipe wait
done_testing
