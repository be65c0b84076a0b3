#!/bin/sh
# Early cutoff through a real single-node SLURM (ports 7861/7862): the job script of a job that
# runs only because of jobs it depends on checks, on the node, whether its inputs came out as its
# last run saw them (cpipe __unchanged); if so it does not run its command, and the coordinator
# records it up to date when it imports the marker. A changed output reruns what is below it;
# `cutoff: false` opts a recipe out.
# ctest-resource-lock: slurm-7861-7862
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/cluster/cluster-lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/cutoff-fixture.sh"
start_slurm 7861 7862
export CPIPE_POLL_INTERVAL=0.5

mkdir study && cd study || exit 2
make_chain_study 1 2 3
write_recipes() { write_chain_recipes "$1" "$2" group; }
write_recipes "cat {in} > {a}" ""
expect_exit 0 cpipe run --submit=slurm --wait
expect_ran "a 1
a 2
a 3
all
b 1
b 2
b 3
c 1
c 2
c 3"

# Step a's command changes cosmetically: a reruns and writes the same output; b, c and the group
# job are cut off on the node. Submitted without --wait: the coordinator is gone when they run.
write_recipes "cat < {in} > {a}" ""
expect_exit 0 cpipe plan
expect_out_contains "b[subject=1]  (runs if a[subject=1] changes its output)"
expect_out_contains "all  (runs if c[subject=1] or one of 2 other jobs changes its output)"
expect_exit 0 cpipe run --submit=slurm
ls .cpipe/jobs/b_subject_1*.unchanged >/dev/null 2>&1 || fail "no list of recorded files for b[subject=1]"
pass
expect_exit 0 cpipe wait
expect_err_contains "3 done, 0 failed, 0 skipped, 7 cut off (inputs unchanged) on the cluster"
expect_ran "a 1
a 2
a 3"
grep -q "not run (early cutoff)" .cpipe/logs/all.log || fail "the group job's log: $(cat .cpipe/logs/all.log)"
pass
[ "$(cat .cpipe/jobs/*.marker | grep -cx "unneeded 1")" -eq 7 ] || fail "not 7 markers of jobs not run"
pass
expect_exit 0 cpipe plan
expect_out "0 to run, 10 up to date, 0 to adopt, 0 held by another run"

# Subject 2's input changes: everything below its a reruns, the others' b and c stay cut off.
echo "in 2 changed" >sub-2/in.txt
write_recipes "cat -- {in} > {a}" ""
expect_exit 0 cpipe run --submit=slurm --wait
expect_ran "a 1
a 2
a 3
all
b 2
c 2"
expect_err_contains "cut off (inputs unchanged)"
grep -q "IN 2 CHANGED" all.txt || fail "all.txt: $(cat all.txt)"
pass
expect_exit 0 cpipe plan
expect_out "0 to run, 10 up to date, 0 to adopt, 0 held by another run"

# A job whose last run failed (forced, its inputs as its last success read them) runs on the node
# when a job it depends on runs: its recorded files would say unchanged, so it gets no check.
touch fail-b-1
expect_exit 1 cpipe run b -o -p subject=1 --submit=slurm --wait
rm fail-b-1
write_recipes "cat {in} > {a} && true" ""
expect_exit 0 cpipe run --submit=slurm --wait
expect_ran "a 1
a 2
a 3
b 1"
expect_err_contains "4 done, 0 failed, 0 skipped, 6 cut off (inputs unchanged) on the cluster"
expect_exit 0 cpipe plan
expect_out "0 to run, 10 up to date, 0 to adopt, 0 held by another run"

# cutoff: false on b: b runs on the cluster whenever a runs; c and the group job are still cut off.
write_recipes "cat {in} > {a}" "    cutoff: false"
expect_exit 0 cpipe run --submit=slurm --wait
expect_ran "a 1
a 2
a 3
b 1
b 2
b 3"
expect_err_contains "6 done, 0 failed, 0 skipped, 4 cut off"
nothing_pending
done_testing
