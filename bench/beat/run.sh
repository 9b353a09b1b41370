#!/bin/sh
# bench/beat/run.sh - the beat role's firing lateness and idle cost, against Celery beat.
#
#   sh bench/beat/run.sh
#
# In one run, on a private PostgreSQL (tools/pg-local.sh, fresh directory)
# and a private Redis, both on loopback (bench/beat/beatbench.py does the
# measuring):
#   lateness: N schedules @every 1s for DURATION s (>= 1,000 slots): per slot,
#     job run_at - slot, job created_at - slot (the database clock when the
#     firing transaction began) and "Sending due task" log time (after the
#     commit, ms resolution) - slot; Celery beat (Debian python3-celery, Redis
#     broker, bench/peers/celery_beat_peer.py) with N entries every 1 s:
#     message sent - due. trireme-redis: the same schedules on
#     --queue-backend=redis: job created_at (Redis clock) - slot, and the
#     "Sending due task" log time (after the PostgreSQL record) - slot.
#   idle: IDLE_N daily schedules at seeded random times loaded in one beat
#     process: CPU% from /proc/PID/stat over IDLE_SECONDS, VmRSS; the same for
#     Celery beat with IDLE_N crontab entries.
# Builds ReleaseFast into a temporary prefix (zig-out/ is left alone) and
# appends a dated section to bench/RESULTS.md. Every process it starts is
# stopped on exit.
#
# Environment knobs (defaults): N=100 DURATION=12 IDLE_N=10000 IDLE_SECONDS=30
#   SYSTEMS="trireme trireme-redis celery"  PG_DIR=/tmp/trireme-bench-beat-pg PG_PORT=54341
#   REDIS_PORT=63841  RESULTS=bench/RESULTS.md ("-" = print only)  NOTE=
#   KEEP_TMP=0  PY=/usr/bin/python3 (Debian's psycopg2-free python with celery, redis)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-100}
DURATION=${DURATION:-12}
IDLE_N=${IDLE_N:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-30}
SYSTEMS=${SYSTEMS:-trireme trireme-redis celery}
PG_DIR=${PG_DIR:-/tmp/trireme-bench-beat-pg}
PG_PORT=${PG_PORT:-54341}
REDIS_PORT=${REDIS_PORT:-63841}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
NOTE=${NOTE:-}
KEEP_TMP=${KEEP_TMP:-0}
PY=${PY:-/usr/bin/python3}
MARK=.trireme-bench-beat

SRC=$ROOT
. "$ROOT/bench/lib.sh"
for v in N DURATION IDLE_N IDLE_SECONDS PG_PORT REDIS_PORT; do
    eval "posint $v \"\$$v\""
