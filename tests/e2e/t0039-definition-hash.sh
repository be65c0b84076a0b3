#!/bin/sh
# A state recorded by an older cpipe stays valid: the definition hash a job is recorded with
# (its recipe's definition text and its expanded command) is what cpipe at 997ce69 recorded for
# the same study, byte for byte. The graph no longer stores each job's command but expands it
# when asked for; a command expanded differently (quoting, order, spacing) would make every
# recorded job rerun with "command changed" after an upgrade. The recipes cover what the
# expansion takes from where: the job's paths, an absent optional input, a ref, a batched key,
# the job's own values, a singular tree value, a batched placeholder's values, hostile names.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
mkdir study && cd study || exit 2
cat >study.tree <<'TREE'
site = oxford
sub-{subject}
    raw.txt (raw)
    extra.txt (extra)
    clean.txt (clean)
    notes.txt (notes)
    masked.txt (masked)
group.txt (group)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: prep
    in: [raw, extra]
    optional: [extra]
    ref: [notes]
    out: [clean]
    run: "cat {raw} {extra} > {clean} # site {site}, subject {subject}, notes {notes}"
  - name: mask
    in: [clean]
    out: [masked]
    run: 'tr a-z A-Z < {clean} > "{masked}"; echo "{subject} at {site}" >> {masked}'
  - name: gather
    in: [masked]
    out: [group]
    batch: [subject]
    run: "cat {masked} > {group}; echo {subject} >> {group}"
YAML
for s in 01 -x "q'uote"; do
	mkdir -p "sub-$s" && echo "raw $s" >"sub-$s/raw.txt" && echo n >"sub-$s/notes.txt"
done
echo e >sub-01/extra.txt
expect_exit 0 cpipe run -q
# The hashes cpipe at 997ce69 (before commands were expanded on demand) recorded for this study.
sqlite3 .cpipe/state.db "SELECT name, definition_hash FROM jobs ORDER BY name" >"$WORK/hashes" ||
	fail "cannot read the state"
cat >"$WORK/want" <<'HASHES'
gather|-7953578396374190239
mask[site=oxford,subject=-x]|-3400552881083480102
mask[site=oxford,subject=01]|-8974337960414330536
mask[site=oxford,subject=q'uote]|-7167071254252208179
prep[site=oxford,subject=-x]|-6897663698954361911
prep[site=oxford,subject=01]|-3877107608966724669
prep[site=oxford,subject=q'uote]|-4571777156324076732
HASHES
diff "$WORK/want" "$WORK/hashes" >&2 || fail "definition hashes differ from those an older cpipe recorded"
pass
done_testing
