#!/usr/bin/env bash
# Submission at scale (issue #15) against a real, private, single-node SLURM (tests/cluster/
# start-slurm.sh on ports 7871/7872): a 10,000-subject study (30,001 jobs) submitted with
# `cpipe run --submit=slurm`, then `cpipe status` while it runs. Measures and checks:
#   - cpipe's own time for the submission: its wall time minus the time spent inside the scheduler's
#     commands (sbatch, scontrol, squeue, sacct: each call timed by a PATH shim that forwards to the
#     real command), and its own CPU (user+sys of the cpipe process alone, perf stat --no-inherit;
#     user and sys apart from getrusage, bench/own_rusage.c), and the files it wrote in .cpipe/jobs
#   - every array within the cluster's MaxArraySize (queried with scontrol show config)
#   - per-task dependencies intact: each chained step's chunks wait with aftercorr on the chunk of
#     the step before, and scontrol shows it on a few tasks; the group job waits on every brain chunk
#   - `cpipe status` while the jobs run: how many scheduler queries (squeue + sacct calls) and its time
# At the end every job is cancelled, the cluster stopped (by its recorded pids) and the study cleaned.
# Results are appended to OUT (bench/scale.sh's runs; bench/scale_report.py prints the PASS/FAIL
# lines). The cluster lock /tmp/cpipe-cluster.lock is held only while the cluster is up.
#
#   bench/submit.sh          (root; about 2 min)
# Environment: CACHE [/work/bench-cache], CPIPE (default: build Release into bench/build), N [10000],
#   OUT [$CACHE/scale.tsv], STATUS_REPEATS [3], SLURMCTLD_PORT [7871], SLURMD_PORT [7872]
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
CACHE=${CACHE:-/work/bench-cache}
N=${N:-10000}
OUT=${OUT:-$CACHE/scale.tsv}
STATUS_REPEATS=${STATUS_REPEATS:-3}
export SLURMCTLD_PORT=${SLURMCTLD_PORT:-7871} SLURMD_PORT=${SLURMD_PORT:-7872}
PY=/usr/bin/python3
say() { printf '%s\n' "$*" >&2; }
die() { say "submit.sh: $*"; exit 2; }
. "$HERE/common.sh"
case ${1:-} in -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ "$(id -u)" = 0 ] || die "the test cluster's daemons run as root"

find_cpipe
mkdir -p "$CACHE" || die "cannot create $CACHE"
[ -s "$OUT" ] || printf 'metric\tN\ttool\trep\twall_s\tuser_s\tsys_s\trss_kib\trc\tnote\n' >"$OUT"
record() { # METRIC WALL RC NOTE
	printf '%s\t%s\tsubmit\t1\t%s\t-\t-\t-\t%s\t%s\n' "$1" "$N" "$2" "$3" "$4" >>"$OUT"
	say "  $1: $2 (${4})"
}

# The study: the raw inputs only (a clean tree), cpipe's files only.
STUDY=$CACHE/submit$N
if [ ! -f "$STUDY/.generated" ] || [ "$(cat "$STUDY/.generated")" != "$N" ]; then
	rm -rf "$STUDY"
	"$PY" "$HERE/gen_study.py" --n "$N" --dir "$STUDY" --cpipe-only >&2 || die "gen_study.py failed"
	echo "$N" >"$STUDY/.generated"
fi
cd "$STUDY" || die "no $STUDY"
clean_study

# Shims: each scheduler command is timed and logged, then the real one does the work.
WORK=$(mktemp -d /tmp/cpipe-submit.XXXXXX)
mkdir "$WORK/bin"
for c in sbatch scontrol squeue sacct scancel; do
	real=$(command -v "$c") || continue
	cat >"$WORK/bin/$c" <<EOF
#!/bin/sh
t0=\$(date +%s%N)
out=\$($real "\$@")
rc=\$?
[ -z "\$out" ] || printf '%s\n' "\$out"
id=\$(printf '%s' "\$out" | head -1 | sed -n 's/^\([0-9][0-9]*\).*/\1/p')
printf '%s %s %s %s %s\n' "$c" "\$t0" "\$(date +%s%N)" "\${id:--}" "\$*" >>"$WORK/calls.log"
exit \$rc
EOF
	chmod +x "$WORK/bin/$c"
done
: >"$WORK/calls.log"

