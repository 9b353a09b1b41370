#!/bin/sh
# bench/http/run.sh - Trireme's web role against nginx on GET /healthz.
#
#   sh bench/http/run.sh
#
# In one run: builds ReleaseFast (-Dcpu=baseline) into a private temporary
# prefix (the dev build in zig-out/ is left alone), starts Trireme and nginx
# with the same number of threads / worker processes on free loopback ports,
# serves the same JSON body from both, measures throughput and latency with
# wrk (alternating servers so drift hits both), and memory (idle, idle with
# one thread, after the load, with 10,000 idle keep-alive connections held by
# hold_conns.py). Prints the results and appends them as a dated section to
# bench/RESULTS.md. Every process it starts is stopped on exit.
#
# Environment knobs (defaults):
#   THREADS=<nproc>   Trireme --threads and nginx worker_processes
#   DURATION=10s      each measured wrk run (wrk syntax: 10s, 1m)
#   WARMUP=2s         a wrk run before each measured one, same connections; 0 = none
#   CONNS="64 1024"   connection counts, in this order
#   WRK_THREADS=2     wrk -t
#   HOLD_CONNS=10000  idle keep-alive connections for the memory test; 0 = skip
#   RESULTS=bench/RESULTS.md   file the section is appended to
#   KEEP_TMP=0        1 = keep the temporary directory (build, logs, wrk output)
#   SRC=<repo root>   source tree to build (e.g. a `git archive` snapshot when
#                     the working tree is mid-edit); its zig cache is used
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
THREADS=${THREADS:-$NPROC}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-64 1024}
WRK_THREADS=${WRK_THREADS:-2}
HOLD_CONNS=${HOLD_CONNS:-10000}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-0}
SRC=$(cd "${SRC:-$ROOT}" && pwd)
[ -f "$SRC/build.zig" ] || { echo "run.sh: no build.zig in $SRC" >&2; exit 1; }

lib() { python3 "$HERE/benchlib.py" "$@"; }
say() { printf '%s\n' "run.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# wrk duration ("10s", "2m", "1h", "5") -> whole seconds, for timeouts.
secs() {
    case $1 in
    *[!0-9smh]* | '' | [smh]*) die "bad duration '$1' (use e.g. 10s, 1m)" ;;
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
    esac
}
case $THREADS in '' | *[!0-9]* | 0) die "THREADS must be a positive integer" ;; esac
case $WRK_THREADS in '' | *[!0-9]* | 0) die "WRK_THREADS must be a positive integer" ;; esac
case $HOLD_CONNS in '' | *[!0-9]*) die "HOLD_CONNS must be a number" ;; esac
for c in $CONNS; do
    case $c in '' | *[!0-9]* | 0) die "CONNS must be positive integers" ;; esac
    [ "$c" -ge "$WRK_THREADS" ] || die "each of CONNS must be >= WRK_THREADS"
done
DUR_S=$(secs "$DURATION")
WARM_S=$(secs "$WARMUP")
[ "$DUR_S" -gt 0 ] || die "DURATION must be > 0"

for tool in python3 wrk nginx timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

# wrk at 1024 connections and the held connections need descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576

TMP=$(mktemp -d /tmp/trireme-bench-http.XXXXXX)
OUT=$TMP/prefix
TR_PID= NG_PID= HOLD_PID= TR1_PID= NG1_PID= WRK_PID=

