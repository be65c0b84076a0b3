#!/bin/sh
# cpipe run --submit=slurm -b (fsl-pipe's batching) against a private single-node SLURM (ports
# 7851/7852): each subject's chain reorient -> fov -> brain goes to the scheduler as ONE job that
# runs the three steps in order (the four subjects' batches as one array of 4 tasks), the group
# job on its own; the scheduler sees 5 jobs instead of 13. Every step keeps its own state: status
# shows every file up to date and a rerun does nothing; a failing middle step (fov of subject 02)
# is recorded as that step's failure, the step after it in the batch as not run, and the other
# subjects' batches succeed. batch_label limits the merging to recipes of the same label, and
# a batch of one subject is a plain job (no array). A batch cancelled on the cluster records the
# step it was running as killed and the steps after it as not run. Last, the same through the
# fsl_sub stand-in.
# ctest-resource-lock: slurm-7851-7852
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
start_slurm 7851 7852
export CPIPE_POLL_INTERVAL=0.5
log_submissions sbatch

# jobs_seen: how many jobs (array tasks counted one by one) the scheduler has seen so far.
jobs_seen() { squeue -h -t all -r -o '%i' | wc -l | tr -d ' '; }

before_jobs=$(jobs_seen)
batch_chain_scenario slurm
grep -q -- '--array=1-4 ' "$WORK/sbatch.log" || fail "the batches are not one array: $(cat "$WORK/sbatch.log")"
pass
seen=$(($(jobs_seen) - before_jobs))
[ "$seen" -eq 5 ] || fail "the scheduler saw $seen jobs, not 5: $(squeue -h -t all -r -o '%i %j %T')"
pass
echo "t0104: 13 jobs (4 chains of 3 and the group) ran as $seen SLURM jobs in $(submissions) sbatch calls"
# Memory and threads are the most a step asks (brain's); only brain has minutes, so the batch
# has no time limit of its own (the partition's default), rather than brain's 30 for all three.
grep -q -- '--array=1-4 --mem=1024M --cpus-per-task=1 ' "$WORK/sbatch.log" ||
	fail "batch resources: $(cat "$WORK/sbatch.log")"
pass

batch_up_to_date slurm

# Time sums when every step has some: 10 + 20 + 30 minutes.
edit_recipe 's/  - name: reorient/  - name: reorient\n    resources: {minutes: 10}/; s/  - name: fov/  - name: fov\n    resources: {minutes: 20, ram_gb: 3}/'
expect_exit 0 cpipe run --submit=slurm -b --wait -d -p subject=01
tail -1 "$WORK/sbatch.log" | grep -q -- '--time=60 --mem=3072M ' || fail "summed time, most memory: $(tail -1 "$WORK/sbatch.log")"
pass
expect_out_contains "batch: reorient[subject=01], fov[subject=01], brain[subject=01]"
ran_lines >/dev/null

# A failing middle step (fov of subject 02, after the recipe changed, so fov and brain of every
# subject run: one array of 4 batches, then the group job): fov's failure is recorded, brain as
# not run (skipped); the other batches succeed, and the group job is skipped.
batch_failure_scenario slurm
# The fix: subject 02's fov and brain are one batch, a plain job. fov writes what it wrote before
# the failure, so brain is cut off in the batch (t0105), and so are the others' and the group.
edit_recipe 's/test {subject} != 02 \&\& //'
expect_exit 0 cpipe run --submit=slurm -b --wait -p subject=02
expect_ran "fov 02"
expect_out_contains "batch: fov[subject=02], brain[subject=02]"
expect_exit 0 cpipe run --submit=slurm -b --wait
expect_ran "fov 01
fov 03
fov 04"
expect_err_contains "cut off (inputs unchanged) on the cluster"
same_outputs "$WORK/local" "$WORK/study"

# batch_label: only reorient and fov share a label; brain, unlabelled, is never merged. Two
# subjects: each subject's reorient+fov is one plain job, each brain one too, then the group.
edit_recipe 's/  - name: fov/  - name: fov\n    batch_label: anat/; s/  - name: reorient/  - name: reorient\n    batch_label: anat/'
before=$(submissions)
expect_exit 0 cpipe run --submit=slurm -b --wait -d -p subject=01,03 --partial-group
expect_ran "brain 01
brain 03
fov 01
fov 03
group
reorient 01
reorient 03"
[ "$(($(submissions) - before))" -eq 5 ] || fail "expected 5 sbatch calls: $(tail -n +$((before + 1)) "$WORK/sbatch.log")"
pass
expect_out_contains "batch: reorient[subject=03], fov[subject=03]"
tail -n +$((before + 1)) "$WORK/sbatch.log" | grep -q -- '--array' && fail "an array of batches of two subjects"
pass
nothing_pending

# A batch stopped on the cluster (cancelled here; a time limit does the same): the step it was
# running is recorded as killed, the steps it had not reached as not run (skipped), not as
# failures of their own.
cd "$WORK"
make_study stop 01
cd stop
edit_recipe 's/run: "cp {t1_reorient} {t1_fov}/run: "while [ ! -e ..\/go ]; do sleep 0.2; done; cp {t1_reorient} {t1_fov}/'
expect_exit 0 cpipe run --submit=slurm -b
batch=$(grep 'batch: ' "$WORK/out" | cut -f1)
wait_until "fov started" sh -c 'ls .cpipe/logs/fov_subject_01_*.log >/dev/null 2>&1'
scancel "$batch"
expect_exit 1 cpipe wait
expect_err_contains "FAILED fov[subject=01]: killed by SIGTERM"
expect_err_contains "skipped brain[subject=01]: not run: its batch was stopped"
grep -q "FAILED brain" "$WORK/err" && fail "a step the batch never reached counted as failed: $(cat "$WORK/err")"
pass
expect_exit 0 cpipe status
expect_out_contains "t1_reorient                       1          0          0          0"
expect_ran "reorient 01"
touch ../go
expect_exit 0 cpipe run --submit=slurm -b --wait
expect_ran "brain 01
fov 01
group"

# The same batches through fsl_sub: the stand-in (tests/cluster/fsl_sub, not FSL's own) hands
# them to this SLURM: the four chains as one array of 4 tasks, then the group job.
cd "$WORK"
make_study fsl 01 02 03 04
cd fsl
export FSL_SUB_STANDIN_LOG="$WORK/fsl_sub.log"
: >"$FSL_SUB_STANDIN_LOG"
PATH=$CPIPE_SOURCE_DIR/tests/cluster:$PATH
expect_exit 0 cpipe run --submit=fsl_sub -b --wait
expect_err_contains "submitted 13 of 13 jobs to fsl_sub in 2 submissions (1 array, 4 batches)"
same_outputs "$WORK/local" "$WORK/fsl"
check_order . 01 02 03 04
[ "$(grep -c "^# cpipe batch of 3 jobs" .cpipe/jobs/array_*.scripts)" -eq 4 ] || fail "the array does not run 4 batches"
pass
# The task list, of this submission's alone, went with the array's record once all was imported.
[ -z "$(find .cpipe/jobs -name '*.tasks')" ] || fail "task lists left: $(ls .cpipe/jobs)"
pass
done_testing
