#!/usr/bin/env bash
# tools/pg-local.sh - a private PostgreSQL for development and tests.
#
#   tools/pg-local.sh start [DIR] [PORT]   initdb if needed, start, print DATABASE_URL
#   tools/pg-local.sh stop  [DIR]
#
# DIR defaults to .dev/pg (git-ignored), PORT to 54329. Loopback only, trust
# authentication, fsync on (durability is part of what we test). The server
# runs as the 'postgres' system user because PostgreSQL refuses root.
set -euo pipefail
cmd=${1:-start}
dir=$(realpath -m "${2:-.dev/pg}")
port=${3:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir" -U postgres -A trust --no-instructions >/dev/null
        cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
CONF
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 start >/dev/null
    fi
    psql -h 127.0.0.1 -p "$port" -U postgres -qAtc "SELECT 1 FROM pg_roles WHERE rolname='trireme'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE trireme LOGIN SUPERUSER"
    psql -h 127.0.0.1 -p "$port" -U postgres -qAtc "SELECT 1 FROM pg_database WHERE datname='trireme'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE trireme OWNER trireme"
    echo "postgresql://trireme@127.0.0.1:$port/trireme"
    ;;
stop)
    [ -f "$dir/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: tools/pg-local.sh start|stop [DIR] [PORT]" >&2
    exit 2
    ;;
esac
