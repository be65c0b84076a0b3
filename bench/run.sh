#!/usr/bin/env bash
# cpipe against make, ninja and snakemake on the synthetic study of gen_study.py.
#
#   bench/run.sh [--big] [N ...]        (default sizes: 1000 10000 100000)
#
# Environment (defaults in brackets):
#   REPEATS [3]          runs per metric; the median is reported
#   TIMEOUT [600]        seconds before a single run is killed (recorded as >TIMEOUT)
#   SLOW [60]            a metric whose first run takes longer than this is not repeated (n=1)
#   BENCH_DIR [/tmp/cpipe-bench]   where the studies are generated
#   CPIPE                a cpipe binary to use instead of building one into bench/build
#   PEERS ["cpipe make ninja snakemake"]
#   FULL_MAX_N [10000]   full runs (-j1, -j2) only up to this N; above it outputs are prebuilt by
#                        gen_study.py --prebuild (cpipe adopts them in one timed `adopt` run; ninja
#                        gets the .ninja_log it would have written, --ninja-log)
#   PEER_INCR_MAX_N [10000]  make/ninja/snakemake touch-1, modify-1 and dry-on-up-to-date only up
#                        to this N (cpipe always does every metric)
#   SNAKE_MAX_N [10000]  no snakemake above this N
#   SNAKE_FULL_MAX_N [1000]  no snakemake full runs above this N (it needs >600 s at N=10000)
#   BIG [0], BIG_N [250000]  also time `cpipe plan` on a separate cpipe-only study of BIG_N subjects
#   FULL_J1 [1]          0: full runs with -j2 only (halves the time of the full runs)
#   FULL_J1_MAX_N [FULL_MAX_N]  full -j1 runs only up to this N
#   OWN [1]              also measure cpipe's own CPU time (perf stat --no-inherit) in extra runs
#   RESULTS [bench/RESULTS.md]
#   APPEND [0]           1: keep the runs of earlier invocations in BENCH_DIR/runs.tsv and report them all
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
REPEATS=${REPEATS:-3}
TIMEOUT=${TIMEOUT:-600}
SLOW=${SLOW:-60}
BENCH_DIR=${BENCH_DIR:-/tmp/cpipe-bench}
PEERS=${PEERS:-cpipe make ninja snakemake}
FULL_MAX_N=${FULL_MAX_N:-10000}
PEER_INCR_MAX_N=${PEER_INCR_MAX_N:-10000}
SNAKE_MAX_N=${SNAKE_MAX_N:-10000}
SNAKE_FULL_MAX_N=${SNAKE_FULL_MAX_N:-1000}
BIG=${BIG:-0}
BIG_N=${BIG_N:-250000}
OWN=${OWN:-1}
FULL_J1=${FULL_J1:-1}
FULL_J1_MAX_N=${FULL_J1_MAX_N:-$FULL_MAX_N}
RESULTS=${RESULTS:-$HERE/RESULTS.md}

SIZES=()
for a in "$@"; do
	case $a in
	--big) BIG=1 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*[!0-9]* | '') echo "run.sh: not a size: $a" >&2; exit 2 ;;
	*) SIZES+=("$a") ;;
	esac
done
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 2; }

# ---------------------------------------------------------------- tools
need=()
command -v make >/dev/null || need+=(make)
command -v ninja >/dev/null || need+=(ninja-build)
[ -x /usr/bin/time ] || need+=(time)
[ -x /usr/bin/python3 ] || need+=(python3)
case " $PEERS " in *" snakemake "*) /usr/bin/python3 -c 'import snakemake' 2>/dev/null || need+=(snakemake) ;; esac
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		say "installing: ${need[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null ||
			{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; } ||
			die "apt-get install ${need[*]} failed"
	else
		die "missing ${need[*]} (run as root to install them with apt-get)"
	fi
fi
PY=/usr/bin/python3
HAVE_PERF=0
if [ "$OWN" = 1 ] && command -v perf >/dev/null &&
	perf stat -i -x, -e task-clock -o /dev/null true 2>/dev/null; then
	HAVE_PERF=1
fi

. "$HERE/build-cpipe.sh"

mkdir -p "$BENCH_DIR/logs" || die "cannot create $BENCH_DIR"
RUNS=$BENCH_DIR/runs.tsv # one row per single run; the report aggregates them
[ "${APPEND:-0}" = 1 ] && [ -s "$RUNS" ] ||
	printf 'N\tpeer\tmetric\trep\twall_s\trss_kib\tjobs\trc\tnote\n' >"$RUNS"
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- helpers
SNAKE=("$PY" -m snakemake)

