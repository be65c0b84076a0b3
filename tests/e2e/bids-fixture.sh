# Real BIDS layouts: the file lists of public bids-examples datasets (tests/data/bids-examples/,
# one path per line) laid out as files, run with the shipped trees/bids.tree and a recipe file
# with a per-T1w step, a per-bold step and a group step over every bold output. Each job appends
# one line to ran.log (see study-fixture.sh's ran_lines), so a test sees exactly what ran.

# make_bids_study DATASET DIR: lay out DATASET's files in DIR (each holding its own path) and
# write DIR/cpipe.yaml; the expected raw files go to DIR/../expected-T1w and ../expected-bold.
make_bids_study() {
	list="$CPIPE_SOURCE_DIR/tests/data/bids-examples/$1.txt"
	[ -f "$list" ] || fail "no file list $list"
	mkdir -p "$2"
	# One awk for all the files: a shell loop would start thousands of redirections.
	(cd "$2" && sed 's|/[^/]*$||;/\//!d' "$list" | sort -u | xargs mkdir -p &&
		awk '{ print $0 > $0; close($0) }' "$list") || fail "cannot lay out $1"
	grep -E '^sub-[^/]+/([^/]+/)?anat/[^/]*_T1w\.nii\.gz$' "$list" | sort >expected-T1w
	grep -E '^sub-[^/]+/([^/]+/)?func/[^/]*_bold\.nii\.gz$' "$list" | sort >expected-bold
	[ -s expected-T1w ] && [ -s expected-bold ] || fail "$1 has no T1w or no bold file"
	cat >"$2/cpipe.yaml" <<YAML
tree: $CPIPE_SOURCE_DIR/trees/bids.tree
recipes:
  - name: T1w_step
    in: [T1w]
    out: [T1w_stats]
    run: "cat {T1w} > {T1w_stats} && echo T1w {T1w} >> ran.log"
  - name: bold_step
    in: [bold]
    out: [bold_stats]
    run: "cat {bold} > {bold_stats} && echo bold {bold} >> ran.log"
  - name: bold_group
    in: [bold_stats]
    out: [bold_group]
    batch: [subject, session, task, acq, run, echo]
    run: "printf '%s\\\\n' {bold_stats} > {bold_group} && echo group >> ran.log"
YAML
}

# The output of a raw T1w or bold path: derivatives/cpipe/..._T1w_stats.txt or ..._bold_stats.txt.
stats_of() {
	sed 's#^\(.*\)_\(T1w\|bold\)\.nii\.gz$#derivatives/cpipe/\1_\2_stats.txt#'
}

# expect_outputs: one output per raw file, holding that file's path, and a group output that lists
# exactly the outputs of the bold files in expected-bold (paths relative to the study directory).
expect_outputs() {
	for kind in T1w bold; do
		stats_of <"../expected-$kind" | paste "../expected-$kind" - >../pairs
		while IFS='	' read -r raw out; do
			case $out in derivatives/cpipe/*_stats.txt) ;; *) fail "no output path for $raw" ;; esac
			line=
			[ -f "$out" ] && IFS= read -r line <"$out"
			[ "$line" = "$raw" ] || fail "$out does not hold '$raw'"
		done <../pairs
		made=$(find derivatives/cpipe -name "*_${kind}_stats.txt" | wc -l)
		[ "$made" -eq "$(wc -l <"../expected-$kind")" ] ||
			fail "$made ${kind} outputs for $(wc -l <"../expected-$kind") ${kind} files"
	done
	stats_of <../expected-bold | sort >../want-group
	sort derivatives/cpipe/group/bold_stats_list.txt >../got-group
	cmp -s ../want-group ../got-group || fail "group output differs: $(diff ../want-group ../got-group | head)"
	pass
}

# bids_scenario DATASET: the whole scenario of one dataset (see t0020-*.sh).
bids_scenario() {
	make_bids_study "$1" study
	cd study || fail "no study"
	t1=$(wc -l <../expected-T1w)
	bold=$(wc -l <../expected-bold)

	# Every T1w and bold file is globbed exactly once.
	expect_exit 0 cpipe glob T1w bold -t "$CPIPE_SOURCE_DIR/trees/bids.tree"
	cut -f2 "$WORK/out" | sort >../globbed
	sort ../expected-T1w ../expected-bold >../want-globbed
	cmp -s ../globbed ../want-globbed || fail "glob rows differ: $(diff ../want-globbed ../globbed | head)"
	pass
	[ -s "$WORK/err" ] && fail "glob warned: $(cat "$WORK/err")"

	# No flags: one job per raw file and the group.
	expect_exit 0 cpipe plan
	expect_out_contains "$((t1 + bold + 1)) to run, 0 up to date"
	expect_exit 0 cpipe run -q
	expect_outputs
	[ "$(ran_lines | grep -c '^group$')" -eq 1 ] || fail "the group ran other than once"
	pass

	# A rerun does nothing.
	expect_exit 0 cpipe run
	expect_err_contains "nothing to do ($((t1 + bold + 1)) jobs up to date)"
	expect_ran ""

	# One subject's run removed: only the group reruns, without it.
	removed=$(grep -m1 '_run-' ../expected-bold || head -n1 ../expected-bold)
	rm "$removed"
	grep -vxF "$removed" ../expected-bold >../left && mv ../left ../expected-bold
	expect_exit 0 cpipe run -q
	expect_ran "group"
	rm "$(printf '%s\n' "$removed" | stats_of)"
	expect_outputs

	# One subject's session added (a copy of its files under a new session): its jobs and the group.
	subject=$(head -n1 ../expected-bold | cut -d/ -f1)
	base=$(head -n1 ../expected-bold | sed 's#/func/.*##')
	grep -h -e "^$base/anat/" -e "^$base/func/" ../expected-T1w ../expected-bold | sed -n '1,4p' >../copied
	: >../added
	while IFS= read -r path; do
		case $path in
		*/ses-*) new=$(printf '%s\n' "$path" | sed 's|/ses-[^/]*/|/ses-added/|;s|_ses-[^_]*_|_ses-added_|') ;;
		*) new=$(printf '%s\n' "$path" | sed "s|^$subject/|$subject/ses-added/|;s|/${subject}_|/${subject}_ses-added_|") ;;
		esac
		mkdir -p "$(dirname "$new")"
		printf '%s\n' "$new" >"$new"
		echo "$new" >>../added
		case $new in
		*_T1w.nii.gz) echo "$new" >>../expected-T1w ;;
		*) echo "$new" >>../expected-bold ;;
		esac
	done <../copied
	sort -o ../expected-T1w ../expected-T1w
	sort -o ../expected-bold ../expected-bold
	expect_exit 0 cpipe run -q
	want=$( (sed 's#^\(.*_\(T1w\|bold\)\.nii\.gz\)$#\2 \1#' ../added; echo group) | sort)
	expect_ran "$want"
	expect_outputs
	expect_exit 0 cpipe run
	expect_ran ""
}
