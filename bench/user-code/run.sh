#!/bin/sh
# bench/user-code/run.sh - user code in Trireme (exec kinds, pull workers)
# against Celery and plain SQL workers.
#
#   sh bench/user-code/run.sh
#
# In one run, on a private PostgreSQL (tools/pg-local.sh) and a private Redis,
# both on loopback. The job everywhere is hashjob.py's handle(): SHA-256 of
# the payload.
#   (a) pool: an exec kind in pool mode with POOL_PROCS (2) Python processes
#       (hashjob.py pool), N jobs enqueued first, then `trireme run
#       --roles=worker` starts; on PostgreSQL and on Redis (BACKENDS). The
#       peer: Celery prefork -c POOL_PROCS on Redis (bench/peers/celery_hash.py),
#       CELERY_N tasks queued first.
#   (b) one-shot: an exec kind (concurrency ONESHOT_C) running
#       `hashjob.py oneshot`, and /bin/true (ONESHOT_PROGRAMS), ONESHOT_N jobs;
#       the same program run directly as many times by the harness (its own
#       start-up), and ONESHOT_N noop jobs (the queue alone): the overhead per
#       job beyond the program's start-up.
#   (c) pull: PULL_PROCS (2) Python processes (pullworker.py) claiming
#       PULL_BATCH jobs per POST /v1/claim and completing each with a callback
#       (PULL_TRIREME "each"), or the whole claim with one POST /v1/outcomes
#       ("batch"), PULL_N jobs; the same processes on an equivalent plain table with
#       SELECT ... FOR UPDATE SKIP LOCKED (an UPDATE per job, and one per batch).
# Builds ReleaseFast into a temporary prefix, prints the section and appends
# it to bench/RESULTS.md. Every process it starts is stopped on exit.
#
# Environment knobs (defaults):
#   PARTS="a b c"
#   N=20000 CELERY_N=5000 POOL_PROCS=2 BACKENDS="pg redis"   (a)
#   ONESHOT_N=1000 ONESHOT_C=2 ONESHOT_PROGRAMS="python true"  (b)
#   PULL_N=30000 PULL_PROCS=2 PULL_BATCH=100 PULL_TRIREME="each batch"
#   PULL_SQL="sql-each sql-batch"  (c)
#   PULL_TIMEOUT=120    limit of one pull run in (c), seconds: a system still
#                       draining then is recorded as failed, with its rate so far
#   THREADS=1           trireme --threads of the worker (a, b)
#   PULL_THREADS=1      trireme --threads of the web role (c)
#   POLL_MS=50 TIMEOUT=600 STALL=30   limits of one burn-down
#   NOTE=               one line printed in bold at the top of the section
#   RESULTS=bench/RESULTS.md ("-" = print only)   KEEP_TMP=0
#   SRC=<repo root>     source tree to build
#   PY=/usr/bin/python3 the Python with Debian's psycopg2, redis and celery
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
PARTS=${PARTS:-a b c}
N=${N:-20000}
CELERY_N=${CELERY_N:-5000}
POOL_PROCS=${POOL_PROCS:-2}
BACKENDS=${BACKENDS:-pg redis}
ONESHOT_N=${ONESHOT_N:-1000}
ONESHOT_C=${ONESHOT_C:-2}
ONESHOT_PROGRAMS=${ONESHOT_PROGRAMS:-python true}
PULL_N=${PULL_N:-30000}
PULL_TIMEOUT=${PULL_TIMEOUT:-120}
PULL_PROCS=${PULL_PROCS:-2}
PULL_BATCH=${PULL_BATCH:-100}
PULL_SQL=${PULL_SQL:-sql-each sql-batch}
PULL_TRIREME=${PULL_TRIREME:-each batch}
THREADS=${THREADS:-1}
PULL_THREADS=${PULL_THREADS:-1}
POLL_MS=${POLL_MS:-50}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-30}
NOTE=${NOTE:-}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}
SRC=$(cd "${SRC:-$ROOT}" && pwd)
PY=${PY:-/usr/bin/python3}

. "$ROOT/bench/lib.sh"
for v in N CELERY_N POOL_PROCS ONESHOT_N ONESHOT_C PULL_N PULL_PROCS PULL_BATCH PULL_TIMEOUT \
    THREADS PULL_THREADS POLL_MS TIMEOUT STALL; do
    eval "posint $v \"\$$v\""
done
[ "$PULL_BATCH" -le 1000 ] || die "PULL_BATCH must be at most 1000 (POST /v1/claim's max)"
for p in $PARTS; do case $p in a | b | c) ;; *) die "PARTS: unknown part '$p' (a, b, c)" ;; esac; done
for b in $BACKENDS; do case $b in pg | redis) ;; *) die "BACKENDS: unknown '$b'" ;; esac; done
for p in $ONESHOT_PROGRAMS; do case $p in python | true) ;; *) die "ONESHOT_PROGRAMS: unknown '$p'" ;; esac; done
for p in $PULL_SQL; do case $p in sql-each | sql-batch) ;; *) die "PULL_SQL: unknown '$p'" ;; esac; done
for p in $PULL_TRIREME; do case $p in each | batch) ;; *) die "PULL_TRIREME: unknown '$p'" ;; esac; done
[ -f "$SRC/build.zig" ] || die "no build.zig in $SRC"
for tool in python3 timeout psql redis-server redis-cli runuser "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (tools/deps.sh bench)"
done
"$PY" -c 'import psycopg2, redis, celery' 2>/dev/null ||
    die "$PY lacks psycopg2/redis/celery: apt-get install python3-psycopg2 python3-celery python3-redis"

