#!/bin/sh
# The everyday command line: status --by and --json in the same words as status and status -v;
# run -n as plan, with a count per recipe; one line for the jobs a failure kept from starting
# (all of them with -v); -q keeps the summary; the progress line's time left and color on a
# terminal (NO_COLOR respected); cpipe log's header, with placeholders in any order.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02 03 04 05
cd study

# run -n is plan: nothing runs, a count per recipe at the end.
expect_exit 0 cpipe run -n
expect_out_contains "16 to run, 0 up to date, 0 to adopt, 0 held by another run
to run by recipe: reorient 5, fov 5, brain 5, group_mean 1"
[ ! -e ran.log ] && [ ! -e .cpipe/logs ] || fail "run -n ran something"
pass
expect_exit 0 cpipe run --dry-run t1_fov
expect_out_contains "to run by recipe: reorient 5, fov 5"
expect_exit 2 cpipe run -n --submit
expect_err_contains "-n/--dry-run and --submit do not go together"

# One failure without -k: one line for the 12 jobs it kept from starting, all of them with -v.
# Deepest first (cpipe(1), run): subject 01 is finished before subject 02's first job fails.
sed 's/cp {t1} {t1_reorient}/cp {t1} {t1_reorient} \&\& test {subject} != 02/' cpipe.yaml >broken.yaml
expect_exit 1 cpipe run -j1 -f broken.yaml
expect_err_contains "FAILED reorient[subject=02]"
expect_err_contains "cpipe: 12 jobs not started (cpipe run -v lists each with its reason)"
expect_err_contains "cpipe: 3 done, 1 failed, 0 interrupted, 12 skipped"
grep -q '^skipped ' "$WORK/err" && fail "skipped jobs listed without -v: $(cat "$WORK/err")"
pass
expect_exit 1 cpipe run -j1 -v -f broken.yaml
[ "$(grep -c '^skipped ' "$WORK/err")" -eq 12 ] || fail "-v does not list the 12: $(cat "$WORK/err")"
pass
# -q: failures and the summary line only.
expect_exit 1 cpipe run -j1 -q -f broken.yaml
expect_err_contains "cpipe: 12 jobs not started"
expect_err_contains "cpipe: 0 done, 1 failed"
expect_exit 0 cpipe run -q t1_reorient
[ "$(cat "$WORK/err")" = "$(grep '^cpipe: [0-9]* done' "$WORK/err")" ] && grep -q " done, 0 failed" "$WORK/err" ||
	fail "-q printed more or less than the summary: $(cat "$WORK/err")"
pass

# status, status -v, --by and --json agree: subject 02's reorient is failed, the rest of its
# chain missing, the other subjects' reorient up-to-date (subject 01's chain, which the runs above
# finished, made missing again).
rm sub-01/T1w_fov.nii.gz sub-01/T1w_brain.nii.gz
expect_exit 1 cpipe run -k -f broken.yaml t1_reorient
expect_exit 0 cpipe status -f broken.yaml
expect_out_contains "t1_reorient                       4          0          0          1"
expect_out_contains "t1_fov                            0          0          5          0"
expect_exit 0 cpipe status -v -f broken.yaml
expect_out_contains "failed      reorient[subject=02]"
expect_out_contains "up-to-date  reorient[subject=01]"
expect_out_contains "missing     fov[subject=01]  (output missing: sub-01/T1w_fov.nii.gz)"
expect_exit 0 cpipe status --by subject -f broken.yaml
expect_out "subject  t1_reorient  t1_fov  t1_brain  group_mean
01       +            -       -
02       !            -       -
03       +            -       -
04       +            -       -
05       +            -       -
*                                       -
+ up-to-date  ~ stale  - missing  ! failed  (* = over all values)"
# A stale file: its input changed after its job ran.
printf 'new T1 of 03\n' >sub-03/T1w.nii.gz
expect_exit 0 cpipe status --by subject -f broken.yaml
expect_out_contains "03       ~            -       -"
expect_exit 0 cpipe status --json --by subject -f broken.yaml
python3 - "$WORK/out" <<'PY' || fail "status --json: $(cat "$WORK/out")"
import json, sys
d = json.load(open(sys.argv[1]))
keys = {k["key"]: k for k in d["keys"]}
assert keys["t1_reorient"] == {"key": "t1_reorient", "up-to-date": 3, "stale": 1, "missing": 0, "failed": 1}, keys
jobs = {j["id"]: j for j in d["jobs"]}
assert jobs["reorient[subject=02]"]["state"] == "failed"
assert jobs["reorient[subject=03]"]["state"] == "stale" and jobs["reorient[subject=03]"]["reason"] == "input changed"
assert jobs["fov[subject=01]"]["outputs"] == [{"path": "sub-01/T1w_fov.nii.gz", "key": "t1_fov", "state": "missing"}]
rows = {r["value"]: r["keys"] for r in d["by"]["rows"]}
assert d["by"]["placeholder"] == "subject" and rows["02"]["t1_reorient"] == "failed"
assert rows["*"] == {"t1_reorient": None, "t1_fov": None, "t1_brain": None, "group_mean": "missing"}, rows["*"]
PY
pass
expect_exit 2 cpipe status --by session
expect_err_contains "--by session: no job iterates over 'session'; the jobs' placeholders: subject"

