#!/bin/sh
# The state snapshot (cpipe(1), FILES: .cpipe/state.db.snapshot): an open of an unchanged database
# reads it (and so does not write it again: its inode stays), a write to a row by anyone else (here
# the sqlite3 shell) makes the next open read the rows, and a plan prints the same with the snapshot,
# without it and with a damaged one; cpipe log names the log recorded, whether at the job's default
# path (which the state rebuilds from the job id, not keeping it) or anywhere else.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
sub-{subject}
    raw.txt (raw)
    clean.txt (clean)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: prep
    in: [raw]
    out: [clean]
    run: "cat {raw} > {clean}; echo wrote {subject}"
YAML
for s in 01 02 03; do
	mkdir -p "sub-$s" && echo "raw $s" >"sub-$s/raw.txt"
done
expect_exit 0 cpipe run -q
snapshot=.cpipe/state.db.snapshot
expect_exit 0 cpipe plan --json -v
cp "$WORK/out" "$WORK/plan-rows"
[ -s "$snapshot" ] || fail "no snapshot after a plan"
pass
inode=$(stat -c %i "$snapshot")
expect_exit 0 cpipe plan --json -v
cmp -s "$WORK/out" "$WORK/plan-rows" || fail "the plan from the snapshot differs: $(diff "$WORK/plan-rows" "$WORK/out")"
[ "$(stat -c %i "$snapshot")" = "$inode" ] || fail "an unchanged database's snapshot was written again"
pass

# Another writer: the next plan sees its change, and writes a new snapshot.
sqlite3 .cpipe/state.db "UPDATE jobs SET status = 'failed', exit_code = 4 WHERE name = 'prep[subject=02]'" ||
	fail "sqlite3 cannot write the state"
expect_exit 0 cpipe plan
expect_out_contains "prep[subject=02]  (previous run failed: exit code 4)"
[ "$(stat -c %i "$snapshot")" != "$inode" ] || fail "the snapshot was not written again after a change"
pass
expect_exit 0 cpipe plan
expect_out_contains "prep[subject=02]  (previous run failed: exit code 4)"

# Without it, and damaged: the same plan.
expect_exit 0 cpipe plan --json -v
cp "$WORK/out" "$WORK/plan-failed"
rm "$snapshot"
expect_exit 0 cpipe plan --json -v
cmp -s "$WORK/out" "$WORK/plan-failed" || fail "the plan without a snapshot differs"
pass
size=$(stat -c %s "$snapshot")
head -c $((size / 2)) "$snapshot" >"$WORK/half" && cp "$WORK/half" "$snapshot"
expect_exit 0 cpipe plan --json -v
cmp -s "$WORK/out" "$WORK/plan-failed" || fail "the plan with a cut snapshot differs"
pass
[ "$(stat -c %s "$snapshot")" = "$size" ] || fail "a cut snapshot was not written again"
pass

# The log paths recorded come back as they were, from the rows and from the snapshot: the
# default ones, one moved elsewhere and one that is another job's default path.
expect_exit 0 cpipe log 'prep[subject=01]'
grep -q '^# log       \.cpipe/logs/prep_subject_01_-[0-9a-f]\{8\}\.log$' "$WORK/out" ||
	fail "not the default log path: $(cat "$WORK/out")"
expect_out_contains "wrote 01"
default01=$(sed -n 's/^# log       //p' "$WORK/out")
expect_exit 0 cpipe log 'prep[subject=03]'
moved=elsewhere/$(sed -n 's|^# log       .*/||p' "$WORK/out")
mkdir elsewhere && echo "moved log" >"$moved"
sqlite3 .cpipe/state.db "UPDATE jobs SET log_path = '$moved' WHERE name = 'prep[subject=03]';
	UPDATE jobs SET log_path = '$default01' WHERE name = 'prep[subject=02]'" ||
	fail "sqlite3 cannot write the state"
for from in rows snapshot; do
	expect_exit 0 cpipe log 'prep[subject=03]'
	expect_out_contains "# log       $moved"
	expect_out_contains "moved log"
	expect_exit 0 cpipe log 'prep[subject=02]'
	expect_out_contains "# log       $default01"
	expect_out_contains "wrote 01"
	expect_exit 0 cpipe log 'prep[subject=01]'
	expect_out_contains "# log       $default01"
	# The rows' open writes the snapshot, which the next one reads (and so leaves as it is).
	[ "$from" = rows ] && inode=$(stat -c %i "$snapshot")
	[ "$(stat -c %i "$snapshot")" = "$inode" ] || fail "the logs were not read from the snapshot"
	pass
done
done_testing
