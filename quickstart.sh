#!/bin/sh
# One command for a newcomer: install what is missing, build cpipe, and run the example pipeline
# (recipes/mydata.yaml over the tutorial tree) on a copy of the bundled study, twice: the second
# run finds nothing to do.
set -eu
cd "$(dirname "$0")"
tools/install-deps.sh
cmake -S . -B build -DCPIPE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
study=build/example-study
rm -rf "$study"
mkdir -p "$study"
cp -R trees/example/mydata/. "$study"/
echo "== the subjects cpipe finds (cpipe glob t1)"
./build/cpipe glob t1 -t trees/mydata.tree -C "$study"
echo "== cpipe plan"
./build/cpipe plan -f recipes/mydata.yaml --data "$study"
echo "== cpipe run"
./build/cpipe run -f recipes/mydata.yaml --data "$study"
echo "== cpipe run again: nothing to do"
./build/cpipe run -f recipes/mydata.yaml --data "$study"
echo "== cpipe status"
./build/cpipe status -f recipes/mydata.yaml --data "$study"
