#!/bin/sh
# bench/compare.sh - the same benchmarks on two git revisions, one right
# after the other, on this machine: a before/after table.
#
#   sh bench/compare.sh 45ace46                 45ace46 against HEAD
#   sh bench/compare.sh 45ace46 my-branch       any two revisions
#   sh bench/compare.sh --write 45ace46         also append the section to bench/RESULTS.md
#
# What one run does:
#   1. `git archive`s each revision into its own directory under a temporary
#      directory (the caller's working tree, index and refs are not touched;
#      uncommitted changes are not measured: commit first), copies this
#      checkout's harness (bench/http, bench/queue-pg, bench/queue-redis,
#      bench/peers, bench/lib.sh) over each, so both revisions are measured
#      by the same scripts, and builds each with
#      `zig build -Doptimize=ReleaseFast -Dcpu=baseline` (the benchmarks'
#      own builds then come from that cache).
#   2. For each benchmark in BENCHES, runs it on the base revision and then at
#      once on the new one (ROUNDS > 1 alternates the order: base new, new
#      base, ...), each script from its revision's directory, printing only:
#        pg     bench/queue-pg/run.sh, part (a): burn-down of PG_N noop jobs,
#               Trireme only (PARTS=a SYSTEMS=trireme)
#        redis  bench/queue-redis/run.sh: burn-down of REDIS_N noop jobs on
#               --queue-backend=redis, Trireme only (SYSTEMS=trireme)
#        http   bench/http/run.sh: GET /healthz at HTTP_CONNS connections,
#               Trireme and nginx (nginx is the control: a change in its
#               numbers between the two runs is the machine, not the code),
#               memory idle and with HOLD_CONNS idle connections
#   3. Prints a before/after table. With --write it also appends a dated
#      section (machine, revisions, command, the table, and every script's
#      own section) to bench/RESULTS.md.
#
# With the defaults below a run took 7 min 50 s on a 2-CPU machine that
# other work kept busy (load average 5-11): two cold builds of about 1.5 min
# each, then about 2.5 min of benchmarks per revision (all three).
# ROUNDS=2 adds those 5 minutes again: about 13 minutes.
#
# Environment knobs (defaults):
#   BENCHES="pg redis http"   which benchmarks, in this order
#   ROUNDS=1                  runs per revision and benchmark
#   PG_N=200000               jobs of the PostgreSQL burn-down
#   REDIS_N=200000            jobs of the Redis burn-down (a multiple of 1000)
#   HTTP_DURATION=10s HTTP_WARMUP=2s HTTP_CONNS="64 1024"   wrk runs
#   HOLD_CONNS=10000          idle connections for http's memory test (0 = skip)
#   THREADS=<nproc>           trireme --threads for pg and http (redis keeps its 1)
#   NOTE=                     one line in bold at the top of the section
#   RESULTS=bench/RESULTS.md  where --write appends
#   KEEP_TMP=0                1 = keep the temporary directory (trees, logs, raw results)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
BENCHES=${BENCHES:-pg redis http}
ROUNDS=${ROUNDS:-1}
PG_N=${PG_N:-200000}
REDIS_N=${REDIS_N:-200000}
HTTP_DURATION=${HTTP_DURATION:-10s}
HTTP_WARMUP=${HTTP_WARMUP:-2s}
HTTP_CONNS=${HTTP_CONNS:-64 1024}
HOLD_CONNS=${HOLD_CONNS:-10000}
THREADS=${THREADS:-$NPROC}
NOTE=${NOTE:-}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}

say() { printf '%s\n' "compare.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

WRITE=0
while [ $# -gt 0 ]; do
    case $1 in
    --write) WRITE=1 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
BASE_REF=$1
NEW_REF=${2:-HEAD}

for v in ROUNDS PG_N REDIS_N THREADS; do
    eval "val=\$$v"
    case $val in '' | *[!0-9]* | 0) die "$v must be a positive integer" ;; esac
