#!/bin/sh
# The whole test suite, as README.md gives it and .ci/run runs it:
#   1. a -Werror build and every CTest test (cmocka unit tests and e2e scenarios);
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the unit tests and the cpipe binary of the e2e scenarios under valgrind.
# Set CPIPE_SKIP_VALGRIND=1 or CPIPE_SKIP_SANITIZE=1 to leave a pass out while iterating.
set -u
cd "$(dirname "$0")/.."
tools/install-deps.sh --test || exit 2
jobs=$(nproc)
# Read only by sanitizer builds: leaks fail the run, and UBSan reports carry a stack.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0

step() {
	name=$1
	shift
	echo "== $name" >&2
	if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "!! FAILED: $name" >&2; fi
}

build() {
	dir=$1
	shift
	cmake -S . -B "$dir" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log" >&2; return 1; }
	cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 || { cat "$dir.build.log" >&2; return 1; }
}

suite() {
	dir=$1
	shift
	mkdir -p "$dir"
	build "$dir" "$@" && (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

step "build -Werror and run the suite" suite build/werror -DCPIPE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${CPIPE_SKIP_SANITIZE:-0}" != 1 ]; then
	step "ASan+UBSan suite" suite build/sanitize -DCPIPE_WERROR=ON -DCPIPE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
if [ "${CPIPE_SKIP_VALGRIND:-0}" != 1 ]; then
	step "valgrind suite" suite build/valgrind -DCPIPE_VALGRIND=ON -DCMAKE_BUILD_TYPE=Debug
fi
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