# ---------------------------------------------------------------- the cluster, under the lock
exec 9>/tmp/cpipe-cluster.lock
say "waiting for /tmp/cpipe-cluster.lock"
flock 9
STATE=$WORK/slurm
stop_cluster() {
	# stop-slurm.sh cancels the jobs and stops whatever start-slurm.sh got running, by recorded pids
	if [ -d "$STATE" ]; then
		"$SRC/tests/cluster/stop-slurm.sh" "$STATE" >"$WORK/stop.log" 2>&1 || cat "$WORK/stop.log" >&2
	fi
	flock -u 9
	cd "$STUDY" && clean_study
	rm -rf "$WORK"
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM
"$SRC/tests/cluster/start-slurm.sh" "$STATE" >"$WORK/slurm.env" 2>"$WORK/slurm-start.log" ||
	die "cannot start SLURM: $(tail -5 "$WORK/slurm-start.log")"
. "$WORK/slurm.env"
MAX_ARRAY=$(scontrol show config | sed -n 's/^MaxArraySize *= *//p')
[ -n "$MAX_ARRAY" ] || die "scontrol show config names no MaxArraySize"
say "SLURM up (ports $SLURMCTLD_PORT/$SLURMD_PORT), MaxArraySize $MAX_ARRAY"

# calls_time NAME... : seconds spent in the logged calls of these commands
calls_time() {
	awk -v names=" $* " 'index(names, " " $1 " ") { s += $3 - $2 } END { printf "%.3f", s / 1e9 }' "$WORK/calls.log"
}
calls_count() { awk -v names=" $* " 'index(names, " " $1 " ") { n++ } END { print n + 0 }' "$WORK/calls.log"; }

# ---------------------------------------------------------------- submission
say "submitting $((3 * N + 1)) jobs"
own_cpu=-
# cpipe's own user and system time, without the scheduler commands it runs (bench/own_rusage.c)
own_rusage=
preload=()
if cc -shared -fPIC -O2 -o "$WORK/own_rusage.so" "$HERE/own_rusage.c" 2>/dev/null; then
	preload=(env LD_PRELOAD="$WORK/own_rusage.so" OWN_RUSAGE_OUT="$WORK/own_rusage")
fi
t0=$EPOCHREALTIME
if command -v perf >/dev/null && perf stat -i -x, -e task-clock -o /dev/null true 2>/dev/null; then
	PATH=$WORK/bin:$PATH perf stat -i -x, -e task-clock -o "$WORK/perf" "${preload[@]}" "$CPIPE" run --submit=slurm \
		>"$WORK/submit.out" 2>"$WORK/submit.err"
	rc=$?
	own_cpu=$(awk -F, '/task-clock/ { printf "%.3f", $1 / 1000 }' "$WORK/perf")
else
	PATH=$WORK/bin:$PATH "${preload[@]}" "$CPIPE" run --submit=slurm >"$WORK/submit.out" 2>"$WORK/submit.err"
	rc=$?
fi
wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
[ -s "$WORK/own_rusage" ] && read -r own_user own_sys <"$WORK/own_rusage" && own_rusage="user ${own_user} s, sys ${own_sys} s; "
[ "$rc" = 0 ] || { tail -5 "$WORK/submit.err" >&2; }
sched=$(calls_time sbatch scontrol squeue sacct)
own=$(awk -v w="$wall" -v s="$sched" 'BEGIN { printf "%.3f", w - s }')
nsub=$(calls_count sbatch)
# The files the submission wrote (not the markers and scheduler output the running tasks write).
nfiles=$(find .cpipe/jobs -type f ! -name '*.marker' ! -name '*.marker.tmp.*' ! -name '*.out' ! -name '*.unchanged' | wc -l)
said=$(grep -o 'submitted [0-9]* of [0-9]* jobs[^;]*' "$WORK/submit.err" | head -1)
record submit_own "$own" "$rc" "wall ${wall} s - ${sched} s inside ${nsub} sbatch and $(calls_count scontrol squeue sacct) other scheduler calls; own CPU ${own_cpu} s (${own_rusage}${nfiles} files in .cpipe/jobs); cpipe: ${said:-?}"

# Arrays within MaxArraySize: SLURM's task ids go up to MaxArraySize - 1.
bad=$(awk -v max="$MAX_ARRAY" '$1 == "sbatch" { for (i = 5; i <= NF; i++) if ($i ~ /^--array=/) {
		r = substr($i, 9); sub(/%.*/, "", r); n = split(r, a, /[-,]/); if (a[n] + 0 >= max) print r } }' "$WORK/calls.log")
arrays=$(grep -c '^sbatch .*--array=' "$WORK/calls.log")
biggest=$(grep -o -- '--array=[0-9]*-[0-9]*' "$WORK/calls.log" | sed 's/.*-//' | sort -n | tail -1)
if [ -z "$bad" ] && [ "$arrays" -gt 0 ]; then
	record submit_arrays 0 0 "$arrays arrays in $nsub sbatch calls, largest task id ${biggest:-?} < MaxArraySize $MAX_ARRAY"
