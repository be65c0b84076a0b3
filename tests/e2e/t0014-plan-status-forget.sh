#!/bin/sh
# plan --json, status, graph, forget with adoption and --rebuild-unknown, --force and --force-all,
# and a group step whose command holds every subject's path (no per-argument kernel limit).
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02
cd study

expect_exit 0 cpipe plan --json
python3 - "$WORK/out" <<'PY' || fail "plan --json: $(cat "$WORK/out")"
import json, sys
plan = json.load(open(sys.argv[1]))
jobs = {job["id"]: job for job in plan["jobs"]}
assert plan["summary"]["run"] == 7, plan["summary"]
assert jobs["brain[subject=01]"]["reason"] == "output missing"
assert jobs["brain[subject=01]"]["placeholders"] == {"subject": "01"}
assert jobs["group_mean"]["depends_on"] == ["brain[subject=01]", "brain[subject=02]"]
assert jobs["fov[subject=02]"]["inputs"] == ["sub-02/T1w_reorient.nii.gz"]
PY
pass

expect_exit 0 cpipe graph
expect_out_contains "digraph"
expect_out_contains "group_mean"

expect_exit 0 cpipe run
ran_lines >/dev/null
expect_exit 0 cpipe status
expect_out_contains "t1_brain"
awk '$1 == "t1_brain" && $2 == 2 && $3 == 0 && $4 == 0 { ok = 1 } END { exit !ok }' "$WORK/out" ||
	fail "status: $(cat "$WORK/out")"
pass

# forget drops the records; the next run adopts the existing outputs and says so.
expect_exit 0 cpipe forget
expect_out_contains "forgot 7 job records"
expect_exit 0 cpipe plan
expect_out_contains "7 to adopt"
expect_exit 0 cpipe run
expect_err_contains "adopted 7 jobs"
expect_ran ""
# ... or, with --rebuild-unknown, reruns them (the group is cut off: brain 02 came out the same).
expect_exit 0 cpipe forget t1_brain --subject 02
expect_out_contains "forgot 3 job records"
expect_exit 0 cpipe run --rebuild-unknown
expect_ran "brain 02
fov 02
reorient 02"

# --force reruns the jobs making the targets (and what depends on them); --force-all everything.
expect_exit 0 cpipe run --force t1_fov --subject 01
expect_ran "fov 01"
expect_exit 0 cpipe run -d t1_fov --subject 01
expect_ran "fov 01
reorient 01"

# A group step whose command is far beyond the kernel's 128 KiB per-argument limit: 1,000
# subjects with 150-character names (one job, so the test stays quick).
cat >group.yaml <<'YAML'
tree: study.tree
recipes:
  - name: gather
    in: [t1]
    out: [group_mean]
    batch: [subject]
    run: "cat {t1} > {group_mean}"
YAML
long=$(printf '%0150d' 0 | tr 0 x)
i=0
while [ $i -lt 1000 ]; do
	mkdir "sub-$long$i"
	echo "$i" >"sub-$long$i/T1w.nii.gz"
	i=$((i + 1))
done
rm group/mean_brain.txt
expect_exit 0 cpipe run -f group.yaml -q
[ "$(wc -l <group/mean_brain.txt)" -eq 1002 ] || fail "group output has $(wc -l <group/mean_brain.txt) lines"
pass
[ "$(wc -c <.cpipe/scripts/gather.sh)" -gt 131072 ] || fail "the command was not longer than 128 KiB"
pass
done_testing
