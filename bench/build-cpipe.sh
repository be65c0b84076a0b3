# Sourced by the benchmark scripts (run.sh, cutoff.sh) with HERE (bench/) and SRC (the source
# tree) set and a `die` function: when $CPIPE is not set, build cpipe in Release into bench/build
# and point CPIPE at it; then check that it is there and make it absolute.
if [ -z "${CPIPE:-}" ]; then
	printf 'building cpipe (Release) into %s/build\n' "$HERE" >&2
	cmake -S "$SRC" -B "$HERE/build" -DCMAKE_BUILD_TYPE=Release -DCPIPE_TESTS=OFF >"$HERE/build.log" 2>&1 &&
		cmake --build "$HERE/build" -j2 >>"$HERE/build.log" 2>&1 ||
		{ tail -20 "$HERE/build.log" >&2; die "cpipe does not build (log: $HERE/build.log)"; }
	CPIPE=$HERE/build/cpipe
fi
[ -x "$CPIPE" ] || die "no cpipe binary at $CPIPE"
CPIPE=$(cd "$(dirname "$CPIPE")" && pwd)/$(basename "$CPIPE")
