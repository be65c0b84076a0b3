#!/bin/sh
# An input edited while its job runs makes the result stale: the job's inputs are signed when it
# starts, so the record shows what the result was made from, and plan then says "input changed".
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
mkdir study && cd study || exit 2
make_job_study 'head -1 {raw} > {out}; touch started; while [ ! -e edited ]; do sleep 0.05; done; tail -1 {raw} >> {out}'
printf 'old first\nold last\n' >sub-1/in.txt
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >run.out 2>&1 &
first=$!
wait_until "the job's start" test -e started
printf 'new first\nnew last\n' >sub-1/in.txt
touch edited
wait $first
code=$?
[ $code -eq 0 ] || fail "the run exited $code: $(cat run.out)"
pass
# The output is a mix of both versions: it must not be up to date.
expect_exit 0 cpipe plan
expect_out_contains "run        job[subject=1]  (input changed: sub-1/in.txt)"
expect_out_contains "1 to run, 0 up to date"
grep -qF "sub-1/in.txt changed while job[subject=1] ran: it will run again" run.out ||
	fail "the run did not say the input changed: $(cat run.out)"
pass
expect_exit 0 cpipe run -j1
printf 'new first\nnew last\n' >want.txt
cmp -s want.txt sub-1/out.txt || fail "the rerun did not remake the output: $(cat sub-1/out.txt)"
pass
expect_exit 0 cpipe plan
expect_out "0 to run, 1 up to date, 0 to adopt, 0 held by another run"
done_testing
