#!/usr/bin/env bash
# Early cutoff on the synthetic study of gen_study.py: the first step's command (reorient) changes
# cosmetically, so it reruns for every subject and writes the same files. Timed:
#
#   cutoff      `cpipe run` after the edit: N reorient jobs run, the 2N+1 jobs below them are
#               cut off (checked and recorded up to date, not run)
#   no cutoff   the same edit with `cutoff: false` on every recipe: what cpipe did before early
#               cutoff (N jobs plus a rerun of every dependant)
#   -d          `cpipe run -d`: every job forced (3N+1)
#
#   bench/cutoff.sh [N]      (default N: 10000)
#
# Each is given as wall time and as CPU time (user + system of cpipe and its jobs): on a machine
# shared with other work the CPU time is the steadier figure.
#
# Environment: CPIPE (a cpipe binary; default: build one in Release into bench/build),
# BENCH_DIR [/tmp/cpipe-bench-cutoff], JOBS [number of CPUs] (-j of every run).
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
N=${1:-10000}
BENCH_DIR=${BENCH_DIR:-/tmp/cpipe-bench-cutoff}
JOBS=${JOBS:-$(nproc)}
say() { printf '%s\n' "$*" >&2; }
die() { say "cutoff.sh: $*"; exit 2; }
case $N in *[!0-9]* | '') die "not a number of subjects: $N" ;; esac

. "$HERE/common.sh"
find_cpipe

STUDY=$BENCH_DIR/n$N
rm -rf "$STUDY"
mkdir -p "$STUDY" || die "cannot create $STUDY"
say "generating $N subjects in $STUDY (outputs prebuilt, then adopted)"
python3 "$HERE/gen_study.py" --n "$N" --dir "$STUDY" --cpipe-only --prebuild >/dev/null || die "gen_study.py failed"
cd "$STUDY" || exit 2
"$CPIPE" run -q -j"$JOBS" || die "the first run (adoption) failed"
cp cpipe.yaml cpipe.yaml.orig

# seconds COMMAND...: "WALL CPU" of one run, which must succeed: its wall time, and the CPU time
# (user + system) of cpipe and its jobs, which a machine shared with other work disturbs less.
seconds() {
	/usr/bin/time -f '%e %U %S' -o "$STUDY/last.time" "$@" >"$STUDY/last.out" 2>"$STUDY/last.err" ||
		die "'$*' failed: $(tail -3 "$STUDY/last.err")"
	awk '{printf "%.2f %.2f", $1, $2 + $3}' "$STUDY/last.time"
}

# edit VARIANT [cutoff: false]: the cosmetic change of the reorient step's command (a new one each
# time, so it reruns), with `cutoff: false` in every recipe when asked.
edit() {
	sed "s/run: cp {t1} {t1_reorient}/run: cp $1 {t1} {t1_reorient}/" cpipe.yaml.orig >cpipe.yaml
	if [ -n "${2:-}" ]; then
		sed 's/^  - name: \(.*\)$/  - name: \1\n    cutoff: false/' cpipe.yaml >cpipe.yaml.new && mv cpipe.yaml.new cpipe.yaml
	fi
}

edit "-p"
"$CPIPE" plan >"$STUDY/plan.out" || die "plan failed"
say "plan after the edit: $(grep ' to run' "$STUDY/plan.out")"
cutoff=$(seconds "$CPIPE" run -q -j"$JOBS")
cut=$(grep -o '[0-9]* cut off' "$STUDY/last.err" | head -1)
[ -n "$cut" ] || cut="0 cut off"
[ "$("$CPIPE" plan | tail -1)" = "0 to run, $((3 * N + 1)) up to date, 0 to adopt, 0 held by another run" ] ||
	die "after the cutoff run something is left to do"

edit "--preserve=mode" "cutoff: false"
nocutoff=$(seconds "$CPIPE" run -q -j"$JOBS")

cp cpipe.yaml.orig cpipe.yaml
forced=$(seconds "$CPIPE" run -q -d -j"$JOBS")

printf 'early cutoff, %d subjects (%d jobs), -j%s, %s, load average %s\n' "$N" $((3 * N + 1)) "$JOBS" \
	"$(date -u +%Y-%m-%d)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-40s %9s %9s\n' "" "wall s" "CPU s"
row() { printf '  %-40s %9s %9s  (%s)\n' "$1" ${2% *} ${2#* } "$3"; }
row "rerun after a cosmetic edit, cutoff" "$cutoff" "$N run, $cut"
row "the same edit with cutoff: false" "$nocutoff" "$((3 * N + 1)) run"
row "cpipe run -d (every job forced)" "$forced" "$((3 * N + 1)) run"
awk -v a="$cutoff" -v b="$nocutoff" -v c="$forced" 'BEGIN {
	split(a, x, " "); split(b, y, " "); split(c, z, " ")
	printf "  cutoff / no cutoff: wall %.2f (%.1fx faster), CPU %.2f (%.1fx less)\n", x[1] / y[1], y[1] / x[1], x[2] / y[2], y[2] / x[2]
	printf "  cutoff / -d:        wall %.2f, CPU %.2f\n", x[1] / z[1], x[2] / z[2] }'
