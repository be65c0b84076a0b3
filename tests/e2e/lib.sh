# Shared helpers for the end-to-end scenarios: each tNNNN-*.sh sources this, runs the real
# cpipe binary ($CPIPE, set by CTest) in a fresh temporary directory, and exits non-zero on
# the first failed expectation. $CPIPE_WRAPPER (e.g. valgrind) is put in front of cpipe.
set -u
: "${CPIPE:?CPIPE must name the cpipe binary (CTest sets it)}"
: "${CPIPE_SOURCE_DIR:?CPIPE_SOURCE_DIR must name the source tree (CTest sets it)}"
CPIPE_WRAPPER=${CPIPE_WRAPPER:-}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpipe-$TEST_NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2
checks=0

cpipe() {
	# shellcheck disable=SC2086
	$CPIPE_WRAPPER "$CPIPE" "$@"
}

fail() {
	echo "FAIL [$TEST_NAME]: $*" >&2
	exit 1
}

pass() {
	checks=$((checks + 1))
}

# expect_exit CODE COMMAND...: run, keep stdout in $WORK/out and stderr in $WORK/err.
expect_exit() {
	want=$1
	shift
	"$@" >"$WORK/out" 2>"$WORK/err"
	got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want; stderr: $(cat "$WORK/err")"
	pass
}

# expect_out TEXT: the last command's stdout equals TEXT exactly.
expect_out() {
	printf '%s\n' "$1" >"$WORK/want"
	cmp -s "$WORK/want" "$WORK/out" || fail "stdout differs: $(diff "$WORK/want" "$WORK/out")"
	pass
}

# expect_no_out: the last command printed nothing on stdout.
expect_no_out() {
	[ -s "$WORK/out" ] && fail "expected no output, got: $(cat "$WORK/out")"
	pass
}

# expect_err_contains TEXT: the last command's stderr contains TEXT.
expect_err_contains() {
	grep -qF -- "$1" "$WORK/err" || fail "stderr lacks '$1': $(cat "$WORK/err")"
	pass
}

expect_out_contains() {
	grep -qF -- "$1" "$WORK/out" || fail "stdout lacks '$1': $(cat "$WORK/out")"
	pass
}

# wait_until WHAT COMMAND...: poll COMMAND every 0.05 s until it succeeds; fail after 20 s.
wait_until() {
	what=$1
	shift
	tries=0
	until "$@"; do
		tries=$((tries + 1))
		[ $tries -lt 400 ] || fail "$what never happened"
		sleep 0.05
	done
}

done_testing() {
	echo "$TEST_NAME: $checks passed, 0 failed"
	exit 0
}

# expect_plan_error SED_SCRIPT TEXT: cpipe.yaml edited by SED_SCRIPT makes `cpipe plan` fail (exit 2)
# with TEXT on stderr; cpipe.yaml is put back as it was.
expect_plan_error() {
	cp cpipe.yaml "$WORK/cpipe.yaml.good"
	sed "$1" "$WORK/cpipe.yaml.good" >cpipe.yaml
	expect_exit 2 cpipe plan
	expect_err_contains "$2"
	cp "$WORK/cpipe.yaml.good" cpipe.yaml
}
