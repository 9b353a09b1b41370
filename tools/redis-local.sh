#!/usr/bin/env bash
# tools/redis-local.sh - a private Redis for development and tests.
#
#   tools/redis-local.sh start [DIR] [PORT] [PASSWORD]   prints REDIS_URL
#   tools/redis-local.sh stop  [DIR]
#
# DIR defaults to .dev/redis, PORT to 63790. Loopback only, no persistence
# (a test that restarts Redis wants a clean one; a development Redis loses
# nothing that matters: leases and results expire anyway).
set -euo pipefail
cmd=${1:-start}
dir=$(realpath -m "${2:-.dev/redis}")
port=${3:-63790}
pass=${4:-}
case "$cmd" in
start)
    mkdir -p "$dir"
    if ! redis-cli -p "$port" ${pass:+-a "$pass"} --no-auth-warning ping >/dev/null 2>&1; then
        redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
            ${pass:+--requirepass "$pass"}
        for _ in $(seq 50); do
            redis-cli -p "$port" ${pass:+-a "$pass"} --no-auth-warning ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    echo "redis://${pass:+:$pass@}127.0.0.1:$port/0"
    ;;
stop)
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    ;;
*)
    echo "usage: tools/redis-local.sh start|stop [DIR] [PORT] [PASSWORD]" >&2
    exit 2
    ;;
esac
