#!/usr/bin/env bash
# The scale targets of issue #15, side by side in one run, with PASS/FAIL lines
# (bench/scale_report.py prints them as Markdown to paste into bench/RESULTS.md).
#
#   bench/scale.sh            every part (about 15 min on 2 cores once the studies are cached)
#   PARTS="noop10k full10k" bench/scale.sh      some parts only
#
# Parts (PARTS, default all, in this order):
#   noop10k   no-op at 10,000 subjects: cpipe `run -j2`, ninja `-j2` and bench/stat_floor (one
#             fstatat per file of the study) in REPEATS alternating rounds after one unmeasured
#             round (it writes cpipe's graph cache); wall, CPU, peak RSS
#   noop100k  the same at 100,000 subjects (REPEATS_100K rounds)
#   plan1m    `cpipe plan` on a clean tree (only the raw inputs exist, no .cpipe) at 1,000,000
#             subjects (3,000,001 jobs), REPEATS_1M runs; then with .cpipe/ present, as
#             plan_cache_write (the plan that writes .cpipe/graph.cache, removed before each) and
#             plan_cache_hit (the plan that uses it), REPEATS_1M runs each
#   full10k   full run from a clean tree at 10,000 subjects: cpipe `run -j2` and `make -j2`
#             alternating, REPEATS_FULL rounds
#   growth    for every N in GROWTH_N: plan on a clean tree, and a no-op up to GROWTH_NOOP_MAX_N
#             (sizes another part measured already are not measured again)
#
# Environment (defaults in brackets):
#   CACHE [/work/bench-cache]   generated studies (kept between runs: generating 1,000,000
#                               subjects takes minutes); a study is regenerated only when missing
#   CPIPE                       cpipe binary (default: build Release into bench/build)
#   REPEATS [9]  REPEATS_100K [5]  REPEATS_1M [3]  REPEATS_FULL [3]  REPEATS_GROWTH [3]
#   GROWTH_N ["1000 10000 100000 1000000"]   GROWTH_NOOP_MAX_N [100000]
#   TIMEOUT [600]  seconds before a single run is killed
#   OUT [$CACHE/scale.tsv]  single runs; APPEND=1 keeps an earlier invocation's runs in it
#   REPORT [$CACHE/scale.md]  the report (also printed)
#   RESULTS [bench/RESULTS.md]  the report also replaces its part of this file (RESULTS= : not)
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
CACHE=${CACHE:-/work/bench-cache}
PARTS=${PARTS:-noop10k noop100k plan1m full10k growth}
REPEATS=${REPEATS:-9}
REPEATS_100K=${REPEATS_100K:-5}
REPEATS_1M=${REPEATS_1M:-3}
REPEATS_FULL=${REPEATS_FULL:-3}
REPEATS_GROWTH=${REPEATS_GROWTH:-3}
GROWTH_N=${GROWTH_N:-1000 10000 100000 1000000}
GROWTH_NOOP_MAX_N=${GROWTH_NOOP_MAX_N:-100000}
TIMEOUT=${TIMEOUT:-600}
OUT=${OUT:-$CACHE/scale.tsv}
REPORT=${REPORT:-$CACHE/scale.md}
PY=/usr/bin/python3

case ${1:-} in -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
say() { printf '%s\n' "$*" >&2; }
die() { say "scale.sh: $*"; exit 2; }
. "$HERE/common.sh"

for t in make ninja /usr/bin/time "$PY" cc; do
	command -v "$t" >/dev/null || die "missing $t (bench/run.sh installs the tools as root)"
done
find_cpipe
mkdir -p "$CACHE/logs" || die "cannot create $CACHE"
FLOOR=$CACHE/stat_floor
cc -O2 -o "$FLOOR" "$HERE/stat_floor.c" || die "cannot build stat_floor"

