#!/bin/sh
# bench/queue-redis/run.sh - Trireme's Redis job queue against Celery.
#
#   sh bench/queue-redis/run.sh
#
# In one run, on one private redis-server (no persistence) on loopback:
#   Trireme  --queue-backend=redis: N noop jobs preloaded through POST /v1/jobs
#            (batches, the end-to-end enqueue rate is reported), then
#            `trireme run --roles=worker` starts and the drain is timed until
#            the consumer group has nothing pending or unread; every job's hash
#            is checked (succeeded, attempts 1). RSS idle before and after.
#   Celery   the Redis broker, Debian's python3-celery, prefork pool
#            (bench/peers/celery_noop.py, driven by bench/queue-pg/qbench.py's
#            burn-down: CELERY_N tasks queued, then the worker starts).
# Builds ReleaseFast into a temporary prefix, prints the section and appends
# it to bench/RESULTS.md. Every process it starts is stopped on exit.
#
# Environment knobs (defaults):
#   N=200000              Trireme jobs
#   CELERY_N=20000        Celery tasks
#   THREADS=1             trireme --threads of the tuned worker
#   TR_FLAGS="--concurrency=4096 --batch-size=1000"   the tuned worker's flags
#                         (system trireme runs with no flags at all: the defaults)
#   PRELOAD_BATCH=1000 PRELOAD_CONNS=4                the HTTP preload
#   CELERY_CONCURRENCY=2  celery worker --concurrency
#   SYSTEMS="trireme trireme-tuned celery"
#   TIMEOUT=900 STALL=30 POLL_MS=100   limits of one burn-down (Celery's poll)
#   NOTE=                 one line printed in bold at the top of the section
#   RESULTS=bench/RESULTS.md ("-" = print only)   KEEP_TMP=0
#   PY=/usr/bin/python3   the Python with Debian's redis and celery
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
N=${N:-200000}
CELERY_N=${CELERY_N:-20000}
THREADS=${THREADS:-1}
TR_FLAGS=${TR_FLAGS:---concurrency=4096 --batch-size=1000}
PRELOAD_BATCH=${PRELOAD_BATCH:-1000}
PRELOAD_CONNS=${PRELOAD_CONNS:-4}
CELERY_CONCURRENCY=${CELERY_CONCURRENCY:-2}
SYSTEMS=${SYSTEMS:-trireme trireme-tuned celery}
TIMEOUT=${TIMEOUT:-900}
STALL=${STALL:-30}
POLL_MS=${POLL_MS:-100}
NOTE=${NOTE:-}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}
PY=${PY:-/usr/bin/python3}

SRC=$ROOT
. "$ROOT/bench/lib.sh"
for v in N CELERY_N THREADS PRELOAD_BATCH PRELOAD_CONNS CELERY_CONCURRENCY TIMEOUT STALL POLL_MS; do
    eval "posint $v \"\$$v\""
done
[ $((N % PRELOAD_BATCH)) -eq 0 ] || die "N must be a multiple of PRELOAD_BATCH"
for s in $SYSTEMS; do case $s in trireme | trireme-tuned | celery) ;; *) die "SYSTEMS: unknown '$s'" ;; esac; done
for tool in python3 redis-server redis-cli timeout "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
"$PY" -c 'import redis, celery' 2>/dev/null ||
    die "$PY lacks redis/celery: apt-get install python3-celery python3-redis"

REDIS_PID=
stop_all() {
    stop "$HPID"
    stop "$REDIS_PID"
}
bench_begin qredis
rb() { bench_helper "$HERE/rbench.py" "$@"; }
bench_build

REDIS_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/redis"
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

export QB_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" QB_REDIS_PID=$REDIS_PID QB_TMP="$TMP" \
    QB_OUT="$TMP/results.jsonl" QB_TR_BIN="$BIN" QB_PY="$PY" QB_PEERS="$ROOT/bench/peers" \
    QB_CELERY_N="$CELERY_N" QB_CELERY_CONCURRENCY="$CELERY_CONCURRENCY" QB_TIMEOUT="$TIMEOUT" \
    QB_STALL="$STALL" QB_POLL_MS="$POLL_MS" RB_N="$N" RB_THREADS="$THREADS" RB_TR_FLAGS="$TR_FLAGS" \
    RB_PRELOAD_BATCH="$PRELOAD_BATCH" RB_PRELOAD_CONNS="$PRELOAD_CONNS"
: >"$QB_OUT"
rb versions >"$TMP/versions.json" || die "cannot read versions"
for s in trireme trireme-tuned; do
    case " $SYSTEMS " in *" $s "*)
        say "Trireme burn-down ($s): $N jobs"
        rb burndown "$s" || die "$s burn-down failed"
        ;;
    esac
done
case " $SYSTEMS " in *" celery "*)
    say "Celery burn-down: $CELERY_N tasks"
    rb celery || die "celery burn-down failed"
    ;;
esac
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n1)" ] || GIT_REV="$GIT_REV + local changes"
export QB_STARTED="$STARTED" QB_NOTE="$NOTE" QB_KERNEL="$(uname -r)" QB_CPU="${CPU:-$(uname -m)}" \
    QB_NPROC="$NPROC" QB_MEM_GIB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
    QB_LOAD_START="$LOADAVG_START" QB_LOAD_END="$LOADAVG_END" QB_GIT="$GIT_REV" \
    QB_ZIG="zig $(python3 -m ziglang version 2>&1 | head -n1)" QB_BUILD="$BUILD_CMD" \
    QB_VERSIONS_FILE="$TMP/versions.json" \
    QB_COMMAND="SYSTEMS=\"$SYSTEMS\" N=$N CELERY_N=$CELERY_N THREADS=$THREADS TR_FLAGS=\"$TR_FLAGS\" CELERY_CONCURRENCY=$CELERY_CONCURRENCY sh bench/queue-redis/run.sh"
rb report >"$TMP/section.md" || die "report failed"
cat "$TMP/section.md"
if [ "$RESULTS" = - ]; then
    say "RESULTS=-: not appended"
    exit 0
fi
cat "$TMP/section.md" >>"$RESULTS"
say "appended to $RESULTS"
