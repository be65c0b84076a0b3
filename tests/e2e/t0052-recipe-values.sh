#!/bin/sh
# Per-recipe placeholder values (fsl-pipe's placeholders={...}): `placeholders: {subject: [..]}`
# on a recipe replaces the tree's values for that recipe only, for the jobs it iterates over and
# the files a batch job reads; the recipes it depends on make what it needs. The command line's
# filter (--subject) still narrows: the recipe keeps those of its values it lets through. A
# placeholder no input uses gets its values here too (one job per value).
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    in.txt (in)
    a.txt (a)
    b.txt (b)
    smooth_{fwhm}.txt (smooth)
group.txt (group)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: a
    in: [in]
    out: [a]
    run: "cp {in} {a}; echo a {subject} >> ran.log"
  - name: b
    in: [a]
    out: [b]
    placeholders: {subject: ["01", "03"]}
    run: "cp {a} {b}; echo b {subject} >> ran.log"
  - name: group
    in: [a]
    out: [group]
    batch: [subject]
    placeholders: {subject: ["02", "03"]}
    run: "cat {a} > {group}; echo group >> ran.log"
  - name: smooth
    in: [in]
    out: [smooth]
    placeholders: {subject: "04", fwhm: [4, 8]}
    run: "echo {fwhm} > {smooth}; echo smooth {subject} {fwhm} >> ran.log"
YAML
for s in 01 02 03 04; do mkdir sub-$s && echo "in $s" >sub-$s/in.txt; done
expect_exit 0 cpipe plan -v
expect_out_contains "cat 'sub-02/a.txt' 'sub-03/a.txt' > 'group.txt'"
expect_exit 0 cpipe run
[ "$(sort ran.log)" = "a 01
a 02
a 03
a 04
b 01
b 03
group
smooth 04 4
smooth 04 8" ] || fail "first run: $(sort ran.log)"
pass
[ "$(cat group.txt)" = "in 02
in 03" ] || fail "group.txt: $(cat group.txt)"
[ ! -e sub-02/b.txt ] && [ ! -e sub-04/b.txt ] && [ ! -e sub-01/smooth_4.txt ] || fail "made too much: $(ls sub-*)"
pass
rm ran.log

# The command line narrows further: b keeps 01; the group, made from part of its values, is left out.
rm sub-01/b.txt sub-03/b.txt group.txt
expect_exit 0 cpipe run --subject 01,02
expect_err_contains "group: left out: it covers every subject"
[ "$(sort ran.log)" = "b 01" ] || fail "--subject 01,02: $(sort ran.log)"
pass
# None of b's values let through: nothing to make for b, and it says why.
expect_exit 0 cpipe plan b --subject 02
expect_err_contains "b: nothing to make: no combination of placeholder values has every input of recipe 'b' among its placeholders: values that matches --subject 02"

# A value added to a recipe's list makes its jobs and reruns no other; a value added to a group's
# list reruns the group (its command reads one more file).
rm ran.log
expect_exit 0 cpipe run
sed 's/\["01", "03"\]/["01", "03", "04"]/; s/\["02", "03"\]/["02", "03", "04"]/' cpipe.yaml >new.yaml
mv new.yaml cpipe.yaml
expect_exit 0 cpipe plan
expect_out_contains "b[subject=04]  (output missing: sub-04/b.txt)"
expect_out_contains "group  (command changed)"
expect_out_contains "2 to run, 8 up to date"

# Mistakes, with file and line.
expect_plan_error 's/\["01", "03"[^]]*\]/["01", "01"]/' \
	"cpipe.yaml:10: recipe 'b': placeholders: 'subject': the value '01' is listed twice"
expect_plan_error 's/{subject: \["01", "03"[^]]*\]}/{subjet: ["01"]}/' \
	"cpipe.yaml:10: recipe 'b': placeholders: 'subjet' is no placeholder of the tree nor of this recipe (did you mean 'subject'?)"
expect_plan_error 's/{subject: \["01", "03"[^]]*\]}/[01, 03]/' \
	"cpipe.yaml:10: recipe 'b': placeholders: must be a mapping of names to values"
echo "ok $checks checks"