[ "${APPEND:-0}" = 1 ] && [ -s "$OUT" ] ||
	printf 'metric\tN\ttool\trep\twall_s\tuser_s\tsys_s\trss_kib\trc\tnote\n' >"$OUT"
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- studies
# study N: the directory of the N-subject study (every tool's files up to 100,000 subjects;
# above, cpipe's only), generated once into the cache
study() {
	local n=$1 d extra=
	if [ "$n" -le 100000 ]; then d=$CACHE/n$n; else d=$CACHE/big$n; extra=--cpipe-only; fi
	if [ ! -f "$d/.generated" ] || [ "$(cat "$d/.generated")" != "$n" ]; then
		say "generating N=$n in $d"
		rm -rf "$d"
		"$PY" "$HERE/gen_study.py" --n "$n" --dir "$d" $extra >&2 || die "gen_study.py failed"
		echo "$n" >"$d/.generated"
	fi
	echo "$d"
}

# up_to_date N: every output present, recorded by cpipe (one adopting run) and in ninja's log
up_to_date() {
	[ -f .prebuilt ] && return 0
	say " N=$1: writing the outputs (gen_study.py --prebuild), cpipe adopts them"
	clean_study
	"$PY" "$HERE/gen_study.py" --n "$1" --dir . --prebuild --outputs-only --ninja-log || die "prebuild failed"
	"$CPIPE" run -j2 -q >"$CACHE/logs/adopt-$1.out" 2>&1 || die "cpipe could not adopt the outputs at N=$1"
	if [ -f build.ninja ]; then
		ninja -n | grep -q 'no work to do' || die "ninja does not accept the generated .ninja_log at N=$1"
	fi
	touch .prebuilt
}

# ---------------------------------------------------------------- one run
# measure METRIC N TOOL REP CMD...: one run under /usr/bin/time (wall from $EPOCHREALTIME,
# user/sys CPU and peak RSS from time), one row in OUT
measure() {
	local metric=$1 n=$2 tool=$3 rep=$4 tf=$CACHE/.time note=- lo
	shift 4
	lo=$CACHE/logs/$metric-$n-$tool
	rm -f "$tf"
	local t0=$EPOCHREALTIME
	timeout -k 10 "$TIMEOUT" /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$lo.out" 2>"$lo.err"
	local rc=$? t1=$EPOCHREALTIME
	local wall user=- sys=- rss=-
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	[ -s "$tf" ] && read -r user sys rss < <(tail -1 "$tf")
	case $rc in
	0) ;;
	124 | 137) note=timeout ;;
	*) note=failed; tail -3 "$lo.err" | sed 's/^/    | /' >&2 ;;
	esac
	# a no-op that did work is not a no-op
	if [ "$rc" = 0 ] && [ "$metric" = noop ]; then
		case $tool in
		cpipe) grep -q 'nothing to do' "$lo.err" || note=not_a_noop ;;
		ninja) grep -q 'no work to do' "$lo.out" || note=not_a_noop ;;
		floor) [ "$(cat "$lo.out")" = $((4 * n)) ] || note=files_missing ;;
		esac
	fi
	if [ "$rc" = 0 ] && [ "$metric" = full ]; then
		local made
		made=$(find . -mindepth 1 -maxdepth 2 \( -name 'T1w_*' -o -name group_brains.txt \) -type f | wc -l)
		[ "$made" = $((3 * n + 1)) ] || note="outputs=$made"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$metric" "$n" "$tool" "$rep" "$wall" "$user" "$sys" "$rss" "$rc" "$note" >>"$OUT"
	say "  $metric N=$n $tool #$rep: ${wall}s user ${user}s sys ${sys}s ${rss} KiB${note/#-/}"
}

done_already() { # METRIC N: this run (or an appended one) measured it
	awk -F'\t' -v m="$1" -v n="$2" '$1 == m && $2 == n && $3 == "cpipe" { f = 1 } END { exit !f }' "$OUT"
}

