#!/usr/bin/env bash
# tools/dev.sh - the README's first command: the whole stack, locally.
#
# On a fresh Debian 12 machine, as root: installs the Debian packages and
# Zig, builds Trireme (ReleaseSafe), starts a private PostgreSQL (data in
# .dev/pg) and Redis (.dev/redis), loopback only, and runs every role built
# in (web + worker + beat) in one process on PORT (default 8000), migrating the
# schema at start. An API key is generated once (.dev/api-key) and printed.
# Ctrl-C drains and exits; the servers keep running
# (tools/pg-local.sh stop .dev/pg; tools/redis-local.sh stop .dev/redis).
# Extra arguments go to `trireme run` (e.g. tools/dev.sh --threads=1).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh dev
python3 -m ziglang build -Doptimize=ReleaseSafe
mkdir -p .dev
chmod 755 .dev
if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL=$(tools/pg-local.sh start .dev/pg 54329)
    export DATABASE_URL
fi
if [ -z "${REDIS_URL:-}" ]; then
    REDIS_URL=$(tools/redis-local.sh start .dev/redis 63790)
    export REDIS_URL
fi
[ -s .dev/api-key ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >.dev/api-key
export TRIREME_API_KEYS="${TRIREME_API_KEYS:-$(cat .dev/api-key)}"
export PORT="${PORT:-8000}" LOG_FORMAT="${LOG_FORMAT:-text}" TRIREME_MIGRATE=auto
cat >&2 <<MSG
trireme: serving on http://127.0.0.1:$PORT   database: $DATABASE_URL   redis: $REDIS_URL
trireme: API key: $TRIREME_API_KEYS
trireme: dashboard: http://127.0.0.1:$PORT/ui (sign in with the API key)
  curl -s -H "Authorization: Bearer $TRIREME_API_KEYS" -d '{"kind":"sleep","payload":{"ms":500}}' http://127.0.0.1:$PORT/v1/jobs
  curl -s -H "Authorization: Bearer $TRIREME_API_KEYS" http://127.0.0.1:$PORT/v1/jobs
  curl -s -H "Authorization: Bearer $TRIREME_API_KEYS" -d '{"name":"tick","cron":"@every 10s","kind":"noop"}' http://127.0.0.1:$PORT/v1/schedules
MSG
exec zig-out/bin/trireme run "$@"
