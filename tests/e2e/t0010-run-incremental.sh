#!/bin/sh
# The core loop on the design's structural example over 3 subjects: a clean run, a no-op, a content
# change, a touch, a recipe edit, a new subject, and a failing job with -k.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02 03
cd study

expect_exit 0 cpipe run -j2
expect_ran "brain 01
brain 02
brain 03
fov 01
fov 02
fov 03
group
reorient 01
reorient 02
reorient 03"
[ "$(cat group/mean_brain.txt)" = "T1 of 01
T1 of 02
T1 of 03" ] || fail "group output is wrong: $(cat group/mean_brain.txt)"
pass
[ -f .cpipe/state.db ] || fail "no state database"
pass

# A second run does nothing.
expect_exit 0 cpipe run
expect_ran ""
expect_err_contains "nothing to do"

# Changing one subject's input content reruns exactly its chain and the group step.
printf 'new T1 of 02\n' >sub-02/T1w.nii.gz
expect_exit 0 cpipe plan
expect_out_contains "input changed: sub-02/T1w.nii.gz"
expect_exit 0 cpipe run
expect_ran "brain 02
fov 02
group
reorient 02"
grep -q "new T1 of 02" group/mean_brain.txt || fail "group output was not remade"
pass

# touch alone (same content, new mtime) reruns nothing.
sleep 0.01
touch sub-01/T1w.nii.gz sub-03/T1w_fov.nii.gz
expect_exit 0 cpipe run
expect_ran ""

# Editing one recipe's run reruns that recipe's jobs; their outputs came out the same, so their
# dependents are cut off (early cutoff, t0038).
sed 's/cp {t1_reorient} {t1_fov}/cat {t1_reorient} > {t1_fov}/' cpipe.yaml >cpipe.yaml.new && mv cpipe.yaml.new cpipe.yaml
expect_exit 0 cpipe plan
expect_out_contains "command changed"
expect_exit 0 cpipe run
expect_ran "fov 01
fov 02
fov 03"

# Adding a subject reruns only the new subject and the group step.
mkdir sub-04 && printf 'T1 of 04\n' >sub-04/T1w.nii.gz
expect_exit 0 cpipe run
expect_ran "brain 04
fov 04
group
reorient 04"

# A failing job with -k: the other subjects finish, the failed outputs are quarantined.
mkdir sub-05 && printf 'T1 of 05\n' >sub-05/T1w.nii.gz
mkdir sub-06 && printf 'T1 of 06\n' >sub-06/T1w.nii.gz
sed 's/run: "cp {t1_fov} {t1_brain} \&\& echo brain {subject} >> ran.log"/run: "cp {t1_fov} {t1_brain} \&\& test {subject} != 05 \&\& echo brain {subject} >> ran.log"/' \
	cpipe.yaml >cpipe.yaml.new && mv cpipe.yaml.new cpipe.yaml
grep -q 'test {subject} != 05' cpipe.yaml || fail "could not edit the recipe"
expect_exit 1 cpipe run -k -j2
expect_err_contains "FAILED brain[subject=05]"
ran=$(ran_lines)
echo "$ran" | grep -q "brain 06" || fail "subject 06 did not finish with -k: $ran"
echo "$ran" | grep -q "group" && fail "the group step ran although brain 05 failed"
[ -f sub-05/T1w_brain.nii.gz ] && fail "the failed job's output was left in place"
[ -f .cpipe/failed/*/sub-05/T1w_brain.nii.gz ] || fail "the failed output was not quarantined: $(find .cpipe/failed)"
pass
# status counts the failure; the log tells why; the next plan reruns the job.
expect_exit 0 cpipe status
expect_out_contains "t1_brain"
awk '$1 == "t1_brain" && $5 == 1 { found = 1 } END { exit !found }' "$WORK/out" || fail "status shows no failed t1_brain: $(cat "$WORK/out")"
pass
expect_exit 0 cpipe log 'brain[subject=05]'
expect_out_contains "cpipe:"
expect_exit 0 cpipe plan
expect_out_contains "brain[subject=05]"
done_testing
