#!/usr/bin/env bash
# tools/test.sh - the README's second command: install, then every test.
#
# On a fresh Debian 12 machine, as root: installs the Debian packages, Zig
# and pytest, then runs `zig build test`, which in sequence runs the cmocka
# unit tests, a bounded libFuzzer run of the HTTP parser, the end-to-end
# suite against the real binary, and the unit and end-to-end suites again
# under AddressSanitizer + UndefinedBehaviorSanitizer. Exit 0 only if all
# pass. FUZZ_SECONDS (default 20) bounds each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
python3 -m ziglang build test -Dfuzz-seconds="${FUZZ_SECONDS:-20}" --summary failures
echo "trireme: all test suites passed"
