#!/bin/sh
# An optional output that the command did not write is part of the finished job's result: it
# reruns nothing (neither the job nor its dependants) until it appears or the job reruns for
# another reason.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    in.txt (in)
    out.txt (out)
    maybe.txt (maybe)
    next.txt (next)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: make
    in: [in]
    out: [out, maybe]
    optional: [maybe]
    run: "cp {in} {out} && echo make {subject} >> ran.log"
  - name: next
    in: [out, maybe]
    optional: [maybe]
    out: [next]
    run: "cat {out} > {next} && echo next {subject} >> ran.log"
YAML
for s in 1 2; do mkdir sub-$s && echo "in $s" >sub-$s/in.txt; done
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "make 1
make 2
next 1
next 2" ] || fail "first run: $(cat ran.log)"
pass
rm ran.log
# Nothing changed: nothing runs, and plan says so.
expect_exit 0 cpipe plan
expect_out "0 to run, 4 up to date, 0 to adopt, 0 held by another run"
expect_exit 0 cpipe run
expect_err_contains "nothing to do (4 jobs up to date)"
[ ! -e ran.log ] || fail "the second run ran: $(cat ran.log)"
pass
# The optional output appears: its job is stale (and so is what reads it), for that subject only.
echo extra >sub-2/maybe.txt
expect_exit 0 cpipe plan
expect_out_contains "make[subject=2]  (output modified since recorded: sub-2/maybe.txt)"
expect_out_contains "next[subject=2]  (runs if make[subject=2] changes its output)"
expect_out_contains "2 to run (1 only if what they depend on changes), 2 up to date"
# make reruns without writing it (the stray file is set aside first): next is as it was, cut off.
expect_exit 0 cpipe run
[ "$(cat ran.log)" = "make 2" ] && [ ! -e sub-2/maybe.txt ] || fail "after maybe.txt appeared: $(cat ran.log)"
pass
