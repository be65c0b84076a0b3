#!/bin/sh
# Placeholder values come from file names: spaces, quotes, $(...), backticks and ; must be data,
# never code, in every command cpipe runs; and template syntax in a name ([x], {y}, *, ?) is data
# too, never an optional part, a placeholder or a wildcard, when cpipe fills a path with it.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
newline='nl
x'
set -- "a b" "it's" 'x"y' '$(touch PWNED1)' '`touch PWNED2`' 'z;touch PWNED3' 'back\slash' \
	'[x]' 'a[b]c' 'open[' ']close' 'e\[f]' 'st*r' 'q?' '{br}' 'l{' 'r}' '$HOME' '-lead' "$newline" 'ü' \
	'[ses-{x}]'
make_study study "$@"
cd study
expect_exit 0 cpipe run -j2
for subject in "$@"; do
	[ "$(cat "sub-$subject/T1w_brain.nii.gz")" = "T1 of $subject" ] || fail "wrong or missing output for '$subject'"
	pass
done
find .. -maxdepth 3 -name 'PWNED*' | grep -q . && fail "a file name was executed as code"
pass
# The group step saw every subject exactly once.
[ "$(grep -c '^T1 of ' group/mean_brain.txt)" -eq $# ] || fail "group output: $(cat group/mean_brain.txt)"
pass
expect_exit 0 cpipe run
expect_err_contains "nothing to do"
expect_exit 0 cpipe plan --json
expect_out_contains '"jobs":[]'
expect_exit 0 cpipe status
expect_out_contains "t1_brain                         $#          0          0          0"

# A target that is exactly such a path takes that file (and `[` stays a pattern character).
rm 'sub-[x]/T1w_brain.nii.gz' 'sub-st*r/T1w_brain.nii.gz'
expect_exit 0 cpipe plan 'sub-[x]/T1w_brain.nii.gz'
expect_out_contains "brain[subject=[x]]"
expect_out_contains "1 to run"
expect_exit 0 cpipe run 'sub-st*r/T1w_brain.nii.gz' 'sub-[x]/T1w_brain.nii.gz'
[ "$(cat 'sub-[x]/T1w_brain.nii.gz')" = "T1 of [x]" ] || fail "the exact target 'sub-[x]/...' was not made"
pass
# In a pattern, [ab] is a class: sub-a b, sub-a[b]c and sub-back\slash, three jobs each.
expect_exit 0 cpipe plan 'sub-[ab]*/T1w_brain.nii.gz'
expect_out_contains "0 to run, 9 up to date"

# One --subject value is matched exactly, as a list of one is: never a group, field or wildcard
# (sub-star and sub-qq would match st*r and q? read as wildcards).
mkdir sub-star sub-qq
echo 'T1 of star' >sub-star/T1w.nii.gz
echo 'T1 of qq' >sub-qq/T1w.nii.gz
for subject in '[x]' 'a[b]c' 'open[' ']close' 'e\[f]' 'st*r' 'q?' '{br}' 'l{' 'r}' '[ses-{x}]'; do
	rm "sub-$subject/T1w_brain.nii.gz"
	expect_exit 0 cpipe plan --json --subject "$subject"
	[ "$(grep -o '"id":' "$WORK/out" | wc -l)" -eq 1 ] || fail "--subject '$subject' planned: $(cat "$WORK/out")"
	pass
	expect_exit 0 cpipe plan -p "subject=$subject"
	expect_out_contains "1 to run, 2 up to date"
	expect_exit 0 cpipe run --subject "$subject"
	[ "$(cat "sub-$subject/T1w_brain.nii.gz")" = "T1 of $subject" ] || fail "--subject '$subject' did not remake its file"
	pass
done
for subject in 'st*r' 'q?'; do
	expect_exit 0 cpipe glob -t study.tree -p "subject=$subject" t1
	expect_out "$(printf 't1\tsub-%s/T1w.nii.gz\tsubject=%s' "$subject" "$subject")"
done
# So is a recipe's own value: with product: its path is filled as written (sub-new[y], not sub-newy).
expect_plan_error "s/^tree: study.tree/&\\nproduct: true/; s/^  - name: reorient/&\\n    placeholders: {subject: ['new[y]']}/" \
	"input 'sub-new[y]/T1w.nii.gz' (key t1) does not exist"
done_testing