done
case $PG_DIR in /*) ;; *) die "PG_DIR must be an absolute path" ;; esac
for tool in python3 psql redis-server redis-cli runuser "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
case " $SYSTEMS " in *" celery "*)
    "$PY" -c 'import celery, redis' 2>/dev/null ||
        die "$PY lacks celery/redis: apt-get install python3-celery python3-redis" ;;
esac

PG_STARTED=0 REDIS_STARTED=0
stop_all() {
    stop "$HPID"
    [ "$REDIS_STARTED" = 1 ] && "$ROOT/tools/redis-local.sh" stop "$PG_DIR/redis" || true
    if [ "$PG_STARTED" = 1 ]; then
        "$ROOT/tools/pg-local.sh" stop "$PG_DIR/data" || true
        [ -f "$PG_DIR/$MARK" ] && rm -rf "$PG_DIR"
    fi
}
bench_begin beat
bench_build

if [ -e "$PG_DIR" ] && [ ! -f "$PG_DIR/$MARK" ]; then
    die "$PG_DIR exists and was not made by this script"
fi
[ -f "$PG_DIR/$MARK" ] && { "$ROOT/tools/pg-local.sh" stop "$PG_DIR/data" >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; }
mkdir -p "$PG_DIR"
touch "$PG_DIR/$MARK"
PG_URL=$("$ROOT/tools/pg-local.sh" start "$PG_DIR/data" "$PG_PORT")
PG_STARTED=1
REDIS_URL=$("$ROOT/tools/redis-local.sh" start "$PG_DIR/redis" "$REDIS_PORT")
REDIS_STARTED=1
DATABASE_URL=$PG_URL "$BIN" migrate >/dev/null

say "measuring (about $((DURATION * 3 + IDLE_SECONDS * 2 + 45)) s)"
N=$N DURATION=$DURATION IDLE_N=$IDLE_N IDLE_SECONDS=$IDLE_SECONDS SYSTEMS=$SYSTEMS PY=$PY \
    "$PY" "$HERE/beatbench.py" "$BIN" "$PG_URL" "$REDIS_URL" "$TMP" >"$TMP/result.json" &
HPID=$!
wait "$HPID"
HPID=
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
SECTION=$TMP/section.md
"$PY" - "$TMP/result.json" >"$SECTION" <<EOF
import json, sys
r = json.load(open(sys.argv[1]))
def lat(s): return f"p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms, max {s['max_ms']:.3f} ms over {s['n']:,} slots"
def idle(s): return f"{s['cpu_percent']:.3f}% CPU ({s['cpu_seconds']:.2f} s of CPU in {s['seconds']:.0f} s), RSS {s['rss_kb'] / 1024:.1f} MiB"
print("## Beat: firing lateness and idle cost, against Celery beat (\`bench/beat/run.sh\`)")
print()
print(f"- Date: $STARTED. Machine: $(nproc) cores ($CPU), Linux $(uname -r). The machine is 2 cores "
      "shared with the load generator and the databases, and other work may have been running "
      "(load average $LOADAVG_START at start, $LOADAVG_END at end).")
note = """$NOTE"""
if note: print(f"- **{note}**")
print(f"- Command: \`sh bench/beat/run.sh\` (N={r['N']} DURATION={r['DURATION']} IDLE_N={r['IDLE_N']} "
      f"IDLE_SECONDS={r['IDLE_SECONDS']}); build: \`$BUILD_CMD\`; PostgreSQL 15 and Redis 7 private, loopback.")
print()
if 'trireme_lateness' in r:
    t = r['trireme_lateness']
    print(f"- Trireme beat, {r['N']} schedules \`@every 1s\` for {r['DURATION']} s ({t['slots_expected']:,} slots due):")
    print(f"  - job run_at - slot: {lat(t['run_at'])}")
    print(f"  - job created_at - slot (database clock at the start of the firing transaction): {lat(t['created_at'])}")
    print(f"  - \"Sending due task\" log line (after the commit, 1 ms resolution) - slot: {lat(t['committed_log'])}")
if 'trireme_redis_lateness' in r:
    t = r['trireme_redis_lateness']
    print(f"- Trireme beat on \`--queue-backend=redis\`, the same {r['N']} schedules for {r['DURATION']} s ({t['slots_expected']:,} slots due):")
    print(f"  - job created_at (Redis clock, 1 ms resolution, in the enqueue script) - slot: {lat(t['created_at'])}")
    print(f"  - \"Sending due task\" log line (after the PostgreSQL record, 1 ms resolution) - slot: {lat(t['committed_log'])}")
if 'celery_lateness' in r:
    c = r['celery_lateness']
    print(f"- Celery beat 5 (Debian python3-celery, Redis broker), {r['N']} entries \`schedule: 1.0\`, "
          f"{r['DURATION']} s: message on the broker - due time: {lat(c['sent'])}; "
          f"{c['sends_in_window']:,} sends for {c['slots_expected']:,} seconds x entries. Celery's due time is its "
          "last send + 1 s (interval schedules are not anchored), so its lateness does not accumulate here "
          "but its slots drift by it.")
if 'trireme_idle' in r:
    t = r['trireme_idle']
    print(f"- Idle, {r['IDLE_N']:,} daily schedules at random times of day loaded: Trireme beat {idle(t)} "
          f"({t['fired_during']} slots fell due and fired during the window).")
if 'celery_idle' in r:
    print(f"- Idle, {r['IDLE_N']:,} crontab entries at random times of day: Celery beat {idle(r['celery_idle'])}.")
print("- Targets: p99 lateness <= 10 ms; 10,000 schedules idle CPU < 1%.")
print()
EOF
cat "$SECTION"
if [ "$RESULTS" != "-" ]; then
    { echo; cat "$SECTION"; } >>"$RESULTS"
    say "appended to $RESULTS"
fi
