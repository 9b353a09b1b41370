# bench/lib.sh - what every bench/*/run.sh does the same way, sourced by
# them (`. "$ROOT/bench/lib.sh"` after setting HERE, ROOT, SRC, PY and
# KEEP_TMP): messages, argument checks, stopping the processes a run
# started, the temporary directory and its clean-up on any exit, the
# ReleaseFast build, and running the script's Python helper in the
# background (so a signal to the script is handled at once).
#
# A script defines stop_all() (stop every process it started, each through
# stop) and then calls bench_begin <name>; its `die` and any exit run the
# clean-up. bench/compare.sh copies this file with the harness.

say() { printf '%s\n' "run.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
posint() { case $2 in '' | *[!0-9]* | 0) die "$1 must be a positive integer" ;; esac; }
# has "<list>" word: word is in the space-separated list.
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

# Whether process $1 runs (not gone, not a zombie).
alive() {
    [ -n "$1" ] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# The processes below process $1, one a line.
descendants() {
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

# Stop one process we started: SIGTERM, up to STOP_WAIT_S (20) seconds,
# then SIGKILL to what is left of it and of the processes it had started
# (nginx's workers).
stop() {
    [ -n "$1" ] || return 0
    if alive "$1"; then
        tree="$1 $(descendants "$1")"
        kill -TERM "$1" 2>/dev/null || true
        i=0
        while alive "$1" && [ $i -lt $((${STOP_WAIT_S:-20} * 10)) ]; do
            sleep 0.1
            i=$((i + 1))
        done
        for p in $tree; do
            if alive "$p"; then
                say "process $p did not stop in ${STOP_WAIT_S:-20} s: SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
            fi
        done
    fi
    wait "$1" 2>/dev/null || true
}

bench_cleanup() {
    rc=$?
    trap - EXIT
    trap "" INT TERM HUP # let the clean-up finish (each stop is bounded)
    stop_all
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        say "temporary files kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}

# bench_begin name: the run's temporary directory (TMP, world-readable for
# servers that run as another user; OUT, the build's prefix), the clean-up
# on any exit, the descriptor limit raised, and the start stamps.
bench_begin() {
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    TMP=$(mktemp -d "/tmp/trireme-bench-$1.XXXXXX")
    chmod 755 "$TMP"
    OUT=$TMP/prefix
    HPID=
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
    LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# Trireme built ReleaseFast from SRC into OUT: BIN, and BUILD_CMD as the
# sections print it.
bench_build() {
    BUILD_CMD="python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline --prefix <tmp>"
    say "building $SRC: $BUILD_CMD"
    (cd "$SRC" && timeout 900 python3 -m ziglang build -Doptimize=ReleaseFast -Dcpu=baseline \
        --prefix "$OUT") >"$TMP/build.log" 2>&1 || {
        cat "$TMP/build.log" >&2
        die "build failed"
    }
    BIN=$OUT/bin/trireme
    [ -x "$BIN" ] || die "no $BIN after the build"
}

# bench_helper script.py args...: the Python helper in the background
# (HPID, which stop_all stops), waited for; its exit status.
bench_helper() {
    "$PY" "$@" &
    HPID=$!
    set +e
    wait "$HPID"
    hrc=$?
    set -e
    HPID=
    return $hrc
}
