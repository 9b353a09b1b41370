#!/bin/sh
# bench/soak/run.sh - 30 minutes of mixed load with PostgreSQL restarts:
# RSS, descriptors, table size and latency sampled each minute.
#
#   sh bench/soak/run.sh                     # MINUTES=30 RESTART_EVERY=300 RATE=200
#   MINUTES=5 RESTART_EVERY=60 sh bench/soak/run.sh
#
# Builds ReleaseFast into a temporary prefix (zig-out/ is left alone), starts
# a private PostgreSQL (tools/pg-local.sh, fresh directory), runs
# bench/soak/soak.py (see its header: the load, the sampling, the end
# checks: no job lost, each sql effect once) and appends a dated section to
# bench/RESULTS.md. The target is flat lines: RSS, descriptors and the jobs
# table bounded (retention deletes succeeded jobs after a third of the run),
# latency back to its level after each restart. Exit 1 if a check fails.
#
# Environment knobs (defaults): MINUTES=30 RESTART_EVERY=300 SAMPLE_EVERY=60
#   RATE=200 PG_DIR=/tmp/trireme-bench-soak-pg PG_PORT=54351
#   RESULTS=bench/RESULTS.md ("-" = print only) NOTE=
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MINUTES=${MINUTES:-30}
RESTART_EVERY=${RESTART_EVERY:-300}
SAMPLE_EVERY=${SAMPLE_EVERY:-60}
RATE=${RATE:-200}
PG_DIR=${PG_DIR:-/tmp/trireme-bench-soak-pg}
PG_PORT=${PG_PORT:-54351}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
NOTE=${NOTE:-}

say() { printf '%s\n' "run.sh: $*" >&2; }
for v in RESTART_EVERY SAMPLE_EVERY PG_PORT; do
    eval "x=\$$v"
    case $x in '' | *[!0-9]* | 0) say "$v must be a positive integer"; exit 2 ;; esac
done
case $PG_DIR in /*) ;; *) say "PG_DIR must be an absolute path"; exit 2 ;; esac

TMP=$(mktemp -d /tmp/trireme-soak.XXXXXX)
chmod 755 "$TMP"
cleanup() {
    "$ROOT/tools/pg-local.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
    rm -rf "$TMP" "$PG_DIR"
}
trap cleanup EXIT INT TERM

say "building ReleaseFast"
# The revision built, not whatever HEAD is when a long run ends.
REV=$(git -C "$ROOT" rev-parse --short HEAD)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then REV="$REV+changes"; fi
(cd "$ROOT" && python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline --prefix "$TMP/out" >/dev/null)
rm -rf "$PG_DIR"
URL=$("$ROOT/tools/pg-local.sh" start "$PG_DIR" "$PG_PORT")

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
CMD="MINUTES=$MINUTES RESTART_EVERY=$RESTART_EVERY SAMPLE_EVERY=$SAMPLE_EVERY RATE=$RATE sh bench/soak/run.sh"
rc=0
python3 "$HERE/soak.py" --binary "$TMP/out/bin/trireme" --database-url "$URL" --pg-dir "$PG_DIR" \
    --minutes "$MINUTES" --restart-every "$RESTART_EVERY" --sample-every "$SAMPLE_EVERY" \
    --rate "$RATE" --markdown "$TMP/table.md" || rc=$?
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
[ -s "$TMP/table.md" ] || { say "soak.py wrote no table (exit $rc)"; exit 1; }

{
    printf '\n## Soak: %s minutes of mixed load, PostgreSQL restarted every %s s (%s)\n\n' \
        "$MINUTES" "$RESTART_EVERY" "$(date -u +%Y-%m-%dT%H:%MZ)"
    printf -- '- machine: %s, %s cores, %s; %s\n' "$(uname -m)" "$(nproc)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(uname -r)"
    printf -- '- trireme %s (ReleaseFast, baseline CPU), PostgreSQL %s\n' \
        "$REV" "$(psql "$URL" -XAtc 'SHOW server_version')"
    printf -- '- command: `%s`\n' "$CMD"
    printf -- '- load average at start %s, at end %s%s\n\n' "$LOADAVG_START" "$LOADAVG_END" \
        "${NOTE:+; $NOTE}"
    cat "$TMP/table.md"
} >"$TMP/section.md"
cat "$TMP/section.md"
if [ "$RESULTS" != - ]; then
    cat "$TMP/section.md" >>"$RESULTS"
    say "appended to $RESULTS"
fi
exit "$rc"