# cmd PEER METRIC: the command line of PEER for METRIC (in the study directory)
cmd() {
	case $1:$2 in
	cpipe:dry | cpipe:dry_uptodate) echo "$CPIPE plan" ;;
	cpipe:full_j1) echo "$CPIPE run -j1" ;;
	cpipe:full_j2 | cpipe:noop | cpipe:touch1 | cpipe:modify1 | cpipe:adopt) echo "$CPIPE run -j2" ;;
	make:dry | make:dry_uptodate) echo "make -n" ;;
	make:full_j1) echo "make -j1" ;;
	make:*) echo "make -j2" ;;
	ninja:dry | ninja:dry_uptodate) echo "ninja -n" ;;
	ninja:full_j1) echo "ninja -j1" ;;
	ninja:*) echo "ninja -j2" ;;
	snakemake:dry | snakemake:dry_uptodate) echo "${SNAKE[*]} -n -q --cores 1" ;;
	snakemake:full_j1) echo "${SNAKE[*]} -q --cores 1" ;;
	snakemake:*) echo "${SNAKE[*]} -q --cores 2" ;;
	esac
}

clean_study() { # outputs and every tool's state; the inputs stay
	find . -mindepth 2 -maxdepth 2 -path './sub-*' -name 'T1w_*' -delete
	rm -rf group_brains.txt .cpipe .ninja_log .ninja_deps .snakemake
}

count_outputs() { # [STAMP]: outputs present (newer than STAMP)
	if [ $# -gt 0 ]; then
		find . -mindepth 1 -maxdepth 2 \( -path './.*' -prune \) -o \( -name 'T1w_*' -o -name group_brains.txt \) \
			-type f -newer "$1" -print | wc -l
	else
		find . -mindepth 1 -maxdepth 2 \( -path './.*' -prune \) -o \( -name 'T1w_*' -o -name group_brains.txt \) \
			-type f -print | wc -l
	fi
}

# measure N PEER METRIC REP: run the command once under /usr/bin/time; sets W (wall s), RC
measure() {
	local n=$1 peer=$2 metric=$3 rep=$4 c tf=$BENCH_DIR/.time
	c=$(cmd "$peer" "$metric")
	local lo=$BENCH_DIR/logs/$n-$peer-$metric
	rm -f "$tf"
	local t0=$EPOCHREALTIME
	# shellcheck disable=SC2086
	timeout -k 10 "$TIMEOUT" /usr/bin/time -f '%e %M' -o "$tf" $c >"$lo.out" 2>"$lo.err"
	RC=$?
	local t1=$EPOCHREALTIME
	W=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	local rss=- note=-
	[ -s "$tf" ] && rss=$(tail -1 "$tf" | awk '{ print $2 }')
	if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
		note=timeout
		say "  TIMEOUT after ${TIMEOUT}s: (cd $PWD && $c)"
	elif [ "$RC" != 0 ]; then
		note=failed
		say "  FAILED (exit $RC): (cd $PWD && $c)"
		tail -5 "$lo.err" | sed 's/^/    | /' >&2
	fi
	MEASURED_RSS=$rss
	LAST_NOTE=$note
}

record() { # N PEER METRIC REP WALL RSS JOBS RC NOTE
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RUNS"
}

# own_cpu PEER METRIC: cpipe's own CPU seconds (user+sys of the cpipe process alone, children
# excluded: perf stat --no-inherit), from one extra run
own_cpu() {
	local c out=$BENCH_DIR/.perf
	c=$(cmd "$1" "$2")
	# shellcheck disable=SC2086
	if perf stat -i -x, -e task-clock -o "$out" -- $c >/dev/null 2>&1; then
		awk -F, '/task-clock/ { printf "%.4f", $1 / 1000 }' "$out"
	else
		echo -
	fi
}

# phases N: where a no-op's wall time goes, phase by phase (CPIPE_TIMINGS), REPEATS runs
phases() {
	local rep
	for rep in $(seq 1 "$REPEATS"); do
		# shellcheck disable=SC2046
		CPIPE_TIMINGS=1 $(cmd cpipe noop) 2>&1 >/dev/null |
			awk -v n="$1" -v rep="$rep" -F'  +' '/^cpipe: timing: / {
				sub(/^cpipe: timing: /, ""); name = $1; ms = $2; sub(/ ms$/, "", ms); gsub(/ /, "_", name)
				printf "%s\tcpipe\tphase_%s\t%s\t%.4f\t-\t-\t0\tCPIPE_TIMINGS\n", n, name, rep, ms / 1000 }' >>"$RUNS"
	done
}