alive() {
    [ -n "$1" ] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Stop a process we started (and, for nginx, its workers): SIGTERM, up to 5 s,
# then SIGKILL whatever of its tree is left.
stop() {
    [ -n "$1" ] || return 0
    if alive "$1"; then
        tree=$(lib pids "$1" 2>/dev/null || echo "$1")
        kill -TERM "$1" 2>/dev/null || true
        i=0
        while alive "$1" && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        for p in $tree; do
            if alive "$p"; then
                say "process $p did not stop in 5 s: SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
            fi
        done
    fi
    wait "$1" 2>/dev/null || true
}

cleanup() {
    rc=$?
    trap - EXIT
    trap "" INT TERM HUP # let the clean-up finish (each stop is bounded)
    exec 3>&-
    for p in "$WRK_PID" "$HOLD_PID" "$TR1_PID" "$NG1_PID" "$TR_PID" "$NG_PID"; do
        stop "$p"
    done
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        say "temporary files kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- build
BUILD_CMD="python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline --prefix $OUT"
say "building $SRC: $BUILD_CMD"
(cd "$SRC" && timeout 900 python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline \
    --prefix "$OUT") >"$TMP/build.log" 2>&1 || {
    cat "$TMP/build.log" >&2
    die "build failed"
}
BIN=$OUT/bin/trireme
[ -x "$BIN" ] || die "no $BIN after the build"

# ---------------------------------------------------------------- servers
# Sets PORT_OUT and PID_OUT. $1 = threads, $2 = log name.
start_trireme() {
    PORT_OUT=$(lib freeport)
    "$BIN" run --host=127.0.0.1 --port="$PORT_OUT" --threads="$1" --access-log=false \
        --roles=web >"$TMP/$2.log" 2>&1 &
    PID_OUT=$!
    lib waitlisten "$PORT_OUT" "$1" 15 || {
        cat "$TMP/$2.log" >&2
        die "trireme did not start"
    }
}

# Writes an nginx prefix directory and starts nginx in the foreground.
# $1 = worker processes, $2 = directory name, $3 = body. Sets PORT_OUT, PID_OUT.
start_nginx() {
    d=$TMP/$2
    mkdir -p "$d/tmp"
    PORT_OUT=$(lib freeport)
    user_line="# not root: workers run as the current user"
    [ "$(id -u)" = 0 ] && user_line="user root;"
    cat >"$d/nginx.conf" <<EOF
# generated by bench/http/run.sh
$user_line
worker_processes $1;
worker_rlimit_nofile $NOFILE;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 20000;
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT_OUT reuseport backlog=4096;
        location = /healthz {
            default_type application/json;
            return 200 '$3';
        }
    }
}
EOF
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
    PID_OUT=$!
    lib waitlisten "$PORT_OUT" "$1" 15 || {
        cat "$d/error.log" "$d/stdout.log" >&2 2>/dev/null || true
        die "nginx did not start"
    }
}

# "RSS_KIB PSS_KIB NPROCS" of a process and its children.
mem() { lib mem "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
settle() { sleep 1; }

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

say "starting trireme --threads=$THREADS"
start_trireme "$THREADS" trireme
TR_PID=$PID_OUT TR_PORT=$PORT_OUT
settle
set -- $(mem "$TR_PID")
TR_IDLE_RSS=$1 TR_IDLE_PSS=$2

say "starting trireme --threads=1 (idle memory only)"
start_trireme 1 trireme1
TR1_PID=$PID_OUT
settle
set -- $(mem "$TR1_PID")
TR1_IDLE_RSS=$1 TR1_IDLE_PSS=$2
stop "$TR1_PID"
TR1_PID=

# Trireme's own answer is the body nginx serves.
lib get "$TR_PORT" /healthz 10 >"$TMP/trireme.get" || die "GET /healthz on trireme failed"
TR_CTYPE=$(sed -n 1p "$TMP/trireme.get")
BODY=$(sed -n 2p "$TMP/trireme.get")
TR_WIRE=$(sed -n 3p "$TMP/trireme.get")
case $BODY in
*"'"* | *'\'* | *'$'*) die "body has a character nginx's return would need escaped: $BODY" ;;
'') die "empty /healthz body" ;;
esac

say "starting nginx worker_processes=$THREADS"
start_nginx "$THREADS" nginx "$BODY"
NG_PID=$PID_OUT NG_PORT=$PORT_OUT
settle
set -- $(mem "$NG_PID")
NG_IDLE_RSS=$1 NG_IDLE_PSS=$2 NG_PROCS=$3

say "starting nginx worker_processes=1 (idle memory only)"
start_nginx 1 nginx1 "$BODY"
NG1_PID=$PID_OUT
settle
set -- $(mem "$NG1_PID")
NG1_IDLE_RSS=$1 NG1_IDLE_PSS=$2
stop "$NG1_PID"
NG1_PID=

lib get "$NG_PORT" /healthz 10 >"$TMP/nginx.get" || die "GET /healthz on nginx failed"
NG_CTYPE=$(sed -n 1p "$TMP/nginx.get")
NG_BODY=$(sed -n 2p "$TMP/nginx.get")
NG_WIRE=$(sed -n 3p "$TMP/nginx.get")
# Equal but for the uptime digits.
strip_uptime() { printf '%s' "$1" | sed 's/"uptime_seconds":[0-9]*/"uptime_seconds":N/'; }
[ "$(strip_uptime "$BODY")" = "$(strip_uptime "$NG_BODY")" ] ||
    die "bodies differ: trireme '$BODY', nginx '$NG_BODY'"
[ "$TR_CTYPE" = "$NG_CTYPE" ] || die "Content-Type differs: trireme '$TR_CTYPE', nginx '$NG_CTYPE'"

