#!/bin/sh
# Bad input gets a located message and exit 2, never a crash: recipe errors, unknown keys,
# missing raw inputs (with the chain of jobs that needed them), --skip-missing and cycles.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02
cd study

# No recipe file.
expect_exit 2 cpipe run -f nosuch.yaml
expect_err_contains "nosuch.yaml"

# A misspelt key in the recipe: file, line and a suggestion.
sed 's/in: \[t1_fov\]/in: [t1_fvo]/' cpipe.yaml >bad.yaml
expect_exit 2 cpipe plan -f bad.yaml
expect_err_contains "bad.yaml:"
expect_err_contains "t1_fvo"
expect_err_contains "t1_fov"

# An unknown target.
expect_exit 2 cpipe plan no_such_key
expect_err_contains "no_such_key"

# A subject the tree lists but no file has is an error naming the subjects that exist; with
# product: true a missing raw input shows the chain (and how to fix it), and --skip-missing leaves
# that subject out.
rm sub-02/T1w.nii.gz
mkdir -p sub-02
cat >study.tree <<'TREE'
subject = 01, 02
sub-{subject}
    T1w.nii.gz          (t1)
    T1w_reorient.nii.gz (t1_reorient)
    T1w_fov.nii.gz      (t1_fov)
    T1w_brain.nii.gz    (t1_brain)
group
    mean_brain.txt      (group_mean)
TREE
expect_exit 2 cpipe run group_mean
expect_err_contains "study.tree sets subject to 02, which no file has; known: 01"
{ echo "product: true"; cat cpipe.yaml; } >product.yaml
expect_exit 2 cpipe run -f product.yaml group_mean
expect_err_contains "sub-02/T1w.nii.gz"
expect_err_contains "reorient[subject=02]"
expect_err_contains "group_mean"
expect_err_contains "needed by reorient[subject=02] <- fov[subject=02] <- brain[subject=02] <- group_mean ("
expect_err_contains "drop product: to make jobs only for the files that exist"
expect_exit 0 cpipe run --skip-missing t1_brain
expect_err_contains "cpipe: skipped: study.tree sets subject to 02, which no file has; known: 01; nothing is made for subject 02"
expect_err_contains "3 done, 0 failed, 0 interrupted, 1 skipped"
expect_ran "brain 01
fov 01
reorient 01"

# An unknown --placeholder flag is an error; a known one restricts the run.
expect_exit 2 cpipe plan --subjcet 01
expect_err_contains "--subjcet"
expect_exit 0 cpipe plan --subject 01 -d t1_brain
expect_out_contains "brain[subject=01]"

# A cycle names its recipes.
cat >cycle.yaml <<'YAML'
tree: study.tree
recipes:
  - name: forward
    in: [t1_fov]
    out: [t1_brain]
    run: "cp {t1_fov} {t1_brain}"
  - name: backward
    in: [t1_brain]
    out: [t1_fov]
    run: "cp {t1_brain} {t1_fov}"
YAML
expect_exit 2 cpipe plan -f cycle.yaml t1_brain --subject 01
expect_err_contains "cycle.yaml:3: dependency cycle: forward -> backward -> forward"
expect_err_contains "forward"
expect_err_contains "backward"
# An unknown value on the command line: the known values (a long list shortened) and a close one.
cd "$WORK" || fail "no work directory"
make_study many $(seq -w 1 20)
cd many || fail "no study"
expect_exit 2 cpipe plan --subject 99
expect_err_contains "--subject 99: no such subject; known: 01, 02, 03, 04, 05, 06, 07, 08, 09, …, 18, 19, 20 (20 values)"
expect_exit 2 cpipe plan --subject 1
expect_err_contains "--subject 1: no such subject; known: 01,"
expect_err_contains "did you mean '01'?"
expect_exit 2 cpipe plan --subject 01,sub-07
expect_err_contains "did you mean '07'? (the 'sub-' is part of the file name, not of the value)"
done_testing
