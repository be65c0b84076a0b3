#!/bin/bash
# Stress: cpipe killed outright, and jobs' process groups killed, over and over during a run of
# slow-writing jobs; every kill is followed at once by a rerun. At the end every output must
# equal a clean run's byte for byte, `plan` must say 0 to run, and PRAGMA integrity_check ok.
#
#   tests/stress/kill9.sh [KILLS [SUBJECTS]]     (defaults: 30 kills of each kind, 12 subjects)
#
# CPIPE names the binary (default: build/werror/cpipe). Exits 0 when every check holds.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CPIPE=${CPIPE:-$SRC/build/werror/cpipe}
KILLS=${1:-30}
SUBJECTS=${2:-12}
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
    run: "for i in 1 2 3 4 5 6; do cat {raw} >> {step1}; echo line $i >> {step1}; sleep 0.05; done"
  - name: second
    in: [step1]
    out: [step2]
    run: "for i in 1 2 3 4; do sort {step1} >> {step2}; sleep 0.05; done"
  - name: all
    in: [step2]
    out: [all]
    batch: [subject]
    run: "for f in {step2}; do cat $f >> {all}; sleep 0.01; done"
YAML
	for s in $(seq -w 1 "$SUBJECTS"); do
		mkdir -p "$1/sub-$s"
		echo "raw data of subject $s" >"$1/sub-$s/raw.txt"
	done
}

# A random delay of 0.05 to 0.6 s.
random_delay() {
	printf '0.%02d\n' $((5 + RANDOM % 55))
}

make_study "$WORK/study"
cd "$WORK/study" || exit 2

# Phase 1: kill -9 of cpipe itself, then an immediate rerun (which the next kill may hit).
for k in $(seq 1 "$KILLS"); do
	"$CPIPE" run -j2 -q >/dev/null 2>&1 &
	pid=$!
	sleep "$(random_delay)"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	# Every few kills, new data for one subject, so that there is always work to be killed in.
	if [ $((k % 5)) -eq 0 ]; then
		s=$(printf '%02d' $((1 + RANDOM % SUBJECTS)))
		echo "new data $k" >>"sub-$s/raw.txt"
	fi
done
"$CPIPE" run -j2 -q >phase1.log 2>&1 || fail "the run after $KILLS kills of cpipe failed: $(cat phase1.log)"

# Phase 2: kill -9 of a running job's whole process group (the job's leader is a child of cpipe).
group_kills=0
for k in $(seq 1 "$KILLS"); do
	s=$(printf '%02d' $((1 + RANDOM % SUBJECTS)))
	echo "more data $k" >>"sub-$s/raw.txt"
	"$CPIPE" run -j2 -q >/dev/null 2>&1 &
	pid=$!
	sleep "$(random_delay)"
	leaders=$(grep -ls "^PPid:[[:space:]]*$pid\$" /proc/[0-9]*/status | cut -d/ -f3)
	if [ -n "$leaders" ]; then
		set -- $leaders
		shift $((RANDOM % $#))
		kill -KILL -- "-$1" 2>/dev/null && group_kills=$((group_kills + 1))
	fi
	wait $pid 2>/dev/null
done
"$CPIPE" run -j2 -q >phase2.log 2>&1 || fail "the run after the job kills failed: $(cat phase2.log)"

# The reference: the same data, one clean run.
make_study "$WORK/clean"
for s in $(seq -w 1 "$SUBJECTS"); do cp "sub-$s/raw.txt" "$WORK/clean/sub-$s/raw.txt"; done
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