SUBJ=000001
touch_one() { touch "sub-$SUBJ/T1w.nii.gz"; }
modify_one() { head -c $((64 + RANDOM % 960)) /dev/urandom >"sub-$SUBJ/T1w.nii.gz"; }

# bench_metric N PEER METRIC [PREP]: REPEATS runs (PREP before each; clean / touch / modify / none),
# stopping after the first when it took longer than SLOW
bench_metric() {
	local n=$1 peer=$2 metric=$3 prep=${4:-none} rep jobs stamp=$BENCH_DIR/.stamp
	for rep in $(seq 1 "$REPEATS"); do
		case $prep in
		clean) clean_study ;;
		touch) touch_one ;;
		modify) modify_one ;;
		esac
		sleep 0.02 && touch "$stamp" && sleep 0.02 # coarse file timestamps: keep the stamp apart
		measure "$n" "$peer" "$metric" "$rep"
		case $metric in
		full_*) jobs=$(count_outputs) ;;
		dry*) jobs=- ;;
		*) jobs=$(count_outputs "$stamp") ;;
		esac
		if [ "$peer" = cpipe ] && [ "$RC" = 0 ]; then # cpipe's own count, as a cross-check
			local said
			said=$(sed -n 's/^cpipe: \([0-9]*\) done.*/\1/p; s/^cpipe: nothing to do.*/0/p' "$BENCH_DIR/logs/$n-$peer-$metric.err" | tail -1)
			[ -n "$said" ] && [ "$metric" != dry ] && [ "$metric" != dry_uptodate ] && LAST_NOTE="cpipe_says=$said"
		fi
		record "$n" "$peer" "$metric" "$rep" "$W" "$MEASURED_RSS" "$jobs" "$RC" "$LAST_NOTE"
		say "  $peer $metric #$rep: ${W}s rss=${MEASURED_RSS}KiB jobs=$jobs"
		[ "$RC" != 0 ] && break
		awk -v w="$W" -v s="$SLOW" 'BEGIN { exit !(w > s) }' && break
	done
	return 0
}

# jobcost N: the 4 jobs of modify-1 (3 cp and the group printf), each as `/bin/sh script` the way
# cpipe runs them, serially, outputs to a scratch directory; records the median of 5
jobcost() {
	local n=$1 tmp=$BENCH_DIR/jobcost i t0 t1 ws=()
	rm -rf "$tmp" && mkdir -p "$tmp"
	printf '#!/bin/sh\ncp sub-%s/T1w.nii.gz %s/r\n' "$SUBJ" "$tmp" >"$tmp/1.sh"
	printf '#!/bin/sh\ncp %s/r %s/f\n' "$tmp" "$tmp" >"$tmp/2.sh"
	printf '#!/bin/sh\ncp %s/f %s/b\n' "$tmp" "$tmp" >"$tmp/3.sh"
	printf '#!/bin/sh\nprintf %s sub-*/T1w_brain.nii.gz > %s/g\n' "'%s\\n'" "$tmp" >"$tmp/4.sh"
	for i in 1 2 3 4 5; do
		t0=$EPOCHREALTIME
		for s in 1 2 3 4; do /bin/sh "$tmp/$s.sh" >>"$tmp/log" 2>&1; done
		t1=$EPOCHREALTIME
		ws+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
	done
	local med
	med=$(printf '%s\n' "${ws[@]}" | sort -g | sed -n 3p)
	record "$n" cpipe jobcost_modify1 1 "$med" - 4 0 "4 job scripts via /bin/sh, serial, median of 5"
	say "  job cost of the 4 modify-1 jobs: ${med}s"
}