done
case $HOLD_CONNS in '' | *[!0-9]*) die "HOLD_CONNS must be a number" ;; esac
[ $((REDIS_N % 1000)) -eq 0 ] || die "REDIS_N must be a multiple of 1000"
for b in $BENCHES; do case $b in pg | redis | http) ;; *) die "BENCHES: unknown '$b' (pg, redis, http)" ;; esac; done
command -v git >/dev/null || die "git not found"
BASE_SHA=$(git -C "$ROOT" rev-parse --verify --quiet "$BASE_REF^{commit}") || die "no revision $BASE_REF"
NEW_SHA=$(git -C "$ROOT" rev-parse --verify --quiet "$NEW_REF^{commit}") || die "no revision $NEW_REF"
BASE_SHORT=$(git -C "$ROOT" rev-parse --short "$BASE_SHA")
NEW_SHORT=$(git -C "$ROOT" rev-parse --short "$NEW_SHA")
[ "$NEW_REF" != HEAD ] || [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no | head -n1)" ] ||
    say "note: the working tree has uncommitted changes; they are not measured (HEAD is)"

WORK=$(mktemp -d /tmp/trireme-compare.XXXXXX)
chmod 755 "$WORK" # PostgreSQL (user postgres) lives under it
BPID=
cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
        kill -TERM "$BPID" 2>/dev/null || true # each script stops what it started
        wait "$BPID" 2>/dev/null || true
    fi
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        say "temporary files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

T0=$(date +%s)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- trees and builds
# $1 = label (base, new), $2 = commit.
prepare() {
    t=$WORK/$1
    mkdir -p "$t"
    git -C "$ROOT" archive --format=tar "$2" | tar -x -C "$t"
    for d in http queue-pg queue-redis peers; do
        rm -rf "${t:?}/bench/$d"
        cp -R "$ROOT/bench/$d" "$t/bench/$d"
    done
    cp "$ROOT/bench/lib.sh" "$t/bench/lib.sh"
    say "building $1 ($(git -C "$ROOT" log -1 --format='%h %s' "$2" | cut -c1-70))"
    s=$(date +%s)
    (cd "$t" && timeout 900 python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline \
        --prefix "$t/zig-out") >"$WORK/build-$1.log" 2>&1 || {
        tail -n 40 "$WORK/build-$1.log" >&2
        die "build of $1 ($2) failed"
    }
    echo "$1 $(($(date +%s) - s))" >>"$WORK/build-times"
}
prepare base "$BASE_SHA"
prepare new "$NEW_SHA"

# ---------------------------------------------------------------- runs
mkdir -p "$WORK/raw"
# $1 = bench, $2 = label, $3 = round. Runs the script in the background (so
# a signal reaches it), keeps its temporary directory, copies what the
# table needs into $WORK/raw and removes the rest.
run_one() {
    b=$1 label=$2 round=$3
    t=$WORK/$label
    log=$WORK/raw/$b-$label-$round.log
    say "$b on $label (round $round)"
    s=$(date +%s)
    case $b in
    pg)
        pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        (cd "$t" && PARTS=a SYSTEMS=trireme N=$PG_N THREADS=$THREADS RESULTS=- KEEP_TMP=1 \
            PG_DIR=$WORK/pg-$label-$round PG_PORT=$pgport exec sh bench/queue-pg/run.sh) >"$log" 2>&1 &
        ;;
    redis)
        (cd "$t" && SYSTEMS=trireme N=$REDIS_N RESULTS=- KEEP_TMP=1 \
            exec sh bench/queue-redis/run.sh) >"$log" 2>&1 &
        ;;
    http)
        (cd "$t" && THREADS=$THREADS DURATION=$HTTP_DURATION WARMUP=$HTTP_WARMUP CONNS=$HTTP_CONNS \
            HOLD_CONNS=$HOLD_CONNS RESULTS=$WORK/raw/http-$label-$round.appended KEEP_TMP=1 \
            exec sh bench/http/run.sh) >"$log" 2>&1 &
        ;;
    esac
    BPID=$!
    brc=0
    wait "$BPID" || brc=$?
    BPID=
    btmp=$(sed -n 's/^run\.sh: temporary files kept in \(\/tmp\/trireme-bench-[A-Za-z0-9.-]*\)$/\1/p' "$log" | tail -n1)
    if [ $brc -ne 0 ]; then
        tail -n 30 "$log" >&2
        die "$b on $label failed (exit $brc); log: $log${btmp:+, files: $btmp}"
    fi
    [ -n "$btmp" ] && [ -d "$btmp" ] || die "$b on $label: cannot find the script's temporary directory in $log"
    out=$WORK/raw/$b-$label-$round
    case $b in
    pg | redis) grep '"test": "burndown"' "$btmp/results.jsonl" >"$out.json" || die "$b: no burn-down record" ;;
    http) cp "$btmp/rows" "$out.rows" ;;
    esac
    cp "$btmp/section.md" "$out.md"
    rm -rf "$btmp"
    echo "$b $label $round $(($(date +%s) - s))" >>"$WORK/run-times"
}

