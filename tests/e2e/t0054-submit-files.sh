#!/bin/sh
# A cluster submission writes a few files per submitted array, not one per job: 30 subjects
# through three chained steps in arrays of 10 and a group job (91 jobs, 10 submissions) leave at
# most 4 files per submission in .cpipe/jobs (launcher, scripts, task list, record). Stand-ins for
# sbatch/squeue/sacct (no cluster): the jobs never run, so the next status finds them gone without
# a result, records them failed and removes the records.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
subjects=$(seq -w 1 30)
# shellcheck disable=SC2086
make_study study $subjects
cd study || exit 2
mkdir "$WORK/bin"
cat >"$WORK/bin/sbatch" <<STUB
#!/bin/sh
echo "\$*" >>"$WORK/sbatch.log"
wc -l <"$WORK/sbatch.log"
STUB
printf '#!/bin/sh\nexit 0\n' >"$WORK/bin/squeue"
cp "$WORK/bin/squeue" "$WORK/bin/sacct"
chmod +x "$WORK/bin/sbatch" "$WORK/bin/squeue" "$WORK/bin/sacct"
export PATH="$WORK/bin:$PATH" CPIPE_ARRAY_MAX=10

expect_exit 0 cpipe run --submit=slurm
expect_err_contains "submitted 91 of 91 jobs to slurm in 10 submissions (9 arrays)"
files=$(find .cpipe/jobs -type f | wc -l)
[ "$files" -le 40 ] || fail "$files files in .cpipe/jobs for 10 submissions of 91 jobs"
pass
[ "$(find .cpipe/jobs -name '*.submission' | wc -l)" -eq 10 ] || fail "not one record per submission: $(ls .cpipe/jobs)"
pass

# The scheduler no longer knows them and they left no marker: failed, and their records go.
expect_exit 0 cpipe status
left=$(find .cpipe/jobs -name '*.submission' -o -name '*.submitted')
[ -z "$left" ] || fail "records left after import: $left"
pass
echo "t0054: $files files in .cpipe/jobs for 91 jobs in 10 submissions ($checks checks)"
