#!/bin/sh
# Deciding a study of 721 jobs, enough for the checks that need no write to run in threads
# (state_jobs_settled) before the serial pass: a touched input with the same content is still hashed
# and up to date, a same-size edit is caught by its hash, what depends on a job that runs says so,
# and the plan is the same on every call.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
subjects=$(seq -w 100 339)
# shellcheck disable=SC2086
make_study study $subjects
cd study
expect_exit 0 cpipe run -j4
[ "$(wc -l <ran.log)" -eq 721 ] || fail "the first run ran $(wc -l <ran.log) jobs, not 721"
pass
: >ran.log

# Per subject by its number modulo 5: 1 touched input (same content), 2 input edited to another of
# the same size, 3 brain output deleted, 0 and 4 left alone.
sleep 0.01
edited=0 deleted=0
for s in $subjects; do
	case $((s % 5)) in
	1) touch "sub-$s/T1w.nii.gz" ;;
	2) printf 'T1 OF %s\n' "$s" >"sub-$s/T1w.nii.gz" && edited=$((edited + 1)) ;;
	3) rm "sub-$s/T1w_brain.nii.gz" && deleted=$((deleted + 1)) ;;
	esac
done
runs=$((3 * edited + deleted + 1))

expect_exit 0 cpipe plan -v
cp "$WORK/out" "$WORK/first"
expect_out_contains "$runs to run ($((2 * edited + 1)) only if what they depend on changes), $((721 - runs)) up to date"
expect_out_contains "input changed: sub-102/T1w.nii.gz"
expect_out_contains "output missing: sub-103/T1w_brain.nii.gz"
grep -F "fov[subject=102]" "$WORK/out" | grep -qF "runs if reorient[subject=102] changes its output" ||
	fail "fov of 102: $(grep -F 'fov[subject=102]' "$WORK/out")"
pass
grep -F "reorient[subject=101]" "$WORK/out" | grep -qF "up to date" || fail "reorient of 101: $(grep -F 'reorient[subject=101]' "$WORK/out")"
pass
expect_exit 0 cpipe plan -v
cmp -s "$WORK/first" "$WORK/out" || fail "a second plan differs: $(diff "$WORK/first" "$WORK/out")"
pass

expect_exit 0 cpipe run -j4
[ "$(wc -l <ran.log)" -eq "$runs" ] || fail "the run ran $(wc -l <ran.log) jobs, not $runs"
pass
expect_exit 0 cpipe run
expect_err_contains "nothing to do"
done_testing