else
	record submit_arrays 0 1 "$arrays arrays; over MaxArraySize $MAX_ARRAY: ${bad:-none} "
fi

# Per-task dependencies: every chunk of a chained step waits with aftercorr on a chunk of the same
# size submitted before it (from the logged submissions: job id, --array, --dependency); then
# scontrol shows it on a few pending tasks.
deps=$(awk '$1 == "sbatch" {
		arr = ""; dep = ""
		for (i = 5; i <= NF; i++) { if ($i ~ /^--array=/) arr = substr($i, 9); if ($i ~ /^--dependency=/) dep = substr($i, 14) }
		size[$4] = arr
		if (dep ~ /^aftercorr:/) {
			corr++; split(substr(dep, 11), on, /[:,]/)
			for (k in on) if (!(on[k] in size) || size[on[k]] != arr) { print "chunk " $4 " (" arr ") waits on " on[k] " (" size[on[k]] ")"; bad++ }
		} else if (dep != "" && arr == "") { group = split(substr(dep, index(dep, ":") + 1), g, /[:,]/) }
	} END { printf "%d %d %d\n", corr, group, bad }' "$WORK/calls.log" | tail -1)
read -r corr group_held mismatched <<<"$deps"
expected=$(((3 - 1) * ((N + MAX_ARRAY - 2) / (MAX_ARRAY - 1))))
problems=
[ "$corr" -eq "$expected" ] || problems="$problems $corr aftercorr submissions, expected $expected;"
[ "$mismatched" -eq 0 ] || problems="$problems $mismatched chunks wait on a chunk of another size;"
[ "$group_held" -eq $((MAX_ARRAY > 1 ? (N + MAX_ARRAY - 2) / (MAX_ARRAY - 1) : N)) ] ||
	problems="$problems the group job waits on $group_held jobs;"
checked=0
for id in $(awk '$1 == "sbatch" && / --dependency=aftercorr:/ { print $4 }' "$WORK/calls.log" | shuf -n 5 --random-source=/dev/zero); do
	task=${id}_$((RANDOM % 900 + 2))
	dep=$(scontrol show job "$task" 2>/dev/null | sed -n 's/.*Dependency=\([^ ]*\).*/\1/p' | head -1)
	say "  scontrol show job $task: Dependency=${dep:-?}"
	case $dep in
	aftercorr:*) checked=$((checked + 1)) ;;
	'(null)') ;; # the task it waited for is done already
	*) problems="$problems $task: Dependency=$dep;" ;;
	esac
done
[ "$checked" -gt 0 ] || problems="$problems no pending task showed aftercorr;"
rc=0
[ -z "$problems" ] || rc=1
record submit_deps 0 "$rc" "$corr chunk submissions wait with aftercorr on a chunk of their size (expected $expected, $mismatched do not); $checked of 5 tasks show aftercorr in scontrol; the group job waits on $group_held brain chunks${problems:+; problems:$problems}"

# ---------------------------------------------------------------- cpipe status while it runs
running=$(squeue -h -t R | wc -l)
pending=$(squeue -h -t PD -r | wc -l)
say "on the cluster now: $running running, $pending pending tasks"
for _ in $(seq 1 "$STATUS_REPEATS"); do
	: >"$WORK/calls.log"
	t0=$EPOCHREALTIME
	PATH=$WORK/bin:$PATH /usr/bin/time -f '%U %S' -o "$WORK/status.time" "$CPIPE" status >"$WORK/status.out" 2>"$WORK/status.err"
	rc=$?
	wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/status.time")
	printf '%s\n' "$wall $rc $(calls_count squeue sacct) $(calls_count sbatch scontrol scancel) $(calls_time squeue sacct) $cpu" >>"$WORK/status.runs"
done
sort -n "$WORK/status.runs" | sed -n "$(((STATUS_REPEATS + 1) / 2))p" | {
	read -r wall rc queries others qtime cpu
	[ "$queries" = 1 ] && [ "$others" = 0 ] || [ "$rc" != 0 ] || rc=1
	record status "$wall" "$rc" "median of $STATUS_REPEATS: CPU ${cpu} s (cpipe and the scheduler commands it ran); $queries squeue/sacct queries (${qtime} s of it), $others other scheduler calls; $running running and $pending pending tasks; $(tail -1 "$WORK/status.out")"
}
exit 0
