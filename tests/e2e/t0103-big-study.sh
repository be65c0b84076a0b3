#!/bin/sh
# A study of real size: 1,500 subjects (4,501 jobs) on a private SLURM (ports 7837/7838) whose
# MaxArraySize is Debian's default, 1001 (task ids up to 1000). cpipe asks for the limit and
# splits each step's array into chunks of 1000 and 500 whose tasks still wait task by task for
# the same chunk of the step before. Through --submit=slurm: a submission refused half way leaves
# only runnable jobs and says what was submitted; a job failing in the middle chunk leaves its
# dependants cancelled, none pending; after the fix every job is done and a rerun submits
# nothing. Then the same study through the fsl_sub stand-in (--array_hold per chunk).
# It takes minutes, so it runs once, in the plain build: the valgrind and sanitizer passes skip it.
# ctest-resource-lock: slurm-7837-7838
# ctest-timeout: 1500
# ctest-run-serial
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
if [ -n "$CPIPE_WRAPPER" ] || [ "${CPIPE_SANITIZED:-0}" = 1 ]; then
	echo "$TEST_NAME: skipped in the valgrind and sanitizer passes (the 1,500-subject study runs once, in the -Werror pass)"
	exit 0
fi
# More CPUs than the machine has: trivial jobs, so more of them start per scheduling pass.
export SLURM_NODE_CPUS=64
start_slurm 7837 7838
export CPIPE_POLL_INTERVAL=1
[ "$(scontrol show config | sed -n 's/^MaxArraySize *= *//p')" = 1001 ] ||
	fail "MaxArraySize is not the default: $(scontrol show config | grep MaxArraySize)"
pass
log_submissions sbatch
subjects=$(seq -w 1 1500)

