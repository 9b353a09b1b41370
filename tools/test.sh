#!/usr/bin/env bash
# tools/test.sh - the README's second command: install, then every test.
#
# On a fresh Debian 12 machine, as root: installs the Debian packages, Zig
# and pytest, starts a private PostgreSQL and Redis, then runs `zig build test`, which in sequence runs the cmocka
# unit tests, a bounded libFuzzer run of the HTTP parser, the end-to-end
# suite against the real binary, and the unit and end-to-end suites again
# under AddressSanitizer + UndefinedBehaviorSanitizer. Exit 0 only if all
# pass. FUZZ_SECONDS (default 20) bounds each fuzz target.
set -euo pipefail
# A port nothing listens on now (a fixed one can be held by TIME_WAIT sockets of a previous run).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cd "$(dirname "$0")/.."
tools/deps.sh test
# A private PostgreSQL for the suites that need one. Its data lives under
# /tmp: the server runs as 'postgres', which may not reach into a checkout
# under a private home directory.
pgdir=$(mktemp -d /tmp/trireme-test-pg.XXXXXX)
chmod 755 "$pgdir"
TRIREME_TEST_DATABASE_URL=$(tools/pg-local.sh start "$pgdir/data" "$(free_port)")
TRIREME_TEST_PG_DIR="$pgdir/data" # tests restart it to check reconnects
export TRIREME_TEST_DATABASE_URL TRIREME_TEST_PG_DIR
# Two private Redis servers: one open, one with a password (AUTH is tested).
TRIREME_TEST_REDIS_URL=$(tools/redis-local.sh start "$pgdir/redis" "$(free_port)")
TRIREME_TEST_REDIS_AUTH_URL=$(tools/redis-local.sh start "$pgdir/redis-auth" "$(free_port)" "test-$$")
export TRIREME_TEST_REDIS_URL TRIREME_TEST_REDIS_AUTH_URL
trap 'tools/redis-local.sh stop "$pgdir/redis"; tools/redis-local.sh stop "$pgdir/redis-auth";
      tools/pg-local.sh stop "$pgdir/data"; rm -rf "$pgdir"' EXIT
python3 -m ziglang build test -Dfuzz-seconds="${FUZZ_SECONDS:-20}" --summary failures
echo "trireme: all test suites passed"
