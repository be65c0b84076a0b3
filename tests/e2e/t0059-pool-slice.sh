#!/bin/sh
# The local pool asks Linux (6.12+) for a short time slice for itself, so that when a job ends
# it is scheduled at once rather than after the slice of a job on a busy core (exec_sched.c);
# its jobs keep the default slice, as under any other parent. A job reads both from
# /proc/<pid>/sched (shown only with CONFIG_SCHED_DEBUG). Elsewhere there is nothing to check.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"

slice_of() { sed -n 's/^se\.slice[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/sched" 2>/dev/null; }
kernel_at_least() { # MAJOR MINOR
	uname -r | awk -F'[.-]' -v a="$1" -v b="$2" '{ exit !($1 > a || ($1 == a && $2 >= b)) }'
}
if [ "$(uname -s)" != Linux ] || [ -z "$(slice_of self)" ] || ! kernel_at_least 6 12; then
	echo "$TEST_NAME: no per-task slices here (Linux 6.12 with /proc/PID/sched): nothing to check"
	done_testing
fi

default_slice=$(slice_of self)
cat >study.tree <<'TREE'
slices.txt (slices)
TREE
# Through the shell ($PPID and $$): the job's parent is the pool itself.
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: probe
    out: [slices]
    run: "sed -n 's/^se.slice[^0-9]*//p' /proc/$PPID/sched /proc/$$/sched > {slices}"
YAML
expect_exit 0 cpipe run -q
pool=$(sed -n 1p slices.txt)
job=$(sed -n 2p slices.txt)
[ -n "$pool" ] && [ -n "$job" ] || fail "no slices read: $(cat slices.txt)"
[ "$job" -eq "$default_slice" ] || fail "the job's slice is $job ns, not the default $default_slice ns"
pass
[ "$pool" -lt "$job" ] || fail "the pool's slice ($pool ns) is not shorter than its job's ($job ns)"
pass
echo "$TEST_NAME: pool slice $pool ns, job slice $job ns"

# A nice run keeps its nice jobs (reset-on-fork would only touch a negative nice).
rm -f slices.txt
sed -i 's|run: .*|run: "nice > {slices}"|' cpipe.yaml
# shellcheck disable=SC2086
expect_exit 0 nice -n 5 $CPIPE_WRAPPER "$CPIPE" run -q
[ "$(cat slices.txt)" -eq "$(($(nice) + 5))" ] || fail "a job of 'nice -n 5 cpipe run' runs at nice $(cat slices.txt)"
pass
done_testing
