#!/bin/sh
# bench/http-jobs/run.sh - Trireme's `http` job kinds against Celery + requests.
#
#   sh bench/http-jobs/run.sh
#
# In one run, on a private PostgreSQL (tools/pg-local.sh) and a private Redis,
# both on loopback, with a test CA and an ECDSA P-256 certificate for
# `localhost` made with openssl for the run:
#   (a) delivery burn-down: N jobs of an `http` kind pre-enqueued, then
#       `trireme run --roles=worker` starts; timed until none is left. The
#       receiver is nginx (`return 200 '{}'`, keep-alive). Plain HTTP and
#       HTTPS, on PostgreSQL and on Redis (BACKENDS), with the default
#       settings and with TUNED_FLAGS / TUNED_KIND_CONC (VARIANTS). The peer:
#       a Celery prefork worker (Redis broker) whose task POSTs the same body
#       with a requests.Session (bench/peers/celery_http.py), default
#       concurrency and -c CELERY_C, CELERY_N tasks, same receiver.
#   (b) enqueue -> delivery latency, one job at a time on an idle queue,
#       Trireme (PostgreSQL, POST /v1/jobs) and Celery, HTTP and HTTPS; the
#       receiver (bench/http-jobs/lat_receiver.py) records the arrival.
#   (c) Trireme's HTTPS listener (--tls-cert/--tls-key) vs nginx with the
#       same certificate on GET /healthz: handshakes/s (wrk, Connection:
#       close) and keep-alive req/s.
# Builds ReleaseFast into a temporary prefix, prints the section and appends
# it to bench/RESULTS.md. Every process it starts is stopped on exit.
#
# Environment knobs (defaults):
#   N=50000             Trireme jobs per burn-down
#   CELERY_N=5000       Celery tasks per burn-down
#   PARTS="a b c"       which parts to run
#   BACKENDS="pg redis" Trireme queue backends in (a)
#   SCHEMES="http https"
#   VARIANTS="default tuned"   Trireme settings in (a)
#   TUNED_FLAGS="--concurrency=1024 --batch-size=500"   worker flags of "tuned"
#   TUNED_KIND_CONC=256 the kind's `concurrency` (connections) in "tuned"
#   CELERY_C="default 8"  Celery concurrencies ("default" = no -c: the CPU count)
#   THREADS=1           trireme --threads (worker in (a) and (b); web and nginx
#                       worker_processes in (c))
#   RECV_WORKERS=1      nginx worker processes of the receiver in (a)
#   LAT_N=500 LAT_WARMUP=20 LAT_GAP_MS=10   latency samples in (b)
#   DURATION=10         seconds of each wrk run in (c)
#   TLS_CONNS=16 KA_CONNS=64 WRK_THREADS=2   wrk in (c)
#   POLL_MS=50 TIMEOUT=600 STALL=30   limits of one burn-down
#   NOTE=               one line printed in bold at the top of the section
#   RESULTS=bench/RESULTS.md ("-" = print only)   KEEP_TMP=0
#   SRC=<repo root>     source tree to build
#   PY=/usr/bin/python3 the Python with Debian's psycopg2, redis, celery, requests
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
N=${N:-50000}
CELERY_N=${CELERY_N:-5000}
PARTS=${PARTS:-a b c}
BACKENDS=${BACKENDS:-pg redis}
SCHEMES=${SCHEMES:-http https}
VARIANTS=${VARIANTS:-default tuned}
TUNED_FLAGS=${TUNED_FLAGS:---concurrency=1024 --batch-size=500}
TUNED_KIND_CONC=${TUNED_KIND_CONC:-256}
CELERY_C=${CELERY_C:-default 8}
THREADS=${THREADS:-1}
RECV_WORKERS=${RECV_WORKERS:-1}
LAT_N=${LAT_N:-500}
LAT_WARMUP=${LAT_WARMUP:-20}
LAT_GAP_MS=${LAT_GAP_MS:-10}
DURATION=${DURATION:-10}
TLS_CONNS=${TLS_CONNS:-16}
KA_CONNS=${KA_CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
POLL_MS=${POLL_MS:-50}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-30}
NOTE=${NOTE:-}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}
SRC=$(cd "${SRC:-$ROOT}" && pwd)
PY=${PY:-/usr/bin/python3}

. "$ROOT/bench/lib.sh"
for v in N CELERY_N TUNED_KIND_CONC THREADS RECV_WORKERS LAT_N DURATION TLS_CONNS KA_CONNS \
    WRK_THREADS POLL_MS TIMEOUT STALL; do
    eval "posint $v \"\$$v\""
done
case $LAT_WARMUP in '' | *[!0-9]*) die "LAT_WARMUP must be a number" ;; esac
case $LAT_GAP_MS in '' | *[!0-9]*) die "LAT_GAP_MS must be a number" ;; esac
for p in $PARTS; do case $p in a | b | c) ;; *) die "PARTS: unknown part '$p' (a, b, c)" ;; esac; done
for b in $BACKENDS; do case $b in pg | redis) ;; *) die "BACKENDS: unknown '$b'" ;; esac; done
for s in $SCHEMES; do case $s in http | https) ;; *) die "SCHEMES: unknown '$s'" ;; esac; done
for s in $VARIANTS; do case $s in default | tuned) ;; *) die "VARIANTS: unknown '$s'" ;; esac; done
for c in $CELERY_C; do [ "$c" = default ] || posint CELERY_C "$c"; done
[ -f "$SRC/build.zig" ] || die "no build.zig in $SRC"
for tool in python3 wrk nginx openssl timeout psql redis-server redis-cli runuser "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (tools/deps.sh bench)"
done
"$PY" -c 'import psycopg2, redis, celery, requests' 2>/dev/null ||
    die "$PY lacks psycopg2/redis/celery/requests: apt-get install python3-psycopg2 python3-celery python3-redis python3-requests"