# ---------------------------------------------------------------- load
# wrk output -> "REQ_PER_S P50_MS P99_MS ERRORS" (ERRORS has no spaces).
parse_wrk() {
    awk '
    function ms(v) {
        if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
        if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
        if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
        if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
        return v + 0
    }
    /Latency Distribution/ { dist = 1; next }
    dist && $1 == "50%" { p50 = ms($2) }
    dist && $1 == "99%" { p99 = ms($2); dist = 0 }
    /Socket errors:/ {
        gsub(",", ""); conn = $4; rd = $6; wr = $8; to = $10
    }
    /Non-2xx or 3xx responses:/ { non2xx = $5 }
    /^Requests\/sec:/ { rps = $2 }
    END {
        if (rps == "" || p99 == "") { print "parse-error"; exit 1 }
        e = ""
        if (conn + 0) e = e "connect:" conn ","
        if (rd + 0) e = e "read:" rd ","
        if (wr + 0) e = e "write:" wr ","
        if (to + 0) e = e "timeout:" to ","
        if (non2xx + 0) e = e "non-2xx:" non2xx ","
        if (e == "") e = "0"; else e = substr(e, 1, length(e) - 1)
        printf "%.0f %.3f %.3f %s\n", rps, p50, p99, e
    }' "$1"
}

# wrk in the background so that a signal ends the script at once (the trap
# stops it). $1 = time limit in seconds, $2 = output file, then wrk's arguments.
wrk_bg() {
    w_limit=$1 w_out=$2
    shift 2
    timeout "$w_limit" wrk "$@" >"$w_out" 2>&1 &
    WRK_PID=$!
    w_rc=0
    wait "$WRK_PID" || w_rc=$?
    WRK_PID=
    [ $w_rc -eq 0 ] || die "wrk $* failed (exit $w_rc): $(cat "$w_out")"
}

: >"$TMP/rows"
bench_one() { # name port conns
    url="http://127.0.0.1:$2/healthz"
    if [ "$WARM_S" -gt 0 ]; then
        say "warm-up $1 -c$3 $WARMUP"
        wrk_bg $((WARM_S + 30)) "$TMP/wrk-$1-$3-warmup.txt" \
            -t"$WRK_THREADS" -c"$3" -d"$WARMUP" --latency "$url"
    fi
    say "wrk -t$WRK_THREADS -c$3 -d$DURATION --latency $url  ($1)"
    wrk_bg $((DUR_S + 60)) "$TMP/wrk-$1-$3.txt" -t"$WRK_THREADS" -c"$3" -d"$DURATION" --latency "$url"
    r=$(parse_wrk "$TMP/wrk-$1-$3.txt") || die "cannot read wrk output: $(cat "$TMP/wrk-$1-$3.txt")"
    echo "$1 $3 $r" >>"$TMP/rows"
    alive "$TR_PID" || die "trireme exited during the load (see $TMP/trireme.log)"
    alive "$NG_PID" || die "nginx exited during the load"
}
for c in $CONNS; do
    bench_one trireme "$TR_PORT" "$c"
    bench_one nginx "$NG_PORT" "$c"
done

settle
set -- $(mem "$TR_PID")
TR_LOAD_RSS=$1 TR_LOAD_PSS=$2
set -- $(mem "$NG_PID")
NG_LOAD_RSS=$1 NG_LOAD_PSS=$2

