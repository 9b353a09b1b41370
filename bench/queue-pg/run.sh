#!/bin/sh
# bench/queue-pg/run.sh - Trireme's PostgreSQL job queue against its peers.
#
#   sh bench/queue-pg/run.sh
#
# In one run, on a private PostgreSQL (tools/pg-local.sh, fresh directory,
# pg_stat_statements loaded) and a private Redis, both on loopback:
#   (a) burn-down: N noop jobs inserted first, then the worker starts; time
#       until none is pending or running. Trireme --roles=worker, the Python
#       SKIP LOCKED worker (bench/peers/pg_skip_locked_worker.py) with 1 and
#       2 processes, and Celery with a Redis broker (CELERY_N tasks).
#   (b) sustained enqueue for DURATION seconds while the worker drains:
#       Trireme --roles=web,worker under wrk POSTing {"kind":"noop"} one job
#       per request; the Python worker (2 processes) under Python producers
#       inserting one row per transaction (bench/peers/pg_producer.py).
#   (c) enqueue->start latency, one job at a time on an idle queue: Trireme
#       (enqueue by SELECT trireme.enqueue('noop'), and by POST /v1/jobs), the
#       Python worker (1 process; plain INSERT), Celery. With trireme, also
#       the enqueue cost: trireme.enqueue() and the plain INSERT alternating.
# Builds ReleaseFast into a temporary prefix (zig-out/ is left alone),
# prints the results and appends them as a dated section to
# bench/RESULTS.md. Every process it starts is stopped on exit.
#
# Environment knobs (defaults):
#   N=200000            jobs pre-inserted for each PostgreSQL burn-down
#   CELERY_N=20000      tasks for the Celery burn-down
#   DURATION=60         seconds of load in (b)
#   LAT_N=1000          latency samples per system in (c), after LAT_WARMUP=20
#   LAT_GAP_MS=10       pause between two latency samples
#   COST_N=2000         calls of each in (c)'s enqueue cost: SELECT trireme.enqueue()
#                       and the plain INSERT, alternating on one connection
#   PARTS="a b c"       which parts to run
#   SYSTEMS="trireme trireme-tuned python1 python2 celery"   which systems (a
#                       system a part does not measure is skipped there: (a) runs
#                       all, trireme-tuned only there; (b) trireme and python2,
#                       (c) trireme, python1 and celery)
#   THREADS=<nproc>     trireme --threads
#   TR_FLAGS=           more `trireme run` flags, e.g. "--concurrency=256 --batch-size=200"
#   TUNED_FLAGS="--concurrency=1024 --batch-size=512"   added for trireme-tuned in (a):
#                       the defaults (trireme) and tuned settings side by side
#   PY_BATCH=20         jobs per claim transaction of the Python worker
#   PY_PRODUCERS=2      producer processes of the Python peer in (b)
#   CELERY_CONCURRENCY=2  celery worker --concurrency
#   WRK_CONNS=64 WRK_THREADS=2   wrk in (b)
#   POLL_MS=100         poll interval of the pending/running count
#   TIMEOUT=900         limit of one burn-down or drain, seconds
#   STALL=30            no progress for this long = stuck (recorded, run goes on)
#   PG_DIR=/tmp/trireme-bench-pg PG_PORT=54331   the private cluster (re-created
#                       each run; only a directory this script made is removed)
#   KEEP_PG=0           1 = leave the cluster's directory (stopped) after the run
#   NOTE=               one line printed in bold at the top of the section
#   RESULTS=bench/RESULTS.md   file the section is appended to ("-" = print only)
#   KEEP_TMP=0          1 = keep the temporary directory (build, logs, raw JSON)
#   SRC=<repo root>     source tree to build
#   PY=/usr/bin/python3 the Python with Debian's psycopg2, redis and celery
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=$ROOT/bench/peers
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
N=${N:-200000}
CELERY_N=${CELERY_N:-20000}
DURATION=${DURATION:-60}
LAT_N=${LAT_N:-1000}
LAT_WARMUP=${LAT_WARMUP:-20}
LAT_GAP_MS=${LAT_GAP_MS:-10}
COST_N=${COST_N:-2000}
PARTS=${PARTS:-a b c}
SYSTEMS=${SYSTEMS:-trireme trireme-tuned python1 python2 celery}
TUNED_FLAGS=${TUNED_FLAGS:---concurrency=1024 --batch-size=512}
THREADS=${THREADS:-$NPROC}
TR_FLAGS=${TR_FLAGS:-}
PY_BATCH=${PY_BATCH:-20}
PY_PRODUCERS=${PY_PRODUCERS:-2}
CELERY_CONCURRENCY=${CELERY_CONCURRENCY:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
POLL_MS=${POLL_MS:-100}
TIMEOUT=${TIMEOUT:-900}
STALL=${STALL:-30}
PG_DIR=${PG_DIR:-/tmp/trireme-bench-pg}
PG_PORT=${PG_PORT:-54331}
KEEP_PG=${KEEP_PG:-0}
NOTE=${NOTE:-}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}
SRC=$(cd "${SRC:-$ROOT}" && pwd)
PY=${PY:-/usr/bin/python3}
MARK=.trireme-bench-queue-pg

