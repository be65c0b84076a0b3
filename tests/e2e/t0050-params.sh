#!/bin/sh
# Parameters: `{name}` in run may name any placeholder of the tree (a single value is a constant, a
# list makes one job per value and an output must carry it), and `params:` declares constants that
# `--set` overrides. A parameter's value is part of the job's definition: changing it (in the file or
# on the command line) reruns exactly the jobs of the recipes that use it, and what depends on them.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
space = MNI
fwhm = 4, 6
sub-{subject}
    in.txt (in)
    brain.txt (brain)
    smooth_{fwhm}.txt (smooth)
    other.txt (other)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: brain
    in: [in]
    out: [brain]
    params: {dof: 12, label: "it's $(touch pwned) `touch pwned` \"q\""}
    run: echo "dof={dof} {label} space={space}" > {brain}; echo brain {subject} >> ran.log
  - name: smooth
    in: [brain]
    out: [smooth]
    run: "echo {fwhm} > {smooth}; echo smooth {subject} {fwhm} >> ran.log"
  - name: other
    in: [in]
    out: [other]
    params: {n: 1}
    run: "echo {n} > {other}; echo other {subject} >> ran.log"
YAML
for s in 1 2; do mkdir sub-$s && echo "in $s" >sub-$s/in.txt; done

# A constant (space: one value, no template of brain uses it), parameters, and a list (fwhm).
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "brain 1
brain 2
other 1
other 2
smooth 1 4
smooth 1 6
smooth 2 4
smooth 2 6" ] || fail "first run: $(sort ran.log)"
pass
[ "$(cat sub-1/brain.txt)" = "dof=12 it's \$(touch pwned) \`touch pwned\` \"q\" space=MNI" ] ||
	fail "brain.txt: $(cat sub-1/brain.txt)"
[ ! -e pwned ] || fail "a parameter's value ran as shell code"
pass
rm ran.log

# A default changed in the file: brain's jobs rerun (and smooth after them), other's do not.
sed 's/dof: 12/dof: 9/' cpipe.yaml >new.yaml && mv new.yaml cpipe.yaml
expect_exit 0 cpipe plan
expect_out_contains "brain[space=MNI,subject=1]  (command changed)"
expect_out_contains "brain[space=MNI,subject=2]  (command changed)"
expect_out_contains "smooth[fwhm=4,subject=1]  (runs if brain[space=MNI,subject=1] changes its output)"
expect_out_contains "6 to run (4 only if what they depend on changes), 2 up to date"
grep -q other out && fail "other reruns: $(cat out)"
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "brain 1
brain 2
smooth 1 4
smooth 1 6
smooth 2 4
smooth 2 6" ] || fail "after the default changed: $(sort ran.log)"
grep -q "^dof=9 " sub-2/brain.txt || fail "brain.txt: $(cat sub-2/brain.txt)"
pass
rm ran.log

# --set RECIPE.PARAM overrides the file; --set PARAM every recipe that has it; the same value as the
# one recorded reruns nothing, whichever way it is given.
expect_exit 0 cpipe plan --set brain.dof=6
expect_out_contains "brain[space=MNI,subject=1]  (command changed)"
expect_out_contains "6 to run (4 only if what they depend on changes), 2 up to date"
expect_exit 0 cpipe run --set dof=6
grep -q "^dof=6 " sub-1/brain.txt || fail "brain.txt: $(cat sub-1/brain.txt)"
pass
expect_exit 0 cpipe plan --set brain.dof=6
expect_out_contains "0 to run, 8 up to date"
# The narrower setting wins, in any order.
expect_exit 0 cpipe plan --set brain.dof=6 --set dof=7
expect_out_contains "0 to run, 8 up to date"
rm ran.log
expect_exit 0 cpipe run --set n=2 --set dof=6
[ "$(sort ran.log)" = "other 1
other 2" ] || fail "--set n=2: $(sort ran.log)"
pass
# Back to the file's values: exactly brain's and other's jobs (and smooth after brain) rerun.
expect_exit 0 cpipe plan
expect_out_contains "8 to run (4 only if what they depend on changes), 0 up to date"

# Completion offers the parameters after --set.
expect_exit 0 cpipe __complete 3 cpipe run --set ""
expect_out "brain.dof=
brain.label=
other.n=
dof=
label=
n="

# Mistakes on the command line name what is wrong.
expect_exit 2 cpipe plan --set nope=1
expect_err_contains "--set nope=1: no recipe has a parameter 'nope'"
expect_exit 2 cpipe plan --set brain.nope=1
expect_err_contains "--set brain.nope=1: recipe 'brain' has no parameter 'nope'"
expect_exit 2 cpipe plan --set brainn.dof=1
expect_err_contains "--set brainn.dof=1: no recipe 'brainn' (did you mean 'brain'?)"
expect_exit 2 cpipe plan --set dof
expect_err_contains "--set dof: expected [RECIPE.]PARAM=VALUE"

# Mistakes in the file, with file and line.
expect_plan_error 's/params: {n: 1}/params: {n: 1, unused: 2}/' \
	"cpipe.yaml:15: recipe 'other': params: 'unused' is not used in run (as {unused})"
expect_plan_error 's/params: {n: 1}/params: {n: [1, 2]}/' \
	"cpipe.yaml:15: recipe 'other': params: 'n': a parameter has one value"
expect_plan_error 's/params: {n: 1}/params: {space: 1}/; s/echo {n}/echo {space}/' \
	"cpipe.yaml:15: recipe 'other': params: 'space' is also a placeholder of the tree"
# A list that no output carries: every job would write the same file.
expect_plan_error 's/echo {n}/echo {n} {fwhm}/' \
	"cpipe.yaml:16: recipe 'other': placeholder 'fwhm' has several values"
# ... unless the command line gives it one value: then it is a constant again.
sed 's/echo {n}/echo {n} {fwhm}/' cpipe.yaml >new.yaml && mv new.yaml cpipe.yaml
expect_exit 0 cpipe plan --fwhm 4 other
expect_out_contains "other[fwhm=4,subject=1]"
echo "ok $checks checks"
