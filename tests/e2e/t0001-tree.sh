#!/bin/sh
# cpipe tree: parse and print a tree; errors name the tree file and line; --help and --version.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

cat >t.tree <<'TREE'
# the tutorial's layout
subject = 01, 02
subject{subject}
    T1w.nii.gz          (t1)
    T1w_brain.nii.gz    (t1_brain)
TREE
expect_exit 0 cpipe tree t.tree
expect_out "subject = 01, 02

.
    subject{subject}
        T1w.nii.gz (t1)
        T1w_brain.nii.gz (t1_brain)

subject{subject}	subject{subject}
t1	subject{subject}/T1w.nii.gz
t1_brain	subject{subject}/T1w_brain.nii.gz"

# -C puts the templates below a data directory; -p overrides a value.
expect_exit 0 cpipe tree t.tree -C /data -p subject=07
expect_out_contains "subject = 07"
expect_out_contains "t1	/data/subject{subject}/T1w.nii.gz"

# The shipped trees parse, including one that includes a sub-tree.
for tree in "$CPIPE_SOURCE_DIR"/trees/*.tree; do
	expect_exit 0 cpipe tree "$tree"
done
expect_exit 0 cpipe tree "$CPIPE_SOURCE_DIR/trees/study.tree"
expect_out_contains "anat/brain	sub-{subject}/[ses-{session}]/anat/{anat/basename}_brain.nii.gz"

# Errors: file, line and what is wrong; exit 2.
printf 'a\n    b\n  c\n' >bad.tree
expect_exit 2 cpipe tree bad.tree
expect_err_contains "bad.tree:3:"
expect_err_contains "does not match any previous lines"
printf 'ok.txt\nbad|name.txt\n' >bad2.tree
expect_exit 2 cpipe tree bad2.tree
expect_err_contains "bad2.tree:2:"
expect_err_contains "bad|name.txt"
printf 'A = 1, 2\nB = x\n&LINK A, B\n' >bad3.tree
expect_exit 2 cpipe tree bad3.tree
expect_err_contains "bad3.tree:3:"
printf -- '->nosuchtree\n' >bad4.tree
expect_exit 2 cpipe tree bad4.tree
expect_err_contains "nosuchtree"
expect_exit 2 cpipe tree does-not-exist.tree
expect_err_contains "does-not-exist.tree"
expect_exit 2 cpipe tree
expect_exit 2 cpipe tree t.tree -p novalue

# Help, version, unknown command.
expect_exit 0 cpipe tree --help
expect_out_contains "usage: cpipe tree"
expect_exit 0 cpipe --version
expect_out_contains "cpipe "
expect_exit 0 cpipe --help
expect_out_contains "glob"
expect_exit 2 cpipe frobnicate
expect_err_contains "frobnicate"
done_testing