r=1
while [ $r -le "$ROUNDS" ]; do
    for b in $BENCHES; do
        if [ $((r % 2)) -eq 1 ]; then
            run_one "$b" base "$r"
            run_one "$b" new "$r"
        else
            run_one "$b" new "$r"
            run_one "$b" base "$r"
        fi
    done
    r=$((r + 1))
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
knobs="BENCHES=\"$BENCHES\" ROUNDS=$ROUNDS"
case " $BENCHES " in *" pg "*) knobs="$knobs PG_N=$PG_N" ;; esac
case " $BENCHES " in *" redis "*) knobs="$knobs REDIS_N=$REDIS_N" ;; esac
case " $BENCHES " in *" http "*)
    knobs="$knobs HTTP_DURATION=$HTTP_DURATION HTTP_WARMUP=$HTTP_WARMUP HTTP_CONNS=\"$HTTP_CONNS\" HOLD_CONNS=$HOLD_CONNS"
    ;;
esac
knobs="$knobs THREADS=$THREADS"
export CMP_WORK="$WORK" CMP_BENCHES="$BENCHES" CMP_ROUNDS="$ROUNDS" CMP_STARTED="$STARTED" CMP_NOTE="$NOTE" \
    CMP_MACHINE="Linux $(uname -r), ${CPU:-$(uname -m)}, $NPROC CPUs (nproc), $(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo) GiB RAM" \
    CMP_LOAD="load average $LOADAVG_START at start, $LOADAVG_END at end" \
    CMP_BASE="$BASE_SHORT $(git -C "$ROOT" log -1 --format=%s "$BASE_SHA")" \
    CMP_NEW="$NEW_SHORT $(git -C "$ROOT" log -1 --format=%s "$NEW_SHA")" \
    CMP_BASE_SHORT="$BASE_SHORT" CMP_NEW_SHORT="$NEW_SHORT" \
    CMP_COMMAND="$knobs sh bench/compare.sh $BASE_REF${2:+ $NEW_REF}" \
    CMP_ZIG="$(python3 -m ziglang version 2>&1 | head -n1)" CMP_MINUTES="$(($(date +%s) - T0))" \
    CMP_PG_N="$PG_N" CMP_REDIS_N="$REDIS_N" CMP_HOLD="$HOLD_CONNS"
python3 - >"$WORK/section.md" <<'PY'
import json, os, statistics

E = os.environ
W = E["CMP_WORK"]
rounds = int(E["CMP_ROUNDS"])
benches = E["CMP_BENCHES"].split()


def runs(bench, label, ext):
    return [os.path.join(W, "raw", "%s-%s-%d.%s" % (bench, label, r, ext)) for r in range(1, rounds + 1)]


def rec(path):
    with open(path) as f:
        return json.loads(f.readline())


def http_rows(path):
    rows = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 6:
                rows[(p[0], p[1])] = {"rps": float(p[2]), "p50": float(p[3]), "p99": float(p[4]), "errors": p[5]}
    return rows


def http_mem(path):
    """Trireme's RSS cells of the memory table: idle, idle threads=1, after load, held."""
    with open(path) as f:
        for line in f:
            if line.startswith("| trireme |") and "MiB" in line:
                cells = [c.strip() for c in line.strip().strip("|").split("|")[1:]]
                return [float(c.split()[0]) if c.split() and c.split()[0][0].isdigit() else None for c in cells]
    return [None] * 4


