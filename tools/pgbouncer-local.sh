#!/usr/bin/env bash
# tools/pgbouncer-local.sh - a PgBouncer in transaction mode, for tests.
#
#   tools/pgbouncer-local.sh start DIR PORT UPSTREAM_PORT   prints its DATABASE_URL
#   tools/pgbouncer-local.sh stop DIR
#
# Transaction pooling is the mode that breaks session state (LISTEN,
# advisory locks, named statements); it is what hosted poolers (Supavisor
# on port 6543, the seeds' ?pgbouncer=true) run. Trust auth, loopback only.
set -euo pipefail
cmd=${1:-start}
dir=$(realpath -m "${2:?DIR}")
case "$cmd" in
start)
    port=${3:?PORT}
    upstream=${4:?UPSTREAM_PORT}
    mkdir -p "$dir"
    chmod 755 "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
trireme = host=127.0.0.1 port=$upstream dbname=trireme user=trireme

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo '"trireme" ""' >"$dir/users.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini"
    else
        pgbouncer -d "$dir/pgbouncer.ini"
    fi
    for _ in $(seq 50); do
        psql -h 127.0.0.1 -p "$port" -U trireme -d trireme -qAtc 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "postgresql://trireme@127.0.0.1:$port/trireme?pgbouncer=true"
    ;;
stop)
    [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    ;;
esac
