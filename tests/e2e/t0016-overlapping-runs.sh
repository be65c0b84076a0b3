#!/bin/sh
# Two runs started a moment apart (0 to 0.5 s) execute every job exactly once between them: a
# job the other run is running is held, and one it finished after this run looked (its results
# wait in its transaction for up to 0.5 s) is decided again, not run twice.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
subjects="01 02 03 04 05 06"
make_study study $subjects
cd study || exit 2
# Each job takes a little while, so the second run starts while the first is mid-way.
sed 's/run: "cp /run: "sleep 0.05; cp /' cpipe.yaml >c.new && mv c.new cpipe.yaml
trials=20
# valgrind makes each cpipe start take seconds: the pairs then hardly overlap, and 20 take minutes.
[ -n "$CPIPE_WRAPPER" ] && trials=4 && echo "$TEST_NAME: $trials pairs instead of 20 under a wrapper" >&2
expected=$( (for s in $subjects; do echo "brain $s"; echo "fov $s"; echo "reorient $s"; done; echo group) | sort)
t=0
while [ $t -lt $trials ]; do
	rm -rf .cpipe group ran.log sub-*/T1w_*
	delay=$(awk -v t=$t 'BEGIN { printf "%.3f", (t % 11) * 0.05 }')
	# shellcheck disable=SC2086
	$CPIPE_WRAPPER "$CPIPE" run -j2 -q >a.out 2>&1 &
	a=$!
	sleep "$delay"
	# shellcheck disable=SC2086
	$CPIPE_WRAPPER "$CPIPE" run -j2 -q >b.out 2>&1 &
	b=$!
	wait $a
	wait $b
	got=$(sort ran.log)
	[ "$got" = "$expected" ] || fail "pair $t (second run $delay s later): jobs ran
$got
expected each once:
$expected
first run: $(cat a.out)
second run: $(cat b.out)"
	pass
	expect_exit 0 cpipe plan
	expect_out "0 to run, 19 up to date, 0 to adopt, 0 held by another run"
	t=$((t + 1))
done
done_testing