# cpipe log: a header even when the job printed nothing; placeholders in any order.
cat >>study.tree <<'TREE'
pairs
    {subject}_{session}.txt (pair)
TREE
cat >>cpipe.yaml <<'YAML'
  - name: pair
    out: [pair]
    vars: [subject, session]
    run: "echo {subject} {session} > {pair}"
YAML
expect_exit 0 cpipe run pair -p session=a,b -p subject=01
expect_exit 0 cpipe log 'pair[subject=01,session=b]' -p session=a,b
expect_out_contains "# job       pair[session=b,subject=01]"
expect_out_contains "# status    done (exit status 0)"
expect_out_contains "# duration  "
expect_out_contains "# command   echo '01' 'b' > 'pairs/01_b.txt'"
expect_out_contains "(the job printed nothing)"
grep -q "^# started   [0-9-]* [0-9:]* [-+][0-9]* on [^ ]* (pid [0-9]*)$" "$WORK/out" || fail "no start line: $(cat "$WORK/out")"
pass
expect_exit 1 cpipe run -f broken.yaml t1_reorient -p subject=02
expect_exit 0 cpipe log 'reorient[subject=02]'
expect_out_contains "# status    failed (exit status 1)"

# On a terminal (script(1) gives one): the time left once durations are recorded, red FAILED
# unless NO_COLOR is set.
if command -v script >/dev/null; then
	expect_exit 0 cpipe run -o -j2 t1_fov
	script -qec "$CPIPE_WRAPPER $CPIPE run -o -j2 t1_fov" /dev/null >"$WORK/tty" 2>&1
	grep -aq "s left" "$WORK/tty" || fail "no time left on the progress line: $(cat -v "$WORK/tty")"
	pass
	script -qec "$CPIPE_WRAPPER $CPIPE run -j1 -f broken.yaml" /dev/null >"$WORK/tty" 2>&1
	grep -aq "$(printf '\033')\[31mFAILED" "$WORK/tty" || fail "FAILED is not red: $(cat -v "$WORK/tty")"
	pass
	NO_COLOR=1 script -qec "$CPIPE_WRAPPER $CPIPE run -j1 -f broken.yaml" /dev/null >"$WORK/tty" 2>&1
	grep -aq "$(printf '\033')\[31m" "$WORK/tty" && fail "color despite NO_COLOR: $(cat -v "$WORK/tty")"
	grep -aq "FAILED reorient" "$WORK/tty" || fail "no FAILED line: $(cat -v "$WORK/tty")"
	pass
	# Not a terminal: no color codes at all.
	expect_exit 1 cpipe run -j1 -f broken.yaml
	grep -q "$(printf '\033')" "$WORK/err" && fail "escape codes in a pipe"
	pass
else
	fail "script(1) is needed for the terminal checks (bsdutils)"
fi
done_testing
