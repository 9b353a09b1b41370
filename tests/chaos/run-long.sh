#!/bin/sh
# run-long.sh - the long chaos run: every scenario CHAOS_RUNS times (10)
# with CHAOS_SCALE (3) times the CI variant's jobs, then the Markdown table
# of what was measured (summarize.py), for docs/reliability.md.
#
# Needs the test servers of the e2e suite (TRIREME_TEST_DATABASE_URL,
# TRIREME_TEST_PG_DIR, TRIREME_TEST_REDIS_URL) and a built zig-out/bin/trireme.
#
#   tests/chaos/run-long.sh [results.jsonl]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../zig-out/chaos-long.jsonl}
: > "$out"
export CHAOS_RUNS=${CHAOS_RUNS:-10} CHAOS_SCALE=${CHAOS_SCALE:-3} CHAOS_RESULTS=$out
rc=0
(cd "$here" && python3 -m pytest -q .) || rc=$?
python3 "$here/summarize.py" "$out"
exit $rc