# ---------------------------------------------------------------- idle connections
# Holds HOLD_CONNS connections on one server; sets HELD_RSS, HELD_PSS, HELD_INFO.
hold_on() { # name port pid
    h_name=$1 h_port=$2 h_pid=$3
    HELD_RSS= HELD_PSS= HELD_INFO=
    h=$TMP/hold-$h_name
    mkfifo "$h.in"
    # Read-write open: never blocks. The client gets no copy of fd 3, so
    # closing it here is the client's end of file.
    exec 3<>"$h.in"
    python3 "$HERE/hold_conns.py" --port "$h_port" --count "$HOLD_CONNS" --open-timeout 90 \
        --hold 150 <"$h.in" >"$h.out" 2>"$h.err" 3>&- &
    HOLD_PID=$!
    i=0
    while ! grep -q '^ready' "$h.out" 2>/dev/null; do
        alive "$HOLD_PID" || die "hold_conns.py exited early: $(cat "$h.err")"
        [ $i -lt 1200 ] || die "hold_conns.py not ready after 120 s"
        sleep 0.1
        i=$((i + 1))
    done
    settle
    set -- $(mem "$h_pid")
    HELD_RSS=$1 HELD_PSS=$2
    exec 3>&-
    i=0
    while alive "$HOLD_PID" && [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    alive "$HOLD_PID" && say "hold_conns.py did not stop at end of file"
    stop "$HOLD_PID"
    HOLD_PID=
    HELD_INFO="$(grep '^ready' "$h.out" | cut -d' ' -f2-); $(grep '^done' "$h.out" | cut -d' ' -f2-)"
    say "$h_name with $HOLD_CONNS connections: $HELD_INFO"
}
TR_HELD=n/a NG_HELD=n/a
if [ "$HOLD_CONNS" -gt 0 ]; then
    say "holding $HOLD_CONNS idle keep-alive connections on trireme"
    hold_on trireme "$TR_PORT" "$TR_PID"
    TR_HELD_RSS=$HELD_RSS TR_HELD_PSS=$HELD_PSS TR_HELD_INFO=$HELD_INFO
    say "holding $HOLD_CONNS idle keep-alive connections on nginx"
    hold_on nginx "$NG_PORT" "$NG_PID"
    NG_HELD_RSS=$HELD_RSS NG_HELD_PSS=$HELD_PSS NG_HELD_INFO=$HELD_INFO
fi
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
TR_LOG_START=$(grep -m1 'trireme started' "$TMP/trireme.log" || true)
stop "$TR_PID"
TR_PID=
stop "$NG_PID"
NG_PID=

# ---------------------------------------------------------------- report
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
[ -n "$CPU" ] || CPU=$(uname -m)
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
TR_VERSION=$("$BIN" version 2>&1 | head -n1)
GIT_REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "unknown, not a git checkout")
if [ -n "$(git -C "$SRC" status --porcelain 2>/dev/null | head -n1)" ]; then
    GIT_REV="$GIT_REV + local changes"
fi
NGINX_VERSION=$(nginx -v 2>&1 | head -n1 | sed 's/^nginx version: nginx\///')
WRK_VERSION=$(wrk -v 2>&1 | head -n1 | sed 's/ *Copyright.*//')
ZIG_VERSION=$(python3 -m ziglang version 2>&1 | head -n1)
DEFER=$(printf '%s' "$TR_LOG_START" | sed -n 's/.*\(defer_taskrun=[a-z]*\).*/\1/p')

row() { awk -v n="$1" -v c="$2" '$1 == n && $2 == c' "$TMP/rows"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if [ "$1" = 0 ]; then echo met; else echo "**missed**"; fi; }

