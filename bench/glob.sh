#!/usr/bin/env bash
# Time `cpipe glob` over a large study against a plain `find`.
#
#   bench/glob.sh
#
# Generates (once) a study of N subject directories sub-NNNNNN/ holding 4 empty
# files each, and a tree with one key per file; then times, warm cache, the
# median of REPEATS runs of
#   find DIR -type f | wc -l
#   cpipe glob t1 t2 dwi bold -t TREE -C DIR
# and prints both, their ratio and PASS/FAIL for "glob < LIMIT seconds".
#
# Environment (defaults in brackets):
#   BENCH_DIR [bench/work]   where the study is generated (kept between runs)
#   CPIPE [build/cpipe]      the cpipe binary
#   N [100000]               subject directories
#   REPEATS [5]              timed runs of each command; the median is reported
#   LIMIT [1.0]              seconds the glob must stay under
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
BENCH_DIR=${BENCH_DIR:-$HERE/work}
CPIPE=${CPIPE:-$SRC/build/cpipe}
N=${N:-100000}
REPEATS=${REPEATS:-5}
LIMIT=${LIMIT:-1.0}

STUDY=$BENCH_DIR/glob-study-$N
TREE=$BENCH_DIR/glob-$N.tree
KEYS="t1 t2 dwi bold"
EXPECTED=$((N * 4))

if [ ! -x "$CPIPE" ]; then
	echo "glob.sh: no cpipe binary at $CPIPE (build it, or set CPIPE)" >&2
	exit 2
fi

# Generate once: the marker is written last, so an interrupted run starts over.
if [ ! -e "$STUDY/.complete" ]; then
	echo "generating $N subjects x 4 files in $STUDY ..." >&2
	rm -rf "$STUDY"
	mkdir -p "$STUDY" || exit 2
	python3 - "$STUDY" "$N" <<'EOF' || exit 2
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
names = ("T1w.nii.gz", "T2w.nii.gz", "dwi.nii.gz", "bold.nii.gz")
for i in range(1, count + 1):
    directory = os.path.join(root, "sub-%06d" % i)
    os.mkdir(directory)
    for name in names:
        os.close(os.open(os.path.join(directory, name), os.O_CREAT | os.O_WRONLY, 0o644))
open(os.path.join(root, ".complete"), "w").close()
EOF
fi
cat > "$TREE" <<'EOF'
sub-{subject}
    T1w.nii.gz (t1)
    T2w.nii.gz (t2)
    dwi.nii.gz (dwi)
    bold.nii.gz (bold)
EOF

now() { date +%s.%N; }

# Median wall time of REPEATS runs of "$@" (after one untimed warm-up run); its stdout goes to $OUT.
OUT=$BENCH_DIR/glob-out.txt
median_time() {
	"$@" > "$OUT" || return 1
	local times=()
	for _ in $(seq "$REPEATS"); do
		local start end
		start=$(now)
		"$@" > "$OUT" || return 1
		end=$(now)
		times+=("$(echo "$end - $start" | bc -l)")
	done
	printf '%s\n' "${times[@]}" | sort -g | awk '{ t[NR] = $1 } END { printf "%.3f\n", t[int((NR + 1) / 2)] }'
}

find_files() { find "$STUDY" -type f -not -name .complete | wc -l; }
# shellcheck disable=SC2086
glob_files() { "$CPIPE" glob $KEYS -t "$TREE" -C "$STUDY"; }

find_time=$(median_time find_files) || { echo "glob.sh: find failed" >&2; exit 2; }
find_count=$(cat "$OUT")
glob_time=$(median_time glob_files) || { echo "glob.sh: cpipe glob failed" >&2; exit 2; }
glob_count=$(wc -l < "$OUT")
# The floor: a bare loop of one fstatat per file, compiled here (any checker pays at least this).
floor_bin=$BENCH_DIR/stat_floor
cc -O2 -o "$floor_bin" "$HERE/stat_floor.c" || { echo "glob.sh: cannot build stat_floor" >&2; exit 2; }
stat_floor() { "$floor_bin" "$STUDY" "$N" T1w.nii.gz T2w.nii.gz dwi.nii.gz bold.nii.gz; }
floor_time=$(median_time stat_floor) || { echo "glob.sh: stat_floor failed" >&2; exit 2; }

echo "study: $N subjects x 4 files ($EXPECTED files), $(nproc) cores, median of $REPEATS warm runs"
printf 'find -type f | wc -l : %ss (%s files)\n' "$find_time" "$find_count"
printf 'cpipe glob %s   : %ss (%s files)\n' "$KEYS" "$glob_time" "$glob_count"
printf 'ratio glob/find       : %.2f\n' "$(echo "$glob_time / $find_time" | bc -l)"
printf 'floor (fstatat x %s)  : %ss; cpipe glob / floor: %.2f\n' "$EXPECTED" "$floor_time" \
	"$(echo "$glob_time / $floor_time" | bc -l)"

status=0
if [ "$glob_count" -ne "$EXPECTED" ]; then
	echo "FAIL: cpipe glob found $glob_count files, expected $EXPECTED"
	status=1
fi
if [ "$(echo "$glob_time < $LIMIT" | bc -l)" = 1 ]; then
	echo "PASS: glob ${glob_time}s < ${LIMIT}s"
else
	echo "FAIL: glob ${glob_time}s >= ${LIMIT}s"
	if [ "$(echo "$floor_time >= $LIMIT" | bc -l)" = 1 ]; then
		echo "      (this machine's floor, one fstatat per file and nothing else, is ${floor_time}s: the limit is below it)"
	fi
	status=1
fi
exit $status
