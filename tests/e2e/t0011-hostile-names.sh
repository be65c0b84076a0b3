#!/bin/sh
# Placeholder values come from file names: spaces, quotes, $(...), backticks and ; must be data,
# never code, in every command cpipe runs.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
make_study study "a b" "it's" 'x"y' '$(touch PWNED1)' '`touch PWNED2`' 'z;touch PWNED3' 'back\slash'
cd study
expect_exit 0 cpipe run -j2
for subject in "a b" "it's" 'x"y' '$(touch PWNED1)' '`touch PWNED2`' 'z;touch PWNED3' 'back\slash'; do
	[ "$(cat "sub-$subject/T1w_brain.nii.gz")" = "T1 of $subject" ] || fail "wrong or missing output for '$subject'"
	pass
done
find .. -maxdepth 3 -name 'PWNED*' | grep -q . && fail "a file name was executed as code"
pass
# The group step saw every subject exactly once.
[ "$(wc -l <group/mean_brain.txt)" -eq 7 ] || fail "group output: $(cat group/mean_brain.txt)"
pass
expect_exit 0 cpipe run
expect_err_contains "nothing to do"
expect_exit 0 cpipe plan --json
expect_out_contains '"jobs":[]'
done_testing