lines = []  # (bench, metric, base values, new values, higher is better)


def add(bench, metric, base, new, higher=True, fmt="{:,.0f}"):
    lines.append((bench, metric, base, new, higher, fmt))


def cpu_us(r, key):
    return r[key] * 1e6 / r["n"] if r.get(key) is not None and r.get("n") else None


for b in benches:
    if b in ("pg", "redis"):
        base = [rec(p) for p in runs(b, "base", "json")]
        new = [rec(p) for p in runs(b, "new", "json")]
        col = lambda rs, f: [f(r) for r in rs]  # noqa: E731
        if b == "pg":
            name = "queue-pg (a), %s jobs" % "{:,}".format(int(E["CMP_PG_N"]))
            add(name, "jobs/s (start-up included)", col(base, lambda r: r.get("jobs_per_s")), col(new, lambda r: r.get("jobs_per_s")))
            add(name, "busy jobs/s (first start to last finish)", col(base, lambda r: r.get("busy_jobs_per_s")),
                col(new, lambda r: r.get("busy_jobs_per_s")))
            add(name, "worker CPU per job", col(base, lambda r: cpu_us(r, "worker_cpu_s")),
                col(new, lambda r: cpu_us(r, "worker_cpu_s")), False, "{:.2f} us")
            add(name, "PostgreSQL CPU per job", col(base, lambda r: cpu_us(r, "pg_cpu_s")),
                col(new, lambda r: cpu_us(r, "pg_cpu_s")), False, "{:.2f} us")
        else:
            name = "queue-redis, %s jobs" % "{:,}".format(int(E["CMP_REDIS_N"]))
            add(name, "drain jobs/s", col(base, lambda r: r.get("jobs_per_s")), col(new, lambda r: r.get("jobs_per_s")))
            add(name, "enqueue jobs/s (POST /v1/jobs, batches)", col(base, lambda r: r.get("enqueue_per_s")),
                col(new, lambda r: r.get("enqueue_per_s")))
            add(name, "worker CPU per job", col(base, lambda r: cpu_us(r, "worker_cpu_s")),
                col(new, lambda r: cpu_us(r, "worker_cpu_s")), False, "{:.2f} us")
            add(name, "Redis CPU per job", col(base, lambda r: cpu_us(r, "redis_cpu_s")),
                col(new, lambda r: cpu_us(r, "redis_cpu_s")), False, "{:.2f} us")
            add(name, "worker RSS idle", col(base, lambda r: r.get("rss_idle_kib", 0) / 1024),
                col(new, lambda r: r.get("rss_idle_kib", 0) / 1024), False, "{:.1f} MiB")
            add(name, "worker RSS after the drain", col(base, lambda r: r.get("rss_after_kib", 0) / 1024),
                col(new, lambda r: r.get("rss_after_kib", 0) / 1024), False, "{:.1f} MiB")
        for label, rs in (("base", base), ("new", new)):
            for r in rs:
                if not r.get("ok"):
                    lines.append((name, "**%s run failed: %s**" % (label, r.get("error")), [], [], True, ""))
    else:
        base = [http_rows(p) for p in runs(b, "base", "rows")]
        new = [http_rows(p) for p in runs(b, "new", "rows")]
        conns = sorted({k[1] for rs in base for k in rs}, key=int)
        for c in conns:
            name = "http GET /healthz, %s conns" % c
            g = lambda rs, srv, key: [r.get((srv, c), {}).get(key) for r in rs]  # noqa: E731
            add(name, "trireme req/s", g(base, "trireme", "rps"), g(new, "trireme", "rps"))
            add(name, "trireme p50", g(base, "trireme", "p50"), g(new, "trireme", "p50"), False, "{:.3f} ms")
            add(name, "trireme p99", g(base, "trireme", "p99"), g(new, "trireme", "p99"), False, "{:.3f} ms")
            add(name, "nginx req/s (control)", g(base, "nginx", "rps"), g(new, "nginx", "rps"))
            for label, rs in (("base", base), ("new", new)):
                for r in rs:
                    e = r.get(("trireme", c), {}).get("errors", "0")
                    if e != "0":
                        lines.append((name, "**%s: trireme errors %s**" % (label, e), [], [], True, ""))
        mb = [http_mem(p) for p in runs(b, "base", "md")]
        mn = [http_mem(p) for p in runs(b, "new", "md")]
        name = "http memory (trireme RSS)"
        for i, what in ((0, "idle"), (2, "after load"), (3, "with %s idle keep-alive conns" % E["CMP_HOLD"])):
            add(name, what, [m[i] for m in mb], [m[i] for m in mn], False, "{:.1f} MiB")


