#!/bin/sh
# cpipe clean removes the outputs cpipe made for the targets (-n lists them first), also for a
# subject removed from the study, and drops their records; it never removes a raw input, a file
# outside the data root, or an output cpipe adopted instead of making it.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02 03
cd study
expect_exit 0 cpipe run
rm ran.log
listing() { find . -path ./.cpipe -prune -o -type f -print | sort; }
listing >"$WORK/before"

# -n lists and removes nothing.
expect_exit 0 cpipe clean -n t1_fov
expect_out "would remove sub-01/T1w_fov.nii.gz
would remove sub-01/T1w_reorient.nii.gz
would remove sub-02/T1w_fov.nii.gz
would remove sub-02/T1w_reorient.nii.gz
would remove sub-03/T1w_fov.nii.gz
would remove sub-03/T1w_reorient.nii.gz
would remove 6 files of 6 jobs"
listing | cmp -s - "$WORK/before" || fail "clean -n removed something"
pass
# The targets' jobs (and what they need): their outputs go, their records too, raw inputs stay.
expect_exit 0 cpipe clean t1_fov
expect_out "removed 6 files; forgot 6 job records"
for s in 01 02 03; do
	[ -f sub-$s/T1w.nii.gz ] && [ -f sub-$s/T1w_brain.nii.gz ] && [ ! -e sub-$s/T1w_fov.nii.gz ] &&
		[ ! -e sub-$s/T1w_reorient.nii.gz ] || fail "subject $s: $(ls sub-$s)"
	pass
done
expect_exit 0 cpipe plan t1_fov
expect_out_contains "reorient[subject=01]  (output missing"
expect_exit 0 cpipe run
# The brains' input is remade as it was: they and the group are cut off (t0038).
expect_ran "fov 01
fov 02
fov 03
reorient 01
reorient 02
reorient 03"

# A subject removed from the study: its outputs are cleaned with its recipe's jobs.
rm sub-03/T1w.nii.gz
expect_exit 0 cpipe clean -v t1_brain
expect_out_contains "removed sub-03/T1w_brain.nii.gz"
expect_out_contains "removed sub-01/T1w_brain.nii.gz"
[ -z "$(ls sub-03)" ] || fail "subject 03's outputs remain: $(ls sub-03)"
pass

# An adopted output (made outside cpipe) and a recorded output that is a raw input now stay.
expect_exit 0 cpipe run
expect_exit 0 cpipe forget
printf 'my own mean\n' >group/mean_brain.txt
expect_exit 0 cpipe run --rebuild-unknown t1_brain
expect_exit 0 cpipe run
expect_err_contains "adopted 1 job whose outputs existed"
# The reorient step is dropped from the recipes: its outputs are raw inputs of fov now.
sed '/- name: reorient/,/run: .*reorient.*/d' cpipe.yaml >raw.yaml
grep -q reorient raw.yaml && grep -q "name: reorient" raw.yaml && fail "sed left the reorient recipe"
expect_exit 0 cpipe clean -f raw.yaml
expect_out_contains "(kept 2 recorded outputs that are raw inputs now or outside the data root)"
[ "$(cat group/mean_brain.txt)" = "my own mean" ] || fail "clean removed an adopted output"
[ -f sub-01/T1w_reorient.nii.gz ] && [ -f sub-02/T1w_reorient.nii.gz ] || fail "clean removed a raw input"
[ ! -e sub-01/T1w_fov.nii.gz ] && [ ! -e sub-01/T1w_brain.nii.gz ] || fail "clean left made outputs"
[ -f sub-01/T1w.nii.gz ] && [ -f sub-02/T1w.nii.gz ] || fail "clean removed the study's raw data"
pass
expect_exit 2 cpipe clean --json
expect_err_contains "--json and --by are status options"
done_testing