REDIS_PID= PG_STARTED=0
stop_all() {
    stop "$HPID"
    stop "$REDIS_PID"
    [ "$PG_STARTED" = 1 ] && "$ROOT/tools/pg-local.sh" stop "$PG_DIR" || true
}
bench_begin usercode
PG_DIR=$TMP/pg
uc() { bench_helper "$HERE/ucbench.py" "$@"; }

# ---------------------------------------------------------------- build
bench_build

# ---------------------------------------------------------------- PostgreSQL, Redis
PG_PORT=$("$PY" "$ROOT/bench/queue-pg/qbench.py" freeport)
say "starting PostgreSQL in $PG_DIR on 127.0.0.1:$PG_PORT"
PG_STARTED=1
DATABASE_URL=$("$ROOT/tools/pg-local.sh" start "$PG_DIR" "$PG_PORT" | tail -n1)
case $DATABASE_URL in postgresql://*) ;; *) die "tools/pg-local.sh printed no DATABASE_URL" ;; esac
# pg_stat_statements (for where PostgreSQL's time goes in (c)) needs a restart.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ -f "$(dirname "$PGBIN")/lib/pg_stat_statements.so" ]; then
    printf "%s\n" "shared_preload_libraries = 'pg_stat_statements'" >>"$PG_DIR/postgresql.conf"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
        -m fast restart >/dev/null || die "PostgreSQL did not restart with pg_stat_statements"
    psql "$DATABASE_URL" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" ||
        die "CREATE EXTENSION pg_stat_statements failed"
fi
export DATABASE_URL
"$BIN" migrate >"$TMP/migrate.log" 2>&1 || {
    cat "$TMP/migrate.log" >&2
    die "trireme migrate failed"
}
REDIS_PORT=$("$PY" "$ROOT/bench/queue-pg/qbench.py" freeport)
mkdir -p "$TMP/redis"
say "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
    --daemonize no --logfile "$TMP/redis/redis.log" &
REDIS_PID=$!
i=0
until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    alive "$REDIS_PID" || die "redis-server exited: $(cat "$TMP/redis/redis.log")"
    [ $i -lt 100 ] || die "redis-server not answering after 10 s"
    sleep 0.1
    i=$((i + 1))
done

# ---------------------------------------------------------------- measurements
export QB_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" QB_REDIS_PID=$REDIS_PID QB_TMP="$TMP" \
    QB_PGDATA="$PG_DIR" QB_OUT="$TMP/results.jsonl" QB_TR_BIN="$BIN" QB_PY="$PY" \
    QB_PEERS="$ROOT/bench/peers" QB_SRC="$SRC" QB_TIMEOUT="$TIMEOUT" QB_STALL="$STALL" \
    QB_POLL_MS="$POLL_MS" UC_N="$N" UC_CELERY_N="$CELERY_N" UC_POOL_PROCS="$POOL_PROCS" \
    UC_THREADS="$THREADS" UC_ONESHOT_N="$ONESHOT_N" UC_ONESHOT_C="$ONESHOT_C" UC_PULL_N="$PULL_N" \
    UC_PULL_PROCS="$PULL_PROCS" UC_PULL_BATCH="$PULL_BATCH" UC_PULL_THREADS="$PULL_THREADS" \
    UC_PULL_TIMEOUT="$PULL_TIMEOUT"
: >"$QB_OUT"
uc versions >"$TMP/versions.json" || die "cannot read versions"

if has "$PARTS" a; then
    for b in $BACKENDS; do
        say "(a) pool: trireme on $b, $N jobs, $POOL_PROCS processes"
        uc pool trireme "$b" || die "trireme pool burn-down failed"
    done
    say "(a) pool: celery -c $POOL_PROCS, $CELERY_N tasks"
    uc pool celery || die "celery pool burn-down failed"
fi
if has "$PARTS" b; then
    for p in $ONESHOT_PROGRAMS; do
        say "(b) one-shot: $p, $ONESHOT_N jobs, concurrency $ONESHOT_C"
        uc oneshot "$p" || die "one-shot $p failed"
    done
fi
if has "$PARTS" c; then
    for s in $(for m in $PULL_TRIREME; do echo "trireme-$m"; done) $PULL_SQL; do
        say "(c) pull: $s, $PULL_N jobs, $PULL_PROCS processes, batch $PULL_BATCH"
        uc pull "$s" || die "pull $s failed"
    done
fi
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
GIT_REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$SRC" status --porcelain 2>/dev/null | head -n1)" ] || GIT_REV="$GIT_REV + local changes"
knobs=
for v in PARTS N CELERY_N POOL_PROCS BACKENDS ONESHOT_N ONESHOT_C ONESHOT_PROGRAMS PULL_N PULL_PROCS \
    PULL_BATCH PULL_TRIREME PULL_SQL PULL_TIMEOUT THREADS PULL_THREADS; do
    eval "val=\$$v"
    case $val in *' '* | '') val="\"$val\"" ;; esac
    knobs="$knobs$v=$val "
done
export QB_STARTED="$STARTED" QB_NOTE="$NOTE" QB_KERNEL="$(uname -r)" QB_CPU="${CPU:-$(uname -m)}" \
    QB_NPROC="$NPROC" QB_MEM_GIB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
    QB_LOAD_START="$LOADAVG_START" QB_LOAD_END="$LOADAVG_END" QB_GIT="$GIT_REV" \
    QB_ZIG="zig $(python3 -m ziglang version 2>&1 | head -n1)" QB_BUILD="$BUILD_CMD" \
    QB_VERSIONS_FILE="$TMP/versions.json" QB_COMMAND="${knobs}sh bench/user-code/run.sh"
uc report >"$TMP/section.md" || die "report failed"
cat "$TMP/section.md"
if [ "$RESULTS" = - ]; then
    say "RESULTS=-: not appended"
    exit 0
fi
cat "$TMP/section.md" >>"$RESULTS"
say "appended to $RESULTS"
