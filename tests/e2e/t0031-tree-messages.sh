#!/bin/sh
# Tree errors that locate the problem: a bad indent lists the indents in use at that point; a tab
# in an indent is counted as one space (file-tree's rule) and warned about with file and line; a
# recipe file whose tree: names no file is reported at that line, with the directory searched.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

printf 'sub-{subject}\n    anat\n        T1w.nii.gz (t1)\n      T2w.nii.gz (t2)\n' >indent.tree
expect_exit 2 cpipe tree indent.tree
expect_err_contains "indent.tree:4: Number of spaces of current line does not match any previous lines: it is indented by 6; the indents in use here are 0 (line 1), 4 (line 2), 8 (line 3), or more than 8 for a child of line 3"

printf 'sub-{subject}\n\tT1w.nii.gz (t1)\n\tT2w.nii.gz (t2)\n' >tabs.tree
expect_exit 0 cpipe tree tabs.tree
expect_err_contains "cpipe: warning: tabs.tree:2: a tab in an indent counts as one space, as in file-tree (2 lines indented with tabs); indent with spaces"
expect_out_contains "t2	sub-{subject}/T2w.nii.gz"
# A sub-tree's tab is reported with the sub-tree's own file and line, once.
printf 'top\n    -> tabs (one)\n    -> tabs (two)\n' >outer.tree
expect_exit 0 cpipe tree outer.tree
[ "$(grep -c 'tabs.tree:2: a tab' "$WORK/err")" -eq 1 ] || fail "the sub-tree's warning is not given once: $(cat "$WORK/err")"
pass
# Spaces only: no warning.
printf 'sub-{subject}\n    T1w.nii.gz (t1)\n' >spaces.tree
expect_exit 0 cpipe tree spaces.tree
[ ! -s "$WORK/err" ] || fail "warning for a tree without tabs: $(cat "$WORK/err")"
pass

mkdir study
here=$(pwd -P)
printf 'data: .\ntree: ../missing.tree\nrecipes: []\n' >study/cpipe.yaml
expect_exit 2 cpipe plan -C study
expect_err_contains "cpipe: cpipe.yaml:2: tree: no such file: $here/missing.tree (a relative tree: is taken from the recipe file's directory, $here/study)"
printf 'tree: elsewhere/study\nrecipes: []\n' >study/cpipe.yaml
expect_exit 2 cpipe status -C study
expect_err_contains "cpipe.yaml:1: tree: no such file: $here/study/elsewhere/study, nor with .tree added"
done_testing
