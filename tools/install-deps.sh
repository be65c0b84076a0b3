#!/bin/sh
# Install the Debian packages cpipe needs to build and test, when some are missing.
# Usage: tools/install-deps.sh [--example | --test]
#   --example adds what the example study needs (MRtrix3, and python3-nibabel for its T1 image);
#   --test adds that and what the test suite and fuzzers use, including the private SLURM and
#   Grid Engine that the cluster scenarios start (tests/cluster/start-*.sh): everything is
#   installed here, once, before any test starts, so that scenarios running in parallel never
#   race for apt's lock.
set -eu
packages="build-essential cmake pkg-config libcyaml-dev libpcre2-dev libsqlite3-dev libjansson-dev libxxhash-dev"
example="mrtrix3 python3-nibabel"
cluster=""
case "${1:-}" in
--example) packages="$packages $example" ;;
--test)
	packages="$packages $example libcmocka-dev valgrind clang libclang-rt-14-dev sqlite3 python3 mandoc"
	cluster="munge slurmctld slurmd slurm-client gridengine-master gridengine-exec gridengine-client"
	;;
esac
missing=""
for package in $packages $cluster; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
if [ -n "$cluster" ]; then
	# Grid Engine's postinst must not create the system-wide cell: the tests make their own.
	printf '%s\n' "gridengine-common shared/gridengineconfig boolean false" \
		"gridengine-master shared/gridengineconfig boolean false" | $sudo debconf-set-selections
fi
# Wait for apt's lock rather than fail when another apt runs (Lock::Timeout, apt >= 1.9.11).
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
	$missing >&2
