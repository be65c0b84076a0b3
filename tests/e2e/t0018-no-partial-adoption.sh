#!/bin/sh
# Adoption (outputs that exist without a record are taken as up to date) never takes a file that
# a failed or interrupted run wrote: not the partial output of a job whose subject directory was
# renamed while it ran, and not the partial outputs of a crashed run after state.db was deleted
# (the job logs show which jobs succeeded). An empty state.db is damage, not a new database.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"

# 1. A subject directory renamed while its job runs: the job fails, its partial output moved along.
mkdir renamed && cd renamed || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    in.txt   (raw)
    out.txt  (part)
group
    all.txt  (all)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: part
    in: [raw]
    out: [part]
    run: "echo partial > {part}; touch started; while [ ! -e go ]; do sleep 0.05; done; exit 1"
  - name: all
    in: [part]
    out: [all]
    batch: [subject]
    run: "cat {part} > {all}"
YAML
mkdir sub-1 && echo one >sub-1/in.txt
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j1 >run.out 2>&1 &
first=$!
wait_until "the job's start" test -e started
mv sub-1 sub-1x
touch go
wait $first
[ $? -eq 1 ] || fail "the failed job's run did not exit 1: $(cat run.out)"
pass
expect_exit 0 cpipe plan
expect_out_contains "sub-1x/out.txt was written while a job failed or was interrupted"
expect_out_contains "2 to run, 0 up to date, 0 to adopt"
cd .. || exit 2

# 2. A crashed run's partial outputs, after state.db is deleted.
mkdir crashed && cd crashed || exit 2
make_job_study 'echo $$ > pid-{subject}; echo partial > {out}; if [ {subject} != 1 ]; then touch started-{subject}; while [ ! -e go ]; do sleep 0.05; done; fi; echo rest >> {out}'
for s in 2 3; do mkdir sub-$s && echo $s >sub-$s/in.txt; done
# shellcheck disable=SC2086
$CPIPE_WRAPPER "$CPIPE" run -j3 >run.out 2>&1 &
first=$!
wait_until "subject 2's job" test -e started-2
wait_until "subject 3's job" test -e started-3
wait_until "the end of subject 1's job" grep -q "done   job\[subject=1\]" run.out
kill -KILL $first
wait $first 2>/dev/null
# The orphans are ended by hand here: this part is about what the files say afterwards.
kill -KILL "-$(cat pid-2)" "-$(cat pid-3)"
rm -f .cpipe/state.db .cpipe/state.db-wal .cpipe/state.db-shm
expect_exit 0 cpipe plan
expect_out_contains "run        job[subject=2]  (never recorded: .cpipe/logs/"
expect_out_contains "1 to adopt"
expect_out_contains "2 to run, 0 up to date, 1 to adopt"
touch go
expect_exit 0 cpipe run -j3
expect_err_contains "adopted 1 job"
for s in 1 2 3; do
	printf 'partial\nrest\n' >want
	cmp -s want sub-$s/out.txt || fail "sub-$s/out.txt is not a whole output: $(cat sub-$s/out.txt)"
	pass
done

# 3. An empty state.db is refused as damaged, with the way out.
: >.cpipe/state.db
rm -f .cpipe/state.db-wal .cpipe/state.db-shm
expect_exit 2 cpipe plan
expect_err_contains "the file is empty (0 bytes)"
expect_err_contains "move .cpipe/state.db (and its -wal and -shm files) away"
expect_exit 2 cpipe run
done_testing
