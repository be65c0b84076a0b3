#!/bin/sh
# On a real BIDS layout (ds114: subjects 01-10, sessions test and retest): a command-line filter
# never makes a partial group output, --skip-missing lists what it leaves out, and every message
# names the real culprit (unknown values with the known ones, the filter that left nothing, a key
# with no raw file, the link that would fix a product recipe).
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/bids-fixture.sh"
make_bids_study ds114 study
cd study || fail "no study"
expect_exit 0 cpipe run -q
ran_lines >/dev/null
group=derivatives/cpipe/group/bold_stats_list.txt
group_before=$(cksum <"$group")

# --subject 01 remakes subject 01's outputs, but not the group from one subject; it says why.
echo changed >>sub-01/ses-test/func/sub-01_ses-test_task-linebisection_bold.nii.gz
expect_exit 0 cpipe plan --subject 01
expect_out_contains "1 to run, 11 up to date, 0 to adopt, 0 held by another run, 1 skipped"
expect_err_contains "cpipe: skipped: bold_group: left out: it covers every subject, and the command line (--subject 01) narrows subject to a subset"
expect_exit 0 cpipe run --subject 01
expect_err_contains "bold_group: left out: it covers every subject"
expect_err_contains "1 done, 0 failed, 0 interrupted, 1 skipped"
expect_ran "bold sub-01/ses-test/func/sub-01_ses-test_task-linebisection_bold.nii.gz"
[ "$(cksum <"$group")" = "$group_before" ] || fail "--subject 01 changed the group output"
pass
# Asked for explicitly, a partial group is made (here: over subject 01's 10 bold outputs).
expect_exit 0 cpipe plan --subject 01 --partial-group bold_group
expect_out_contains "run        bold_group  ("
expect_out_contains "1 to run, 10 up to date"
# Without the filter the group catches up.
expect_exit 0 cpipe run -q
expect_ran "group"

# Unknown values: the known ones, and the close one.
expect_exit 2 cpipe plan --subject 99
expect_err_contains "--subject 99: no such subject; known: 01, 02, 03, 04, 05, 06, 07, 08, 09, 10"
expect_exit 2 cpipe plan --subject sub-01
expect_err_contains "--subject sub-01: no such subject; known: 01,"
expect_err_contains "did you mean '01'? (the 'sub-' is part of the file name, not of the value)"
expect_exit 2 cpipe plan --session tset
expect_err_contains "--session tset: no such session; known: retest, test; did you mean 'test'?"

# A filter that exists alone but leaves nothing together with another is named.
rm -r sub-02/ses-retest
expect_exit 0 cpipe plan --subject 02 --session retest
expect_err_contains "T1w_stats: nothing to make: no T1w file was found that matches --subject 02 --session retest"
expect_err_contains "bold_stats: nothing to make: no bold file was found that matches --subject 02 --session retest"

# product: every combination must exist; the error says what would fix it, and --skip-missing
# lists each output it will not make, the group included, and counts them.
{ echo "product: true"; cat cpipe.yaml; } >product.yaml
expect_exit 2 cpipe plan -f product.yaml bold_stats
expect_err_contains "input 'sub-02/ses-retest/func/sub-02_ses-retest_task-covertverbgeneration_bold.nii.gz' (key bold) does not exist"
expect_err_contains "drop product: to make jobs only for the files that exist, or link the placeholders that go together: --link subject,task,session"
expect_err_contains "or link: [[subject, task, session"
# The link the message suggests does fix it, in the recipe file or on the command line.
{ echo "product: true"; echo "link: [[subject, session]]"; cat cpipe.yaml; } >linked.yaml
expect_exit 0 cpipe plan -f linked.yaml bold_stats
expect_out_contains "0 to run, 95 up to date"
expect_exit 0 cpipe plan -f product.yaml --link subject,session bold_stats
expect_out_contains "0 to run, 95 up to date"
expect_exit 0 cpipe run -f product.yaml --skip-missing
expect_err_contains "cpipe: skipped: input 'sub-02/ses-retest/anat/sub-02_ses-retest_T1w.nii.gz' (key T1w) does not exist"
expect_err_contains "cpipe: skipped: bold_group: left out: some of its inputs are missing (see above)"
skipped=$(grep -c '^cpipe: skipped: ' "$WORK/err")
[ "$skipped" -eq 7 ] || fail "expected 1 T1w, 5 bold and the group skipped, got $skipped: $(cat "$WORK/err")"
pass
expect_err_contains "nothing to do (114 jobs up to date, 7 skipped)"
# Only when asked for, the group is made from the inputs that exist (95 of 100 bold outputs).
expect_exit 0 cpipe run -f product.yaml --skip-missing --partial-group
expect_ran "group"
[ "$(wc -l <"$group")" -eq 95 ] || fail "the partial group lists $(wc -l <"$group") outputs"
pass
# The product filter with no value for a placeholder names the filter.
expect_exit 2 cpipe plan -f product.yaml --subject 02 --session retest bold_stats
expect_err_contains "no file matches the command line's --subject 02 --session retest"

# By default the same data need no flag: the removed session's jobs are simply not there.
expect_exit 0 cpipe plan -v
expect_out_contains "1 to run, 114 up to date"
expect_exit 0 cpipe run
expect_ran "group"

# A recipe with two inputs makes jobs only where both exist; plan -v says what it left out.
cat >pair.yaml <<YAML
tree: $CPIPE_SOURCE_DIR/trees/bids.tree
recipes:
  - name: pair
    in: [T1w, bold]
    out: [bold_stats]
    run: "cat {T1w} {bold} > {bold_stats}"
YAML
rm sub-03/ses-test/anat/sub-03_ses-test_T1w.nii.gz
expect_exit 0 cpipe plan -f pair.yaml -v
expect_out_contains "left out   pair: no job for session=test, subject=03, task=covertverbgeneration: a bold file exists for it, but no T1w file"

# A key whose raw files are all gone: a warning, not an error.
find . -name '*_T1w.nii.gz' -delete
expect_exit 0 cpipe plan T1w_stats
expect_err_contains "cpipe: warning: T1w_stats: nothing to make: no T1w file was found"
expect_out_contains "0 to run, 0 up to date"
echo "ok [$TEST_NAME]: $checks checks"