REDIS_PID= PG_STARTED=0
stop_all() {
    stop "$HPID"
    stop "$REDIS_PID"
    [ "$PG_STARTED" = 1 ] && "$ROOT/tools/pg-local.sh" stop "$PG_DIR" || true
}
bench_begin httpjobs
PG_DIR=$TMP/pg
hj() { bench_helper "$HERE/hjbench.py" "$@"; }

# ---------------------------------------------------------------- build
bench_build

# ---------------------------------------------------------------- certificates
# A test CA and a server certificate for "localhost", both ECDSA P-256.
say "making a test CA and an ECDSA P-256 certificate for localhost"
(
    cd "$TMP"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=trireme bench CA" -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key
    openssl pkcs8 -topk8 -nocrypt -in ec.key -out server.key
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
    printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile server.ext -out server.pem
) >"$TMP/openssl.log" 2>&1 || {
    cat "$TMP/openssl.log" >&2
    die "openssl failed"
}

# ---------------------------------------------------------------- PostgreSQL, Redis
PG_PORT=$("$PY" "$ROOT/bench/queue-pg/qbench.py" freeport)
say "starting PostgreSQL in $PG_DIR on 127.0.0.1:$PG_PORT"
PG_STARTED=1
DATABASE_URL=$("$ROOT/tools/pg-local.sh" start "$PG_DIR" "$PG_PORT" | tail -n1)
case $DATABASE_URL in postgresql://*) ;; *) die "tools/pg-local.sh printed no DATABASE_URL" ;; esac
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
    QB_POLL_MS="$POLL_MS" HJ_N="$N" HJ_CELERY_N="$CELERY_N" HJ_THREADS="$THREADS" \
    HJ_TUNED_FLAGS="$TUNED_FLAGS" HJ_TUNED_KIND_CONC="$TUNED_KIND_CONC" \
    HJ_RECV_WORKERS="$RECV_WORKERS" HJ_CERT="$TMP/server.pem" HJ_KEY="$TMP/server.key" \
    HJ_CA="$TMP/ca.pem" HJ_LAT_N="$LAT_N" HJ_LAT_WARMUP="$LAT_WARMUP" HJ_LAT_GAP_MS="$LAT_GAP_MS" \
    HJ_DURATION="$DURATION" HJ_TLS_CONNS="$TLS_CONNS" HJ_KA_CONNS="$KA_CONNS" \
    HJ_WRK_THREADS="$WRK_THREADS"
: >"$QB_OUT"
hj versions >"$TMP/versions.json" || die "cannot read versions"

if has "$PARTS" a; then
    for scheme in $SCHEMES; do
        for backend in $BACKENDS; do
            for variant in $VARIANTS; do
                say "(a) burn-down: trireme $backend $scheme $variant, $N jobs"
                hj burndown trireme "$backend" "$scheme" "$variant" || die "trireme burn-down failed"
            done
        done
        for c in $CELERY_C; do
            say "(a) burn-down: celery $scheme concurrency $c, $CELERY_N tasks"
            hj burndown celery - "$scheme" "$c" || die "celery burn-down failed"
        done
    done
fi
if has "$PARTS" b; then
    for scheme in $SCHEMES; do
        for s in trireme celery; do
            say "(b) latency: $s $scheme, $LAT_N samples"
            hj latency "$s" "$scheme" || die "latency $s $scheme failed"
        done
    done
fi
if has "$PARTS" c; then
    say "(c) HTTPS listener: trireme vs nginx, ${DURATION}s per wrk run"
    hj tls || die "tls part failed"
fi
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
GIT_REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$SRC" status --porcelain 2>/dev/null | head -n1)" ] || GIT_REV="$GIT_REV + local changes"
knobs=
for v in N CELERY_N PARTS BACKENDS SCHEMES VARIANTS TUNED_FLAGS TUNED_KIND_CONC CELERY_C THREADS \
    RECV_WORKERS LAT_N DURATION TLS_CONNS KA_CONNS; do
    eval "val=\$$v"
    case $val in *' '* | '') val="\"$val\"" ;; esac
    knobs="$knobs$v=$val "
done
export QB_STARTED="$STARTED" QB_NOTE="$NOTE" QB_KERNEL="$(uname -r)" QB_CPU="${CPU:-$(uname -m)}" \
    QB_NPROC="$NPROC" QB_MEM_GIB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
    QB_LOAD_START="$LOADAVG_START" QB_LOAD_END="$LOADAVG_END" QB_GIT="$GIT_REV" \
    QB_ZIG="zig $(python3 -m ziglang version 2>&1 | head -n1)" QB_BUILD="$BUILD_CMD" \
    QB_VERSIONS_FILE="$TMP/versions.json" QB_COMMAND="${knobs}sh bench/http-jobs/run.sh"
hj report >"$TMP/section.md" || die "report failed"
cat "$TMP/section.md"
if [ "$RESULTS" = - ]; then
    say "RESULTS=-: not appended"
    exit 0
fi
cat "$TMP/section.md" >>"$RESULTS"
say "appended to $RESULTS"