# every_chain_in_order: for every subject, reorient ended before fov started, fov before brain,
# and every brain before the group job started (from the jobs' markers, read by one awk).
every_chain_in_order() {
	bad=$(awk '
		FNR == 1 { name = FILENAME; sub(/.*\//, "", name) }
		/^start_ns / { start[name] = $2 }
		/^end_ns / { end[name] = $2 }
		END {
			for (n in start) {
				if (n ~ /^group_mean/) { group = start[n]; continue }
				if (!match(n, /_subject_[0-9]+_/)) continue
				step = substr(n, 1, RSTART - 1); subject = substr(n, RSTART + 9, RLENGTH - 10)
				s[step "," subject] = start[n]; e[step "," subject] = end[n]; subjects[subject] = 1
			}
			for (x in subjects) {
				count++
				if (!(("reorient," x) in e && ("fov," x) in e && ("brain," x) in e))
					print "subject " x " lacks a marker"
				else if (!(e["reorient," x] <= s["fov," x] && e["fov," x] <= s["brain," x] && e["brain," x] <= group))
					print "subject " x " ran out of order"
			}
			if (count != 1500) print count " subjects with markers, not 1500"
		}' .cpipe/jobs/*.marker)
	[ -z "$bad" ] || fail "$bad"
	pass
}

# fov fails for a subject while ../fail_SUBJECT exists: a failure without changing the recipe.
fail_when_told='s/run: "cp {t1_reorient} {t1_fov}/run: "test ! -e ..\/fail_{subject} \&\& cp {t1_reorient} {t1_fov}/'

make_study study $subjects
cd study
edit_recipe "$fail_when_told"
# A scheduler refusing the 4th submission (fov, second chunk): what went before can all run.
started=$(date +%s)
export SUBMIT_FAIL_AT=4
expect_exit 1 cpipe run --submit=slurm
unset SUBMIT_FAIL_AT
expect_err_contains "submitted 2500 of 4501 jobs to slurm in 3 submissions (3 arrays)"
expect_err_contains "the 2500 submitted jobs can run"
expect_err_contains "the other 2001 were not submitted"
expect_err_contains "refused by the test"
grep -q -- "--array=1-1000 " "$WORK/sbatch.log" && grep -q -- "--array=1-500 " "$WORK/sbatch.log" ||
	fail "no chunks of 1000 and 500: $(cat "$WORK/sbatch.log")"
pass
grep -- "--array=1-1001\|--array=1-1500" "$WORK/sbatch.log" && fail "an array longer than MaxArraySize allows"
pass
never=$(squeue -h -o '%i %r' | grep -c DependencyNeverSatisfied)
[ "$never" -eq 0 ] || fail "$never never-runnable jobs left behind"
pass
expect_exit 0 cpipe wait -q
echo "t0103: slurm: 2500 jobs (3 arrays) submitted, refused at the 4th call, done in $(($(date +%s) - started)) s"

# The rest, with fov of subject 1200 (in the middle chunk: fov's second) failing.
touch ../fail_1200
started=$(date +%s)
calls_before=$(submissions)
expect_exit 1 cpipe run --submit=slurm --wait
expect_err_contains "submitted 2001 of 2001 jobs to slurm in 4 submissions (3 arrays)"
expect_err_contains "FAILED fov[subject=1200]"
expect_err_contains "skipped brain[subject=1200]"
expect_err_contains "skipped group_mean"
nothing_pending
echo "t0103: slurm: the other $(($(submissions) - calls_before)) submissions with one failure done in $(($(date +%s) - started)) s"
# brain's second chunk waits task by task for fov's second chunk.
grep -q -- "--array=1-500 --dependency=aftercorr:" "$WORK/sbatch.log" || fail "no per-task hold: $(cat "$WORK/sbatch.log")"
pass

rm ../fail_1200
expect_exit 0 cpipe run --submit=slurm --wait
expect_err_contains "submitted 3 of 3 jobs"
[ "$(wc -l <group/mean_brain.txt)" -eq 1500 ] || fail "the group mean has $(wc -l <group/mean_brain.txt) subjects"
pass
every_chain_in_order
calls_before=$(submissions)
expect_exit 0 cpipe run --submit=slurm
expect_err_contains "nothing to do"
[ "$(submissions)" -eq "$calls_before" ] || fail "a rerun submitted again"
pass
cd ..

# The same study through the fsl_sub stand-in: it passes arrays on to sbatch as they are, so
# cpipe must chunk them itself, and holds task by task with --array_hold.
PATH=$CPIPE_SOURCE_DIR/tests/cluster:$PATH
export FSL_SUB_STANDIN_LOG="$WORK/fsl_sub.log"
: >"$FSL_SUB_STANDIN_LOG"
make_study fsl $subjects
cd fsl
edit_recipe "$fail_when_told"
touch ../fail_1200
started=$(date +%s)
expect_exit 1 cpipe run --submit=fsl_sub --wait
expect_err_contains "submitted 4501 of 4501 jobs to fsl_sub in 7 submissions (6 arrays)"
expect_err_contains "FAILED fov[subject=1200]"
expect_err_contains "skipped group_mean"
nothing_pending
echo "t0103: fsl_sub stand-in: 4501 jobs in 7 submissions with one failure done in $(($(date +%s) - started)) s"
[ "$(grep -c -- "--array_hold [0-9]* -t " "$FSL_SUB_STANDIN_LOG")" -eq 4 ] ||
	fail "expected 4 arrays held task by task: $(cat "$FSL_SUB_STANDIN_LOG")"
pass
rm ../fail_1200
expect_exit 0 cpipe run --submit=fsl_sub --wait
expect_err_contains "submitted 3 of 3 jobs"
every_chain_in_order
calls_before=$(grep -c '' "$FSL_SUB_STANDIN_LOG")
expect_exit 0 cpipe run --submit=fsl_sub
expect_err_contains "nothing to do"
[ "$(grep -c '' "$FSL_SUB_STANDIN_LOG")" -eq "$calls_before" ] || fail "a rerun submitted again"
pass
done_testing
