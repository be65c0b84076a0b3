#!/bin/sh
# cpipe glob: the files of keys on disk, as text and JSON, with optional parts, typed fields,
# links and pre-set filters; hostile names stay one line each.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

cat >bids.tree <<'TREE'
sub-{subject}
    [ses-{session}]
        anat
            sub-{subject}[_ses-{session}]_T1w.nii.gz (T1w)
        func
            sub-{subject}_task-{task}_run-{run:02d}_bold.nii.gz (bold)
TREE
mkdir -p data/sub-01/anat data/sub-02/ses-a/anat data/sub-02/ses-b/anat data/sub-03/func data/.hidden/anat
touch data/sub-01/anat/sub-01_T1w.nii.gz data/sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz \
	data/sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz data/sub-03/func/sub-03_task-rest_run-01_bold.nii.gz \
	data/sub-03/func/sub-03_task-rest_run-002_bold.nii.gz data/sub-01/anat/.sub-01_T1w.nii.gz
expect_exit 0 cpipe glob T1w -t bids.tree -C data
expect_out "T1w	sub-01/anat/sub-01_T1w.nii.gz	subject=01
T1w	sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz	session=a	subject=02
T1w	sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz	session=b	subject=02"

# JSON: null for the absent session; values sorted with null first; ints for typed fields
# ({run:02d} does not match the three-digit run-002).
expect_exit 0 cpipe glob T1w bold -t bids.tree -C data --json
expect_out_contains '"values":{'
expect_out_contains '"session":[null,"a","b"]'
expect_out_contains '"subject":["01","02","03"]'
expect_out_contains '"run":[1]'
expect_out_contains '"placeholders":{"run":1,"session":null,"subject":"03","task":"rest"}'
grep -q 'run-002' "$WORK/out" && fail "run-002 matched {run:02d}"
pass

# --link keeps only the combinations seen.
expect_exit 0 cpipe glob T1w -t bids.tree -C data --link subject,session --json
expect_out_contains '"subject&session":[["01",null],["02","a"],["02","b"]]'

# A pre-set value filters.
expect_exit 0 cpipe glob T1w -t bids.tree -C data -p subject=02 -p session=b
expect_out "T1w	sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz	session=b	subject=02"

# A missing data directory matches nothing; an unknown key is an error with a suggestion.
expect_exit 0 cpipe glob T1w -t bids.tree -C nowhere
expect_no_out
expect_exit 2 cpipe glob T1 -t bids.tree -C data
expect_err_contains "T1w"
expect_exit 2 cpipe glob T1w
expect_err_contains "-t"

# Names with tabs, newlines, quotes and backslashes: one escaped line each, valid JSON.
mkdir -p weird
tab=$(printf '\t')
touch "weird/a${tab}b.txt" "weird/it's.txt" 'weird/back\slash.txt' "weird/new
line.txt"
printf '{name}.txt (f)\n' >flat.tree
expect_exit 0 cpipe glob f -t flat.tree -C weird
[ "$(wc -l <"$WORK/out")" -eq 4 ] || fail "expected 4 lines: $(cat "$WORK/out")"
pass
expect_out_contains 'f	a\tb.txt	name=a\tb'
expect_out_contains 'name=new\nline'
expect_exit 0 cpipe glob f -t flat.tree -C weird --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["files"]) == 4, d' "$WORK/out" ||
	fail "glob --json is not valid JSON: $(cat "$WORK/out")"
pass

# The ambiguous case of file-tree's update_glob: by default one parse per file, the one with the
# most optional parts present; --all-parses gives file-tree 1.6's every parse; fields stay lazy.
mkdir -p amb/age amb/pair
touch amb/age/bar_age1 amb/pair/x_y_z.txt amb/pair/_b.txt
printf 'age/{A}[_age{B:d}] (age)\npair/{C}_{D}.txt (pair)\n' >amb.tree
expect_exit 0 cpipe glob age pair -t amb.tree -C amb
expect_out "age	age/bar_age1	A=bar	B=1
pair	pair/x_y_z.txt	C=x	D=y_z"
expect_exit 0 cpipe glob age pair -t amb.tree -C amb --all-parses --json
expect_out '{"files":[{"key":"age","path":"age/bar_age1","placeholders":{"A":"bar_age1","B":null}},{"key":"age","path":"age/bar_age1","placeholders":{"A":"bar","B":1}},{"key":"pair","path":"pair/x_y_z.txt","placeholders":{"C":"x","D":"y_z"}}],"values":{"B":[null,1],"A":["bar","bar_age1"],"C":["x"],"D":["y_z"]}}'
# Two equally good parses: the first is kept, with one warning for the key.
mkdir -p amb/tie
touch amb/tie/a_x-1 amb/tie/b_x-2
printf 'tie/{a}[_x-{b}][_x-{c}] (tie)\n' >tie.tree
expect_exit 0 cpipe glob tie -t tie.tree -C amb
expect_out "tie	tie/a_x-1	a=a	b=1
tie	tie/b_x-2	a=b	b=2"
expect_err_contains "cpipe glob: warning: key 'tie': 'tie/a_x-1' reads as a=a, b=1 or as a=a, c=1; cpipe kept the first"
[ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "expected one warning: $(cat "$WORK/err")"
pass

# file-tree conformance: an optional top-level directory also matches the file without it.
mkdir -p top/ses-2
touch top/f.txt top/ses-2/f.txt
printf '[ses-{B}]\n    f.txt (f)\n' >top.tree
expect_exit 0 cpipe glob f -t top.tree -C top
expect_out "f	f.txt
f	ses-2/f.txt	B=2"
# values holds only what the glob set: not a group the tree linked with its values already set.
printf 'A = 1, 2\nB = x, y\n&LINK A, B\n{A}_{B}.txt (ab)\n{C}.dat (c)\n' >linked.tree
mkdir -p linked
touch linked/1_x.txt linked/2_y.txt linked/z.dat
expect_exit 0 cpipe glob ab c -t linked.tree -C linked --json
expect_out '{"files":[{"key":"ab","path":"1_x.txt","placeholders":{"A":"1","B":"x"}},{"key":"ab","path":"2_y.txt","placeholders":{"A":"2","B":"y"}},{"key":"c","path":"z.dat","placeholders":{"C":"z"}}],"values":{"C":["z"]}}'
done_testing
