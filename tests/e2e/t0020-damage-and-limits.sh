#!/bin/sh
# A damaged state database stops cpipe with exit 2 and the way out; `cpipe state check` finds
# damage (also what an ordinary open does not look at) and `cpipe state repair` gets past a
# damaged job record; a file size limit below the database's size gives a message, not SIGXFSZ;
# a database locked longer than the lock timeout mid-run loses no job's record; a read-only
# study can be planned and shown.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study 01 02
cd study || exit 2
expect_exit 0 cpipe run -j1
expect_exit 0 cpipe state check
expect_out "0 problems, 0 changed files"
cp .cpipe/state.db good.db

# A database whose header is garbage.
printf 'XXXXXXXXXXXXXXXX' | dd of=.cpipe/state.db bs=1 seek=0 conv=notrunc 2>/dev/null
expect_exit 2 cpipe plan
expect_err_contains "file is not a database"
expect_err_contains "move .cpipe/state.db (and its -wal and -shm files) away"
expect_exit 2 cpipe state check

# A damaged index page: the ordinary load does not read it, so only an integrity check finds it.
cp good.db .cpipe/state.db
page=$(sqlite3 .cpipe/state.db "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_files_1'")
size=$(sqlite3 .cpipe/state.db "PRAGMA page_size")
printf '\015\000\000\000\005' | dd of=.cpipe/state.db bs=1 seek=$(((page - 1) * size)) conv=notrunc 2>/dev/null
expect_exit 1 cpipe state check
expect_out_contains "damaged    database:"
# After an unclean shutdown (a journal left behind) the open checks integrity itself.
echo left >.cpipe/state.db-journal
expect_exit 2 cpipe plan
expect_err_contains "the integrity check after an unclean shutdown failed"
rm -f .cpipe/state.db-journal

# A damaged record of one job: plan fails naming the way out; state repair makes the job run again.
cp good.db .cpipe/state.db
sqlite3 .cpipe/state.db "UPDATE jobs SET files = x'01ff' WHERE name = 'fov[subject=01]'"
expect_exit 2 cpipe plan
expect_err_contains "job fov[subject=01]: damaged list of recorded files"
expect_err_contains "'cpipe state repair'"
expect_exit 1 cpipe state check
expect_out_contains "damaged    fov[subject=01]"
expect_exit 0 cpipe state repair
expect_out "repaired 1 job record: they will run again"
expect_exit 0 cpipe plan
expect_out_contains "run        fov[subject=01]  (previous run interrupted"
ran_lines >/dev/null
expect_exit 0 cpipe run -j1
expect_ran "fov 01"

# A file size limit below the database's size: a message and exit 2, not death by SIGXFSZ.
echo changed >sub-02/T1w.nii.gz
(ulimit -f 1 && cpipe run -j1 >"$WORK/out" 2>"$WORK/err")
code=$?
[ $code -eq 2 ] || fail "with ulimit -f 1, run exited $code, expected 2: $(cat "$WORK/err")"
pass
expect_err_contains "the file size limit (ulimit -f) is below what the state database needs"
expect_exit 0 cpipe run -j1
ran_lines >/dev/null

# The write lock held by another process for longer than the lock timeout while a job finishes.
hold=${LOCK_HOLD_S:-4}
echo again >sub-01/T1w.nii.gz
sed 's/run: "cp {t1} /run: "touch started; while [ ! -e locked ]; do sleep 0.05; done; cp {t1} /' cpipe.yaml >c.new &&
	mv c.new cpipe.yaml
CPIPE_LOCK_TIMEOUT=1 cpipe run -j1 >"$WORK/out" 2>"$WORK/err" &
run=$!
wait_until "the job's start" test -e started
printf '.timeout 20000\nBEGIN IMMEDIATE;\n.shell touch locked\n.shell sleep %s\nCOMMIT;\n' "$hold" |
	sqlite3 .cpipe/state.db
wait $run
code=$?
[ $code -eq 0 ] || fail "the run with the database locked for ${hold} s exited $code: $(cat "$WORK/err")"
pass
expect_err_contains "still locked by another process; waiting to record"
# The recipe changed: every reorient ran, and what sub-01's changed T1w feeds, each exactly once;
# sub-02's came out the same and cut off the rest. Each was recorded.
expect_ran "brain 01
fov 01
group
reorient 01
reorient 02"
expect_exit 0 cpipe plan
expect_out "0 to run, 7 up to date, 0 to adopt, 0 held by another run"

# A read-only study (another user's): plan and status work.
chmod 755 "$WORK" "$WORK/study"
expect_exit 0 setpriv --reuid=65534 --regid=65534 --clear-groups env CPIPE_WRAPPER="$CPIPE_WRAPPER" \
	sh -c '$CPIPE_WRAPPER "$0" plan' "$CPIPE"
expect_out "0 to run, 7 up to date, 0 to adopt, 0 held by another run"
expect_exit 0 setpriv --reuid=65534 --regid=65534 --clear-groups env CPIPE_WRAPPER="$CPIPE_WRAPPER" \
	sh -c '$CPIPE_WRAPPER "$0" status' "$CPIPE"
expect_out_contains "group_mean"
done_testing
