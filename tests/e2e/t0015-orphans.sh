#!/bin/sh
# A cpipe killed outright (kill -9) leaves its job running; an immediate rerun must end that
# orphan before it starts the job again, or two writers make one output that is then recorded
# as done. And when only a job's leader is killed, the rest of its process group is ended before
# the job's outputs are quarantined.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
mkdir study && cd study || exit 2
# The output is written a line at a time, reopened for each line: a writer that outlives its
# run keeps adding to whatever file has the output's name.
# Under a wrapper (valgrind) cpipe takes seconds to start: slower lines keep the orphan alive
# until the rerun is under way.
step=0.2
[ -n "$CPIPE_WRAPPER" ] && step=1
make_job_study "for i in 1 2 3 4 5 6 7 8 9 10; do echo \$i >> {out}; sleep $step; done"

has_lines() {
	[ "$(cat sub-1/out.txt 2>/dev/null | wc -l)" -ge "$1" ]
}

# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >first.out 2>&1 &
first=$!
wait_until "the job's third line" has_lines 3
kill -KILL $first
wait $first 2>/dev/null
# The immediate rerun: the orphan is still writing.
expect_exit 0 cpipe run -j1
seq 1 10 >want.txt
cmp -s want.txt sub-1/out.txt || fail "the rerun recorded a mixed output: $(tr '\n' ' ' <sub-1/out.txt)"
pass
expect_err_contains "ended 1 process group left running by a cpipe run that was killed"
sleep 0.5
cmp -s want.txt sub-1/out.txt || fail "something kept writing the output after the rerun"
pass
expect_exit 0 cpipe plan
expect_out "0 to run, 1 up to date, 0 to adopt, 0 held by another run"

# The same after `cpipe state repair` turned the dead run's claim into an interrupted attempt.
rm sub-1/out.txt
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >first.out 2>&1 &
first=$!
wait_until "the job's third line" has_lines 3
kill -KILL $first
wait $first 2>/dev/null
expect_exit 0 cpipe state repair
expect_out "repaired 1 job record: they will run again"
expect_exit 0 cpipe run -j1
cmp -s want.txt sub-1/out.txt || fail "the run after a repair recorded a mixed output: $(tr '\n' ' ' <sub-1/out.txt)"
pass
expect_err_contains "ended 1 process group left running by a cpipe run that was killed"

# Only the leader of the job's process group is killed: its background writer must not outlive it.
set_job_command '(for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >> {out}; sleep 0.2; done) & echo $! > writer.pid; wait'
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >second.out 2>&1 &
second=$!
wait_until "the second job's writer" test -s writer.pid
# The old output was moved aside: wait for two lines of the new one.
wait_until "the second job's second line" has_lines 2
# The leader is the shell, the writer's parent.
leader=$(awk '{print $4}' "/proc/$(cat writer.pid)/stat")
kill -KILL "$leader"
wait $second
code=$?
[ $code -eq 1 ] || fail "the run whose job's leader was killed exited $code, expected 1: $(cat second.out)"
pass
# The failed job's partial output went to quarantine and the previous output came back.
cmp -s want.txt sub-1/out.txt || fail "the previous output was not put back: $(tr '\n' ' ' <sub-1/out.txt)"
pass
sleep 0.6
cmp -s want.txt sub-1/out.txt ||
	fail "the rest of the job's process group wrote the output after quarantine: $(tr '\n' ' ' <sub-1/out.txt)"
pass
# Gone, or a zombie waiting for whoever adopted it.
writer_state=$(awk '{print $3}' "/proc/$(cat writer.pid)/stat" 2>/dev/null)
[ -n "$writer_state" ] && [ "$writer_state" != Z ] && fail "the job's background writer is still running"
pass
done_testing