def show(vals, fmt):
    vs = [v for v in vals if v is not None]
    if not vs:
        return "n/a"
    return " / ".join(fmt.format(v) for v in vs)


def change(base, new, higher):
    b = [v for v in base if v is not None]
    n = [v for v in new if v is not None]
    if not b or not n or statistics.mean(b) == 0:
        return ""
    d = 100.0 * (statistics.mean(n) - statistics.mean(b)) / statistics.mean(b)
    worse = d < 0 if higher else d > 0
    return "%+.1f%%%s" % (d, " (worse)" if worse and abs(d) >= 0.05 else "")


print("## %s - bench/compare.sh: %s against %s" % (E["CMP_STARTED"], E["CMP_NEW_SHORT"], E["CMP_BASE_SHORT"]))
print()
if E.get("CMP_NOTE"):
    print("**%s**" % E["CMP_NOTE"])
    print()
print("- Machine: %s; %s" % (E["CMP_MACHINE"], E["CMP_LOAD"]))
print("- Base: `%s`" % E["CMP_BASE"])
print("- New: `%s`" % E["CMP_NEW"])
print("- Command: `%s` (zig %s; took %d min %02d s)" % (E["CMP_COMMAND"], E["CMP_ZIG"],
                                                       int(E["CMP_MINUTES"]) // 60, int(E["CMP_MINUTES"]) % 60))
print("  - each revision: `git archive` into a temporary directory, this checkout's bench/ harness copied over it,"
      " built with `python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline`; each benchmark run on the base"
      " revision, then at once on the new one%s" % (" (later rounds alternate the order)" if rounds > 1 else ""))
scripts = {"pg": "pg: `PARTS=a SYSTEMS=trireme N=%s sh bench/queue-pg/run.sh`" % E["CMP_PG_N"],
           "redis": "redis: `SYSTEMS=trireme N=%s sh bench/queue-redis/run.sh`" % E["CMP_REDIS_N"],
           "http": "http: `sh bench/http/run.sh` with the HTTP knobs above (Trireme and nginx)"}
print("  - " + "; ".join(scripts[b] for b in benches))
print()
print("| benchmark | metric | base %s | new %s | change |" % (E["CMP_BASE_SHORT"], E["CMP_NEW_SHORT"]))
print("|---|---|---:|---:|---:|")
last = None
for bench, metric, b, n, higher, fmt in lines:
    print("| %s | %s | %s | %s | %s |" % (bench if bench != last else "", metric,
                                          show(b, fmt) if fmt else "", show(n, fmt) if fmt else "",
                                          change(b, n, higher) if fmt else ""))
    last = bench
print()
print("Rounds are listed in run order, separated by /; change compares the means. \"(worse)\" marks the"
      " direction, not significance%s." % (": nginx's row is the machine's own drift between the two runs"
                                           if "http" in benches else ""))
print()
PY
cat "$WORK/section.md"
if [ "$WRITE" = 1 ]; then
    {
        cat "$WORK/section.md"
        echo "The scripts' own sections, in run order:"
        echo
        for f in $(ls -tr "$WORK"/raw/*.md); do
            n=$(basename "$f" .md)
            echo "<details><summary>$n</summary>"
            echo
            sed 's/^## /#### /' "$f"
            echo "</details>"
            echo
        done
    } >>"$RESULTS"
    say "appended to $RESULTS"
fi
say "done in $(($(date +%s) - T0)) s (builds: $(tr '\n' ' ' <"$WORK/build-times"))"
