#!/bin/sh
# BIDS dataset ds000117 (bids-examples) with no flags: each T1w and bold file globbed once, one output
# per raw file plus a group output listing every bold output, a rerun that does nothing, and
# exact reruns after a run is removed and a session added. See bids-fixture.sh.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/bids-fixture.sh"
bids_scenario ds000117
echo "ok [$TEST_NAME]: $checks checks"
