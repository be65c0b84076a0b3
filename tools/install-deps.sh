#!/bin/sh
# Install the Debian packages cpipe needs to build and test, when some are missing.
# Usage: tools/install-deps.sh [--example | --test]
#   --example adds what the example study needs (MRtrix3, and python3-nibabel for its T1 image);
#   --test adds that and what the test suite and fuzzers use.
set -eu
packages="build-essential cmake pkg-config libcyaml-dev libpcre2-dev libsqlite3-dev libjansson-dev libxxhash-dev"
example="mrtrix3 python3-nibabel"
case "${1:-}" in
--example) packages="$packages $example" ;;
--test) packages="$packages $example libcmocka-dev valgrind clang libclang-rt-14-dev sqlite3 python3 mandoc" ;;
esac
missing=""
for package in $packages; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
