#!/usr/bin/env bash
# Before/after: cpipe binaries side by side on one study, in alternating rounds (binary 1, 2, ...,
# then the next round), so that load from other work on the machine falls on each alike.
#
#   bench/compare.sh DIR ROUNDS 'run -j2' BINARY...
#
# Prints per binary: min and median wall, median user and system CPU, median peak RSS; then, when
# hyperfine is installed, `hyperfine -N` of the same commands (its runs are not interleaved).
# A study that must stay clean or up to date between rounds is the caller's business: use a
# command that changes nothing (a no-op run, or plan).
set -u
export LC_ALL=C
[ $# -ge 4 ] || { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
DIR=$1 ROUNDS=$2 ARGS=$3
shift 3
cd "$DIR" || exit 2
TMP=$(mktemp -d /tmp/cpipe-compare.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for _ in $(seq 1 "$ROUNDS"); do
	k=0
	for b in "$@"; do
		k=$((k + 1))
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2086
		/usr/bin/time -f '%U %S %M' -o "$TMP/t" "$b" $ARGS >/dev/null 2>"$TMP/err" || { tail -3 "$TMP/err" >&2; }
		printf '%s %s\n' "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }')" \
			"$(tail -1 "$TMP/t")" >>"$TMP/$k"
	done
done
printf '%-40s %6s %9s %9s %9s %9s %9s\n' "binary ($ROUNDS alternating rounds: cpipe $ARGS)" runs "min s" "median s" "user s" "sys s" "RSS MiB"
k=0
for b in "$@"; do
	k=$((k + 1))
	awk -v name="$b" '
		function med(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ n++; w[n] = $1; u[n] = $2; s[n] = $3; m[n] = $4 }
		END { mw = med(w, n); mi = w[1]; printf "%-40s %6d %9.3f %9.3f %9.3f %9.3f %9.1f\n", name, n, mi, mw, med(u, n), med(s, n), med(m, n) / 1024 }' "$TMP/$k"
done
if command -v hyperfine >/dev/null; then
	cmds=()
	for b in "$@"; do cmds+=("$b $ARGS"); done
	hyperfine -N --warmup 1 --runs "$ROUNDS" --style basic "${cmds[@]}" 2>&1 | grep -v '^ *$'
fi