S=$TMP/section.md
{
    echo "## $(date -u '+%Y-%m-%d %H:%M:%S UTC') - bench/http/run.sh"
    echo
    echo "- Machine: Linux $(uname -r), $CPU, $NPROC CPUs (nproc), $MEM_GIB GiB RAM;" \
        "load average $LOADAVG_START at start, $LOADAVG_END at end"
    echo "- Versions: $TR_VERSION (git $GIT_REV), nginx $NGINX_VERSION, $WRK_VERSION, zig $ZIG_VERSION"
    src_knob=
    [ "$SRC" = "$ROOT" ] || src_knob="SRC=$SRC "
    echo "- Command: \`${src_knob}THREADS=$THREADS DURATION=$DURATION WARMUP=$WARMUP CONNS=\"$CONNS\"" \
        "WRK_THREADS=$WRK_THREADS HOLD_CONNS=$HOLD_CONNS sh bench/http/run.sh\`"
    echo "  - build: \`python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline --prefix <tmp>\`"
    echo "  - trireme: \`trireme run --host=127.0.0.1 --port=<free> --threads=$THREADS" \
        "--access-log=false --roles=web\` ($DEFER)"
    echo "  - nginx: \`nginx -p <tmp> -c <tmp>/nginx.conf\`: worker_processes $THREADS, master_process on," \
        "daemon off, access_log off, listen 127.0.0.1 reuseport backlog=4096, worker_connections 20000," \
        "keepalive_requests 1000000, \`return 200\` of the same body with default_type application/json"
    echo "  - load: \`wrk -t$WRK_THREADS -c<conns> -d$DURATION --latency http://127.0.0.1:<port>/healthz\`," \
        "each after a $WARMUP warm-up at the same connections; order: $(for c in $CONNS; do printf 'trireme %s, nginx %s; ' "$c" "$c"; done | sed 's/; $//')"
    echo "- Response: \`$BODY\` ($TR_CTYPE); bytes on the wire per response: trireme $TR_WIRE, nginx $NG_WIRE"
    echo
    echo "| server | conns | req/s | p50 | p99 | errors |"
    echo "|---|---:|---:|---:|---:|---|"
    for c in $CONNS; do
        for n in trireme nginx; do
            row "$n" "$c" | awk '{ printf "| %s | %s | %s | %s ms | %s ms | %s |\n", $1, $2, $3, $4, $5, $6 }'
        done
    done
    echo
    echo "Memory: RSS (PSS), summed over the server's processes (nginx: master + workers)."
    echo
    echo "| server | idle, threads=$THREADS | idle, threads=1 | after load | $HOLD_CONNS idle keep-alive conns |"
    echo "|---|---:|---:|---:|---:|"
    tr_held=n/a ng_held=n/a
    if [ "$HOLD_CONNS" -gt 0 ]; then
        tr_held="$(mib "$TR_HELD_RSS") ($(mib "$TR_HELD_PSS"))"
        ng_held="$(mib "$NG_HELD_RSS") ($(mib "$NG_HELD_PSS"))"
    fi
    echo "| trireme | $(mib "$TR_IDLE_RSS") ($(mib "$TR_IDLE_PSS")) | $(mib "$TR1_IDLE_RSS") ($(mib "$TR1_IDLE_PSS"))" \
        "| $(mib "$TR_LOAD_RSS") ($(mib "$TR_LOAD_PSS")) | $tr_held |"
    echo "| nginx | $(mib "$NG_IDLE_RSS") ($(mib "$NG_IDLE_PSS")) | $(mib "$NG1_IDLE_RSS") ($(mib "$NG1_IDLE_PSS"))" \
        "| $(mib "$NG_LOAD_RSS") ($(mib "$NG_LOAD_PSS")) | $ng_held |"
    echo
    echo "Targets (bench/README.md; MB read as MiB):"
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    for c in $CONNS; do
        t=$(row trireme "$c" | cut -d' ' -f3)
        n=$(row nginx "$c" | cut -d' ' -f3)
        le "$n" "$t" && ok=0 || ok=1
        echo "| trireme req/s >= nginx req/s, $c conns | $t vs $n ($(awk -v a="$t" -v b="$n" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')) | $(verdict $ok) |"
    done
    for c in $CONNS; do
        [ "$c" = 64 ] || continue
        p=$(row trireme 64 | cut -d' ' -f5)
        le "$p" 1 && ok=0 || ok=1
        echo "| trireme p99 <= 1 ms, 64 conns | $p ms | $(verdict $ok) |"
    done
    le "$TR_IDLE_RSS" 4096 && ok=0 || ok=1
    echo "| trireme idle RSS <= 4 MB, threads=$THREADS | $(mib "$TR_IDLE_RSS") | $(verdict $ok) |"
    if [ "$HOLD_CONNS" -gt 0 ]; then
        le "$TR_HELD_RSS" 65536 && ok=0 || ok=1
        [ "$HOLD_CONNS" -ge 10000 ] || ok=1
        # every connection must have been answered and still be open
        case $TR_HELD_INFO in *" ok=$HOLD_CONNS "*"still_open=$HOLD_CONNS "*) ;; *) ok=1 ;; esac
        echo "| trireme RSS <= 64 MB with 10,000 idle keep-alive conns | $(mib "$TR_HELD_RSS") with $HOLD_CONNS | $(verdict $ok) |"
    fi
    echo
    echo "Notes:"
    echo
    echo "- wrk and both servers share this machine's $NPROC CPUs: the load generator takes CPU time" \
        "from the server under test, so req/s is a comparison at equal conditions, not either server's ceiling."
    echo "- Both servers run all along (the idle one uses no CPU); runs alternate so drift hits both."
    echo "- Idle memory is read about 1 s after the listeners appear, before any request; \"after load\"" \
        "about 1 s after the last wrk run."
    if [ "$HOLD_CONNS" -gt 0 ]; then
        echo "- Held connections (hold_conns.py: one GET each, then idle), read about 1 s after all were open:" \
            "trireme: $TR_HELD_INFO. nginx: $NG_HELD_INFO. Per connection over \"after load\":" \
            "trireme $(awk -v a="$TR_HELD_RSS" -v b="$TR_LOAD_RSS" -v n="$HOLD_CONNS" 'BEGIN { printf "%.2f", (a - b) / n }') KiB," \
            "nginx $(awk -v a="$NG_HELD_RSS" -v b="$NG_LOAD_RSS" -v n="$HOLD_CONNS" 'BEGIN { printf "%.2f", (a - b) / n }') KiB (RSS)."
    fi
    echo
} >"$S"

cat "$S"
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
cat "$S" >>"$RESULTS"
say "appended to $RESULTS"
