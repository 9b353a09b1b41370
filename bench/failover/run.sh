#!/usr/bin/env bash
# bench/failover/run.sh - leader failover times (see run.py), both backends.
#   bash bench/failover/run.sh          TRIALS=20 by default
# Builds ReleaseFast into a temp prefix, starts a private PostgreSQL and
# Redis (loopback), runs the trials, appends to bench/RESULTS.md.
set -euo pipefail
# A port nothing listens on now (a fixed one can be held by TIME_WAIT sockets of a previous run).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cd "$(dirname "$0")/../.."
tools/deps.sh test >/dev/null
tmp=$(mktemp -d /tmp/trireme-failover.XXXXXX)
chmod 755 "$tmp"
trap 'tools/redis-local.sh stop "$tmp/redis"; tools/pg-local.sh stop "$tmp/pg"; rm -rf "$tmp"' EXIT
python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline --prefix "$tmp/out" >/dev/null
DATABASE_URL=$(tools/pg-local.sh start "$tmp/pg" "$(free_port)")
REDIS_URL=$(tools/redis-local.sh start "$tmp/redis" "$(free_port)")
export DATABASE_URL REDIS_URL TRIREME_BIN="$tmp/out/bin/trireme"
"$TRIREME_BIN" migrate >/dev/null
python3 bench/failover/run.py