# ---------------------------------------------------------------- metrics
# noop N ROUNDS: cpipe, ninja and the stat floor, alternating
noop() {
	local n=$1 rounds=$2 d rep
	d=$(study "$n") && cd "$d" || die "no study at N=$n"
	up_to_date "$n"
	# One unmeasured round: this binary's first command writes its graph cache (cpipe(1), FILES;
	# never for a directory changed less than 2 s before), so the rows are every tool's steady state.
	sleep 2.2
	"$CPIPE" run -j2 >/dev/null 2>&1
	ninja -j2 >/dev/null 2>&1
	for rep in $(seq 1 "$rounds"); do
		measure noop "$n" cpipe "$rep" "$CPIPE" run -j2
		measure noop "$n" ninja "$rep" ninja -j2
		measure noop "$n" floor "$rep" "$FLOOR" . "$n" T1w.nii.gz T1w_reorient.nii.gz T1w_fov.nii.gz T1w_brain.nii.gz
	done
}

# plan_clean N ROUNDS: `cpipe plan` with only the raw inputs on disk
plan_clean() {
	local n=$1 rounds=$2 d rep
	d=$(study "$n") && cd "$d" || die "no study at N=$n"
	for rep in $(seq 1 "$rounds"); do
		clean_study
		measure plan_clean "$n" cpipe "$rep" "$CPIPE" plan
	done
}

# plan_cache N ROUNDS: the clean tree's plan with .cpipe/ present, writing the graph cache, then using it
plan_cache() {
	local n=$1 rounds=$2 d rep
	d=$(study "$n") && cd "$d" || die "no study at N=$n"
	clean_study
	mkdir .cpipe
	# No cache is written for a directory changed less than 2 s before the walk (cpipe(1), FILES).
	sleep 2.2
	for rep in $(seq 1 "$rounds"); do
		rm -f .cpipe/graph.cache
		measure plan_cache_write "$n" cpipe "$rep" "$CPIPE" plan
	done
	for rep in $(seq 1 "$rounds"); do
		measure plan_cache_hit "$n" cpipe "$rep" "$CPIPE" plan
	done
	clean_study
}

# full N ROUNDS: cpipe run -j2 and make -j2 from a clean tree, alternating
full() {
	local n=$1 rounds=$2 d rep
	d=$(study "$n") && cd "$d" || die "no study at N=$n"
	# sync after each clean: the deletion of 30,001 outputs is otherwise still being written back
	# during the next tool's run (one cpipe run took 60 s instead of 21 s that way; FINDINGS).
	for rep in $(seq 1 "$rounds"); do
		clean_study && sync
		measure full "$n" cpipe "$rep" "$CPIPE" run -j2
		clean_study && sync
		measure full "$n" make "$rep" make -j2
	done
	clean_study
}

for part in $PARTS; do
	say "== $part ($(($(date +%s) - START)) s)"
	case $part in
	noop10k) noop 10000 "$REPEATS" ;;
	noop100k) noop 100000 "$REPEATS_100K" ;;
	plan1m)
		plan_clean 1000000 "$REPEATS_1M"
		plan_cache 1000000 "$REPEATS_1M"
		;;
	full10k) full 10000 "$REPEATS_FULL" ;;
	growth)
		for n in $GROWTH_N; do
			done_already plan_clean "$n" || plan_clean "$n" "$REPEATS_GROWTH"
			[ "$n" -le "$GROWTH_NOOP_MAX_N" ] && ! done_already noop "$n" && noop "$n" "$REPEATS_GROWTH"
		done
		;;
	*) die "unknown part: $part (noop10k noop100k plan1m full10k growth)" ;;
	esac
done

cd "$HERE" || exit 2
export OUT REPORT START LOAD_START RESULTS=${RESULTS-$HERE/RESULTS.md}
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
VERSIONS="cpipe $("$CPIPE" --version 2>&1 | head -1) (checkout at $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo ?)); $(make --version | head -1); ninja $(ninja --version)"
export LOAD_END VERSIONS
"$PY" "$HERE/scale_report.py"