. "$ROOT/bench/lib.sh"
for v in N CELERY_N DURATION LAT_N COST_N THREADS PY_BATCH PY_PRODUCERS CELERY_CONCURRENCY WRK_CONNS \
    WRK_THREADS POLL_MS TIMEOUT STALL PG_PORT; do
    eval "posint $v \"\$$v\""
done
case $LAT_WARMUP in '' | *[!0-9]*) die "LAT_WARMUP must be a number" ;; esac
case $LAT_GAP_MS in '' | *[!0-9]*) die "LAT_GAP_MS must be a number" ;; esac
[ "$WRK_CONNS" -ge "$WRK_THREADS" ] || die "WRK_CONNS must be >= WRK_THREADS"
for p in $PARTS; do case $p in a | b | c) ;; *) die "PARTS: unknown part '$p' (a, b, c)" ;; esac; done
for s in $SYSTEMS; do
    case $s in trireme | trireme-tuned | python1 | python2 | celery) ;; *) die "SYSTEMS: unknown system '$s'" ;; esac
done
case $PG_DIR in /*) ;; *) die "PG_DIR must be an absolute path" ;; esac
[ -f "$SRC/build.zig" ] || die "no build.zig in $SRC"
for tool in python3 wrk timeout psql redis-server redis-cli runuser "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
"$PY" -c 'import psycopg2, redis, celery' 2>/dev/null ||
    die "$PY lacks psycopg2/redis/celery: apt-get install python3-psycopg2 python3-celery python3-redis"
want() { # part system
    case " $PARTS " in *" $1 "*) ;; *) return 1 ;; esac
    case " $SYSTEMS " in *" $2 "*) return 0 ;; esac
    return 1
}

REDIS_PID= PG_STARTED=0

pg_stop() {
    [ "$PG_STARTED" = 1 ] || return 0
    "$ROOT/tools/pg-local.sh" stop "$PG_DIR/data" || true
    PG_STARTED=0
    if [ "$KEEP_PG" != 1 ] && [ -f "$PG_DIR/$MARK" ]; then
        rm -rf "$PG_DIR"
    fi
}

stop_all() {
    stop "$HPID"
    stop "$REDIS_PID"
    pg_stop
}
bench_begin queue
qb() { bench_helper "$HERE/qbench.py" "$@"; }

# ---------------------------------------------------------------- build
bench_build

# ---------------------------------------------------------------- PostgreSQL
# A fresh private cluster: a directory this script made earlier is removed,
# anything else is refused.
if [ -e "$PG_DIR" ]; then
    [ -f "$PG_DIR/$MARK" ] || die "$PG_DIR exists and was not made by this script; set PG_DIR"
    "$ROOT/tools/pg-local.sh" stop "$PG_DIR/data" || true
    rm -rf "$PG_DIR"
fi
if "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PG_PORT)) != 0)"; then
    die "port $PG_PORT is in use; set PG_PORT"
fi
mkdir -p "$PG_DIR"
: >"$PG_DIR/$MARK"
chmod 755 "$PG_DIR"
say "starting PostgreSQL in $PG_DIR/data on 127.0.0.1:$PG_PORT"
PG_STARTED=1
DATABASE_URL=$("$ROOT/tools/pg-local.sh" start "$PG_DIR/data" "$PG_PORT" | tail -n1)
case $DATABASE_URL in postgresql://*) ;; *) die "tools/pg-local.sh printed no DATABASE_URL" ;; esac
# pg_stat_statements needs a restart.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ -f "$(dirname "$PGBIN")/lib/pg_stat_statements.so" ]; then
    printf "%s\n" "shared_preload_libraries = 'pg_stat_statements'" >>"$PG_DIR/data/postgresql.conf"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/data/server.log" -w -t 60 \
        -m fast restart >/dev/null || die "PostgreSQL did not restart with pg_stat_statements"
    psql "$DATABASE_URL" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" ||
        die "CREATE EXTENSION pg_stat_statements failed"
fi
export DATABASE_URL
"$BIN" migrate >"$TMP/migrate.log" 2>&1 || {
    cat "$TMP/migrate.log" >&2
    die "trireme migrate failed"
}

# ---------------------------------------------------------------- Redis
if want a celery || want c celery; then
    REDIS_PORT=$("$PY" "$HERE/qbench.py" freeport)
    mkdir -p "$TMP/redis"
    say "starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP/redis" --daemonize no --logfile "$TMP/redis/redis.log" &
    REDIS_PID=$!
    i=0
    until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
        alive "$REDIS_PID" || die "redis-server exited: $(cat "$TMP/redis/redis.log")"
        [ $i -lt 100 ] || die "redis-server not answering after 10 s"
        sleep 0.1
        i=$((i + 1))
    done
    export QB_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" QB_REDIS_PID=$REDIS_PID
fi

# ---------------------------------------------------------------- measurements
export QB_SRC="$SRC" QB_PGDATA="$PG_DIR/data" QB_OUT="$TMP/results.jsonl" QB_TMP="$TMP" QB_TR_BIN="$BIN" \
    QB_THREADS="$THREADS" QB_TR_FLAGS="$TR_FLAGS" QB_TUNED_FLAGS="$TUNED_FLAGS" QB_PY="$PY" QB_PEERS="$PEERS" QB_N="$N" \
    QB_CELERY_N="$CELERY_N" QB_DURATION="$DURATION" QB_LAT_N="$LAT_N" QB_LAT_WARMUP="$LAT_WARMUP" \
    QB_LAT_GAP_MS="$LAT_GAP_MS" QB_COST_N="$COST_N" QB_POLL_MS="$POLL_MS" QB_TIMEOUT="$TIMEOUT" QB_STALL="$STALL" \
    QB_PY_BATCH="$PY_BATCH" QB_PY_PRODUCERS="$PY_PRODUCERS" QB_WRK_CONNS="$WRK_CONNS" \
    QB_WRK_THREADS="$WRK_THREADS" QB_CELERY_CONCURRENCY="$CELERY_CONCURRENCY"
: >"$QB_OUT"
qb versions >"$TMP/versions.json" || die "cannot read versions"

for s in trireme trireme-tuned python1 python2 celery; do
    if want a "$s"; then
        say "(a) burn-down: $s"
        qb burndown "$s" || die "qbench burndown $s failed (see above)"
    fi
done
for s in trireme python2; do
    if want b "$s"; then
        say "(b) sustained ${DURATION} s: $s"
        qb sustained "$s" || die "qbench sustained $s failed (see above)"
    fi
done
for s in trireme python1 celery; do
    if want c "$s"; then
        for v in $s $([ "$s" = trireme ] && echo trireme-http); do
            say "(c) latency, $LAT_N samples: $v"
            qb latency "$v" || die "qbench latency $v failed (see above)"
        done
        if [ "$s" = trireme ]; then
            say "(c) enqueue cost, $COST_N calls of each: trireme.enqueue() and the plain INSERT"
            qb enqueue_cost trireme || die "qbench enqueue_cost failed (see above)"
        fi
    fi
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
GIT_REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "unknown, not a git checkout")
if [ -n "$(git -C "$SRC" status --porcelain 2>/dev/null | head -n1)" ]; then
    GIT_REV="$GIT_REV + local changes"
fi
knobs=
for v in N CELERY_N DURATION LAT_N LAT_WARMUP LAT_GAP_MS COST_N PARTS SYSTEMS THREADS TR_FLAGS TUNED_FLAGS PY_BATCH \
    PY_PRODUCERS CELERY_CONCURRENCY WRK_CONNS WRK_THREADS POLL_MS; do
    eval "val=\$$v"
    case $val in *' '* | '') val="\"$val\"" ;; esac
    knobs="$knobs$v=$val "
done
[ "$SRC" = "$ROOT" ] || knobs="SRC=$SRC $knobs"
export QB_STARTED="$STARTED" QB_NOTE="$NOTE" QB_KERNEL="$(uname -r)" QB_CPU="${CPU:-$(uname -m)}" \
    QB_NPROC="$NPROC" QB_MEM_GIB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
    QB_LOAD_START="$LOADAVG_START" QB_LOAD_END="$LOADAVG_END" QB_GIT="$GIT_REV" \
    QB_ZIG="$(python3 -m ziglang version 2>&1 | head -n1)" \
    QB_COMMAND="${knobs}sh bench/queue-pg/run.sh" QB_BUILD="$BUILD_CMD" QB_VERSIONS_FILE="$TMP/versions.json"
qb report >"$TMP/section.md" || die "report failed"
cat "$TMP/section.md"
if [ "$RESULTS" = - ]; then
    say "RESULTS=-: not appended"
    exit 0
fi
if [ ! -s "$RESULTS" ]; then
    cat >"$RESULTS" <<'EOF'
# Benchmark results

Each benchmark script (see [README.md](README.md)) appends one dated section
to this file per run: the machine, the versions, the exact command line and
its tables. The numbers below are produced by the scripts only; nothing here
is typed or edited by hand. Compare sections only when machine, versions and
settings match.

EOF
fi
cat "$TMP/section.md" >>"$RESULTS"
say "appended to $RESULTS"
