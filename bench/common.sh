# shellcheck shell=bash
# Shared by bench/run.sh, bench/scale.sh, bench/submit.sh and bench/cutoff.sh (sourced; they set HERE and SRC
# and define say and die).

# find_cpipe: $CPIPE made absolute, or a Release build of this checkout into bench/build
find_cpipe() {
	if [ -z "${CPIPE:-}" ]; then
		say "building cpipe (Release) into $HERE/build"
		cmake -S "$SRC" -B "$HERE/build" -DCMAKE_BUILD_TYPE=Release -DCPIPE_TESTS=OFF >"$HERE/build.log" 2>&1 &&
			cmake --build "$HERE/build" -j2 >>"$HERE/build.log" 2>&1 ||
			{ tail -20 "$HERE/build.log" >&2; die "cpipe does not build (log: $HERE/build.log)"; }
		CPIPE=$HERE/build/cpipe
	fi
	[ -x "$CPIPE" ] || die "no cpipe binary at $CPIPE"
	CPIPE=$(cd "$(dirname "$CPIPE")" && pwd)/$(basename "$CPIPE")
}

# clean_study: in a gen_study.py study, remove the outputs and every tool's state; the inputs stay
clean_study() {
	find . -mindepth 2 -maxdepth 2 -path './sub-*' -name 'T1w_*' -delete
	rm -rf group_brains.txt .cpipe .ninja_log .ninja_deps .snakemake .prebuilt
}