# ---------------------------------------------------------------- one peer at one size
bench_peer() {
	local n=$1 peer=$2
	local full=1 incr=1
	[ "$n" -gt "$FULL_MAX_N" ] && full=0
	[ "$peer" != cpipe ] && [ "$n" -gt "$PEER_INCR_MAX_N" ] && incr=0
	if [ "$peer" = snakemake ]; then
		if [ "$n" -gt "$SNAKE_MAX_N" ]; then
			say " snakemake: skipped at N=$n (SNAKE_MAX_N=$SNAKE_MAX_N)"
			record "$n" snakemake all 0 - - - - "skipped: N>SNAKE_MAX_N"
			return
		fi
		[ "$n" -gt "$SNAKE_FULL_MAX_N" ] && full=0
	fi
	say " $peer at N=$n"
	clean_study
	bench_metric "$n" "$peer" dry
	if [ $full = 1 ]; then
		[ "$FULL_J1" = 1 ] && [ "$n" -le "$FULL_J1_MAX_N" ] && bench_metric "$n" "$peer" full_j1 clean
		bench_metric "$n" "$peer" full_j2 clean
		if [ "$peer" = cpipe ] && [ $HAVE_PERF = 1 ]; then
			clean_study
			record "$n" cpipe own_full_j2 1 "$(own_cpu cpipe full_j2)" - "$(count_outputs)" 0 "cpu s, perf -i"
		fi
	else
		# outputs without running the tool (a real full run at this N is too slow for the budget)
		clean_study
		local extra=
		[ "$peer" = ninja ] && extra=--ninja-log # ninja reruns every edge missing from its log
		"$PY" "$HERE/gen_study.py" --n "$n" --dir . --prebuild --outputs-only $extra || die "prebuild failed"
		case $peer in
		cpipe) # only the first run over unrecorded outputs adopts them: one run
			REPEATS=1 bench_metric "$n" cpipe adopt
			;;
		*)
			record "$n" "$peer" prebuilt 1 - - "$(count_outputs)" 0 "gen_study.py --prebuild $extra"
			if [ "$peer" = ninja ] && ! ninja -n 2>&1 | grep -q 'no work to do'; then
				say " ninja: the generated .ninja_log is not accepted; no-op/incremental skipped at N=$n"
				record "$n" ninja noop 0 - - - - "skipped: generated .ninja_log not accepted"
				return
			fi
			;;
		esac
	fi
	[ $incr = 1 ] && bench_metric "$n" "$peer" dry_uptodate
	bench_metric "$n" "$peer" noop
	[ "$peer" = cpipe ] && phases "$n"
	if [ "$peer" = cpipe ] && [ $HAVE_PERF = 1 ]; then
		record "$n" cpipe own_noop 1 "$(own_cpu cpipe noop)" - - 0 "cpu s, perf -i"
		record "$n" cpipe own_dry_uptodate 1 "$(own_cpu cpipe dry_uptodate)" - - 0 "cpu s, perf -i"
	fi
	if [ $incr = 1 ]; then
		bench_metric "$n" "$peer" touch1 touch
		bench_metric "$n" "$peer" modify1 modify
		if [ "$peer" = cpipe ]; then
			jobcost "$n"
			if [ $HAVE_PERF = 1 ]; then
				modify_one
				record "$n" cpipe own_modify1 1 "$(own_cpu cpipe modify1)" - - 0 "cpu s, perf -i"
			fi
		fi
	fi
}

# ---------------------------------------------------------------- main
for n in "${SIZES[@]}"; do
	d=$BENCH_DIR/n$n
	if [ ! -f "$d/.generated" ] || [ "$(cat "$d/.generated")" != "$n" ]; then
		say "generating N=$n in $d"
		rm -rf "$d"
		"$PY" "$HERE/gen_study.py" --n "$n" --dir "$d" || die "gen_study.py failed"
		echo "$n" >"$d/.generated"
	fi
	cd "$d" || die "no $d"
	for peer in $PEERS; do
		bench_peer "$n" "$peer"
	done
	clean_study
	say "N=$n done after $(($(date +%s) - START)) s"
done

if [ "$BIG" = 1 ]; then
	d=$BENCH_DIR/big$BIG_N
	if [ ! -f "$d/.generated" ] || [ "$(cat "$d/.generated")" != "$BIG_N" ]; then
		say "generating the big study N=$BIG_N (cpipe only) in $d"
		rm -rf "$d"
		"$PY" "$HERE/gen_study.py" --n "$BIG_N" --dir "$d" --cpipe-only || die "gen_study.py failed"
		echo "$BIG_N" >"$d/.generated"
	fi
	cd "$d" || die "no $d"
	rm -rf .cpipe
	say " cpipe plan at N=$BIG_N"
	bench_metric "$BIG_N" cpipe dry
	say "big study done after $(($(date +%s) - START)) s"
fi

cd "$HERE" || exit 2
TOTAL=$(($(date +%s) - START))
VERSIONS="cpipe $("$CPIPE" --version 2>&1 | head -1); $(make --version | head -1); ninja $(ninja --version)"
case " $PEERS " in *" snakemake "*) VERSIONS="$VERSIONS; snakemake $("${SNAKE[@]}" --version 2>/dev/null)" ;; esac
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
export FULL_J1 FULL_J1_MAX_N LOAD_START LOAD_END RUNS RESULTS REPEATS TIMEOUT SLOW FULL_MAX_N PEER_INCR_MAX_N SNAKE_MAX_N SNAKE_FULL_MAX_N BIG_N TOTAL VERSIONS HAVE_PERF
"$PY" "$HERE/report.py"
