#!/bin/sh
# A unit's name is taken again once its record is gone. Should a task of the earlier unit still
# be queued (the scheduler's answer was wrong, or a cancel raced), it must neither run the later
# submission's scripts (another job's, for an array whose tasks moved) nor write a marker the
# later submission would import. Stand-ins: sbatch keeps a copy of the script it is given, as
# SLURM does, and fsl_sub logs its command line (its jobs read their files when they start);
# squeue knows no job, so `status` records them failed and frees the names.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
mkdir "$WORK/bin" "$WORK/snap"
cat >"$WORK/bin/sbatch" <<STUB
#!/bin/sh
echo "\$*" >>"$WORK/sbatch.log"
n=\$(wc -l <"$WORK/sbatch.log")
for last; do :; done
cp "\$last" "$WORK/snap/\$n.sh"
echo \$n
STUB
cat >"$WORK/bin/fsl_sub" <<STUB
#!/bin/sh
printf '%s\n' "\$*" >>"$WORK/fsl_sub.log"
wc -l <"$WORK/fsl_sub.log"
STUB
printf '#!/bin/sh\nexit 0\n' >"$WORK/bin/squeue"
cp "$WORK/bin/squeue" "$WORK/bin/sacct"
chmod +x "$WORK/bin/"*
export PATH="$WORK/bin:$PATH"

# -- an array and a single job, submitted twice under the same names ----------------------------
make_study study 1 2 3 4
cd study || exit 2
expect_exit 0 cpipe run --submit=slurm
grep -q 'cpipe array job: 4 tasks of .reorient' "$WORK/snap/1.sh" || fail "sbatch's first script is not reorient's launcher"
pass
expect_exit 0 cpipe status
# Subject 2 goes: task 2 of the next reorient array, of the same name, is subject 3's.
rm -r sub-2
expect_exit 0 cpipe run --submit=slurm
# The first submission's task 2 starts late: it must run nothing, say why, and exit non-zero.
SLURM_ARRAY_TASK_ID=2 /bin/sh "$WORK/snap/1.sh" >"$WORK/task.out" 2>&1 && fail "the earlier array's task ran: $(cat "$WORK/task.out")"
pass
grep -q 'earlier submission' "$WORK/task.out" || fail "the earlier task does not say why it stopped: $(cat "$WORK/task.out")"
pass
[ ! -e ran.log ] || fail "the earlier array's task ran a job of the later one: $(cat ran.log)"
pass
[ -z "$(find .cpipe/jobs -name '*.marker')" ] || fail "a marker was written: $(find .cpipe/jobs -name '*.marker')"
pass
# The first submission's group job (a single job's script): the same.
/bin/sh "$WORK/snap/4.sh" >"$WORK/task.out" 2>&1 && fail "the earlier group job ran"
pass
[ -z "$(find .cpipe/jobs -name '*.marker')" ] || fail "the earlier group job wrote a marker: $(cat .cpipe/jobs/*.marker)"
pass
# The later submission's own task runs (subject 3's reorient) and its result is imported.
SLURM_ARRAY_TASK_ID=2 /bin/sh "$WORK/snap/5.sh" >"$WORK/task.out" 2>&1 || fail "the later task failed: $(cat "$WORK/task.out")"
pass
expect_ran "reorient 3"
cd .. || exit 2

# -- a batch (-b), submitted twice -----------------------------------------------------------------
rm -f "$WORK/sbatch.log" "$WORK/snap/"*
make_study batch 1
cd batch || exit 2
expect_exit 0 cpipe run --submit=slurm -b
grep -q 'cpipe batch of 3 jobs' "$WORK/snap/1.sh" || fail "sbatch's first script is not the batch's"
pass
# One script each for the batch's runner and the group job, the batch's jobs' in one file.
[ "$(find .cpipe/jobs -name '*.sh' | wc -l)" -eq 2 ] || fail "a script per job of the batch: $(ls .cpipe/jobs)"
pass
expect_exit 0 cpipe status
expect_exit 0 cpipe run --submit=slurm -b
/bin/sh "$WORK/snap/1.sh" >"$WORK/task.out" 2>&1 && fail "the earlier batch ran"
pass
grep -q 'earlier submission' "$WORK/task.out" || fail "the earlier batch does not say why it stopped: $(cat "$WORK/task.out")"
pass
[ ! -e ran.log ] && [ -z "$(find .cpipe/jobs -name '*.marker')" ] || fail "the earlier batch ran or recorded a step"
pass
/bin/sh "$WORK/snap/3.sh" >"$WORK/task.out" 2>&1 || fail "the later batch failed: $(cat "$WORK/task.out")"
pass
expect_ran "brain 1
fov 1
reorient 1"
cd .. || exit 2

# -- fsl_sub: its jobs read their files when they start ----------------------------------------------
make_study fsl 1 2 3
cd fsl || exit 2
expect_exit 0 cpipe run --submit=fsl_sub
tasks=$(sed -n '1s/.* -t //p' "$WORK/fsl_sub.log")
[ -f "$tasks" ] || fail "fsl_sub's first call names no task list: $(sed -n 1p "$WORK/fsl_sub.log")"
pass
group=$(sed -n '$p' "$WORK/fsl_sub.log")
expect_exit 0 cpipe status
[ ! -e "$tasks" ] || fail "the task list outlives its record: $tasks"
pass
expect_exit 0 cpipe run --submit=fsl_sub
grep -q ' -t ' "$WORK/fsl_sub.log" && [ "$(wc -l <"$WORK/fsl_sub.log")" -eq 8 ] || fail "fsl_sub calls: $(cat "$WORK/fsl_sub.log")"
pass
[ "$(sed -n '5s/.* -t //p' "$WORK/fsl_sub.log")" != "$tasks" ] || fail "the later array reuses the task list's name"
pass
# An earlier task's line (had its list survived) and the earlier group job's command line.
token=${group##* }
launcher=$(sed -n '1s/.* -t \(.*\)\.[0-9a-f]*\.tasks$/\1.array.sh/p' "$WORK/fsl_sub.log")
/bin/sh "$launcher" 2 "$token" >"$WORK/task.out" 2>&1 && fail "an earlier fsl_sub task ran: $(cat "$WORK/task.out")"
pass
grep -q 'earlier submission' "$WORK/task.out" || fail "the earlier fsl_sub task does not say why: $(cat "$WORK/task.out")"
pass
eval "/bin/sh ${group##*/bin/sh }" >"$WORK/task.out" 2>&1 && fail "the earlier fsl_sub group job ran"
pass
[ ! -e ran.log ] && [ -z "$(find .cpipe/jobs -name '*.marker')" ] || fail "an earlier fsl_sub job ran or recorded"
pass
echo "t0055: earlier tasks of reused unit names run and record nothing ($checks checks)"
