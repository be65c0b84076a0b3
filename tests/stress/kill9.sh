#!/bin/bash
# Stress: cpipe killed outright, and jobs' process groups killed, over and over during a run of
# slow-writing jobs; every kill is followed at once by a rerun. At the end every output must
# equal a clean run's byte for byte, `plan` must say 0 to run, and PRAGMA integrity_check ok.
#
#   tests/stress/kill9.sh [KILLS]     (default: 30 kills of each kind)
#
# Each kill hits a run that has new data for one subject, a different subject every time (the
# study has 2 * KILLS of them), so that a wrong output recorded after a kill is never remade by a
# later change and is still there to be found at the end.
#
# CPIPE names the binary (default: build/werror/cpipe). Exits 0 when every check holds.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CPIPE=${CPIPE:-$SRC/build/werror/cpipe}
# The study lives elsewhere: a relative path must not depend on where that is.
case $CPIPE in /*) ;; */*) CPIPE=$PWD/$CPIPE ;; esac
KILLS=${1:-30}
SUBJECTS=$((2 * KILLS))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpipe-stress-kill9.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s.%N)

fail() {
	echo "kill9: FAIL: $*" >&2
	exit 1
}

# make_study DIR: each job writes its output a line at a time, reopening it for every line.
make_study() {
	mkdir -p "$1"
	cat >"$1/study.tree" <<'TREE'
sub-{subject}
    raw.txt    (raw)
    step1.txt  (step1)
    step2.txt  (step2)
group
    all.txt    (all)
TREE
	cat >"$1/cpipe.yaml" <<'YAML'
tree: study.tree
recipes:
  - name: first
    in: [raw]
    out: [step1]
    run: "for i in 1 2 3 4 5 6 7 8; do cat {raw} >> {step1}; echo line $i >> {step1}; sleep 0.03; done"
  - name: second
    in: [step1]
    out: [step2]
    run: "for i in 1 2 3 4; do sort {step1} >> {step2}; sleep 0.03; done"
  - name: all
    in: [step2]
    out: [all]
    batch: [subject]
    run: "for f in {step2}; do cat $f >> {all}; done"
YAML
	for s in $(seq -f '%03g' 1 "$SUBJECTS"); do
		mkdir -p "$1/sub-$s"
		echo "raw data of subject $s" >"$1/sub-$s/raw.txt"
	done
}

# random_delay [MAX]: a random delay of 0.05 s to MAX hundredths of a second (default 60).
random_delay() {
	printf '0.%02d\n' $((5 + RANDOM % (${1:-60} - 4)))
}

make_study "$WORK/study"
cd "$WORK/study" || exit 2

# new_data N: new raw data for subject N, so that the next run has jobs to be killed in.
new_data() {
	echo "new data" >>"sub-$(printf '%03d' "$1")/raw.txt"
}

"$CPIPE" run -j2 -q >first.log 2>&1 || fail "the first run failed: $(cat first.log)"

# Phase 1: kill -9 of cpipe itself mid-run, then at once a rerun to the end.
for k in $(seq 1 "$KILLS"); do
	new_data "$k"
	"$CPIPE" run -j2 -q >/dev/null 2>&1 &
	pid=$!
	sleep "$(random_delay)"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$CPIPE" run -j2 -q >rerun.log 2>&1 || fail "the rerun after kill $k of cpipe failed: $(cat rerun.log)"
done

# Phase 2: kill -9 of a running job's whole process group (its leader is a child of cpipe), then a
# rerun to the end.
group_kills=0
for k in $(seq 1 "$KILLS"); do
	new_data $((KILLS + k))
	"$CPIPE" run -j2 -q >/dev/null 2>&1 &
	pid=$!
	sleep "$(random_delay 25)"
	# The run may be between jobs: look for a running one for up to a second.
	for try in $(seq 1 20); do
		leaders=$(grep -ls "^PPid:[[:space:]]*$pid\$" /proc/[0-9]*/status | cut -d/ -f3)
		[ -n "$leaders" ] && break
		sleep 0.05
	done
	if [ -n "$leaders" ]; then
		set -- $leaders
		shift $((RANDOM % $#))
		kill -KILL -- "-$1" 2>/dev/null && group_kills=$((group_kills + 1))
	fi
	wait $pid 2>/dev/null
	"$CPIPE" run -j2 -q >rerun.log 2>&1 || fail "the rerun after job kill $k failed: $(cat rerun.log)"
done

# The reference: the same data, one clean run.
make_study "$WORK/clean"
for s in $(seq -f '%03g' 1 "$SUBJECTS"); do cp "sub-$s/raw.txt" "$WORK/clean/sub-$s/raw.txt"; done
(cd "$WORK/clean" && "$CPIPE" run -j2 -q >/dev/null 2>&1) || fail "the clean run failed"
outputs=0
for f in sub-*/step1.txt sub-*/step2.txt group/all.txt; do
	cmp -s "$f" "$WORK/clean/$f" || fail "$f differs from a clean run's"
	outputs=$((outputs + 1))
done
plan=$("$CPIPE" plan | tail -1)
[ "$plan" = "0 to run, $((2 * SUBJECTS + 1)) up to date, 0 to adopt, 0 held by another run" ] ||
	fail "plan after the kills: $plan"
integrity=$(sqlite3 .cpipe/state.db "PRAGMA integrity_check")
[ "$integrity" = ok ] || fail "integrity_check: $integrity"
end=$(date +%s.%N)
printf 'kill9: %d kills of cpipe, %d of a job process group: %d outputs equal a clean run'"'"'s, plan 0 to run, integrity ok (%.1f s)\n' \
	"$KILLS" "$group_kills" "$outputs" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
