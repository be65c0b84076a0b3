#!/bin/sh
# One command for a newcomer: install what is missing, build cpipe, and run it on the bundled example study.
set -eu
cd "$(dirname "$0")"
tools/install-deps.sh
cmake -S . -B build -DCPIPE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "== cpipe glob: the subjects of the tutorial study (trees/example/mydata)" >&2
./build/cpipe glob t1 -t trees/mydata.tree -C trees/example/mydata
