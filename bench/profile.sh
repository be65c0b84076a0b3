#!/usr/bin/env bash
# Where does cpipe spend its time planning? Profiles `cpipe run` (no-op) and `cpipe plan` (on the
# up-to-date study) at N subjects and prints the cost grouped by module (bench/profmods.py).
#
#   bench/profile.sh N          (output also saved to bench/profile-N.txt)
#
# Instruction counts come from valgrind --tool=callgrind (hardware counters are not exposed on this
# machine kind, so `perf stat -e instructions` does not work). Callgrind does not see time inside
# system calls (stat, getdents, the SQLite file I/O), so when `perf record -e cpu-clock` works a
# sampled profile (user + kernel time, DWARF call chains) is added.
# Environment: BENCH_DIR [/tmp/cpipe-bench], CPIPE_PROF (a binary with symbols to use instead of
# building bench/build-prof: Release flags plus -g), PERF [1], PERF_FREQ [4000 Hz], CALLGRIND [1]
# (callgrind runs ~50x slower than native: at 100,000 subjects use CALLGRIND=0 and a low PERF_FREQ).
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
N=${1:?usage: bench/profile.sh N}
BENCH_DIR=${BENCH_DIR:-/tmp/cpipe-bench}
PERF=${PERF:-1}
PERF_FREQ=${PERF_FREQ:-4000}
CALLGRIND=${CALLGRIND:-1}
PY=$(command -v python3)
die() { echo "profile.sh: $*" >&2; exit 2; }
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"

if [ -z "${CPIPE_PROF:-}" ]; then
	cmake -S "$SRC" -B "$HERE/build-prof" -DCMAKE_BUILD_TYPE=Release -DCPIPE_TESTS=OFF \
		-DCMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG -g" >"$HERE/build-prof.log" 2>&1 &&
		cmake --build "$HERE/build-prof" -j2 >>"$HERE/build-prof.log" 2>&1 || die "build failed: $HERE/build-prof.log"
	CPIPE_PROF=$HERE/build-prof/cpipe
fi

d=$BENCH_DIR/prof$N
if [ ! -f "$d/.generated" ] || [ "$(cat "$d/.generated")" != "$N" ]; then
	rm -rf "$d"
	"$PY" "$HERE/gen_study.py" --n "$N" --dir "$d" --cpipe-only --prebuild || die "gen_study.py failed"
	echo "$N" >"$d/.generated"
fi
cd "$d" || die "no $d"
# An up-to-date state: the first run adopts the prebuilt outputs.
"$CPIPE_PROF" run -q >/dev/null 2>"$BENCH_DIR/prof-adopt.err" || { cat "$BENCH_DIR/prof-adopt.err" >&2; die "cpipe run (adopt) failed"; }

OUT=$HERE/profile-$N.txt
{
	echo "cpipe profile at N=$N ($((3 * N + 1)) jobs, all up to date), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
	echo "binary: ${CPIPE_PROF#"$SRC"/} (Release -O3 plus -g)"
	for what in "run -j2" "plan"; do
		tag=${what%% *}
		echo
		/usr/bin/time -f '%e s, %M KiB peak RSS' -o "$BENCH_DIR/prof.time" "$CPIPE_PROF" $what >/dev/null 2>&1
		echo "=== cpipe $what: wall $(tail -1 "$BENCH_DIR/prof.time") (without a profiler)"
		cg=$BENCH_DIR/callgrind.$N.$tag
		if [ "$CALLGRIND" = 1 ]; then
			rm -f "$cg"
			valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$cg" "$CPIPE_PROF" $what \
				>/dev/null 2>"$cg.err" || { tail -5 "$cg.err"; continue; }
			echo "--- callgrind (instructions; excludes time inside system calls)"
			"$PY" "$HERE/profmods.py" callgrind "$cg" "$SRC"
		fi
		if [ "$PERF" = 1 ] && perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
			pd=$BENCH_DIR/perf.$N.$tag.data
			perf record -e cpu-clock -F "$PERF_FREQ" --call-graph dwarf,16384 -o "$pd" "$CPIPE_PROF" $what \
				>/dev/null 2>"$pd.err" || { tail -3 "$pd.err"; continue; }
			perf script -i "$pd" -F ip,sym,dso >"$pd.txt" 2>/dev/null
			echo "--- perf cpu-clock samples (user + kernel time)"
			"$PY" "$HERE/profmods.py" perf "$pd.txt" "$SRC"
		fi
	done
} 2>&1 | tee "$OUT"
