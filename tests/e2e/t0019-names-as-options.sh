#!/bin/sh
# File names are data: a substituted path that starts with '-' is written ./-... so no program
# reads it as an option; a value given on the command line that would lead out of the data root
# is refused; a directory whose name holds braces is data, not a placeholder.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
{subject}
    T1w.txt (t1)
    a.txt   (a)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
data: data
recipes:
  - name: sorter
    in: [t1]
    out: [a]
    run: sort {t1} > {a}
YAML
mkdir -p data/--output=.. data/s1
printf 'b\na\n' >data/--output=../T1w.txt
printf 'd\nc\n' >data/s1/T1w.txt
expect_exit 0 cpipe run -j1
# sort must have read the file, not taken its name for --output=../T1w.txt.
[ -e T1w.txt ] && fail "a job wrote T1w.txt outside the data root: a file name became an option"
pass
printf 'a\nb\n' >want
cmp -s want data/--output=../a.txt || fail "the output is not the sorted input: $(cat data/--output=../a.txt)"
pass
expect_exit 0 cpipe plan -v
expect_out_contains "up to date sorter[subject=--output=..]"

# Command-line values that lead out of the data root (where a study next door has an input).
mkdir x && echo z >x/T1w.txt
expect_exit 2 cpipe run --subject ../x
expect_err_contains "value '../x' of subject would put paths outside the data root"
expect_exit 2 cpipe plan -p subject=/tmp/x
expect_err_contains "value '/tmp/x' of subject would put paths outside the data root"
expect_exit 2 cpipe run -p subject=s1,a/../../x
expect_err_contains "value 'a/../../x' of subject"
[ -e x/a.txt ] && fail "a job wrote x/a.txt outside the data root"
pass
expect_exit 0 cpipe plan -p subject=s1

# A directory named with braces is a subject like any other.
mkdir 'data/{a}' && echo x >'data/{a}/T1w.txt'
expect_exit 0 cpipe run
[ "$(cat 'data/{a}/a.txt')" = x ] || fail "the subject '{a}' was not made"
pass
done_testing
