#!/bin/sh
# run.sh - bounded libFuzzer run of every tests/fuzz/fuzz_*.c target.
#
#   sh tests/fuzz/run.sh          20 seconds per target (what `zig build fuzz` runs)
#   sh tests/fuzz/run.sh 60       a minute per target
#   sh tests/fuzz/run.sh 3600     an hour per target: the longer run, e.g. overnight
#                                 or before a release
#   FUZZ_JOBS=8 sh tests/fuzz/run.sh 3600
#                                 the same with 8 parallel workers per target
#   FUZZ_TARGETS="redis_reply http1" sh tests/fuzz/run.sh 600
#                                 only these targets (names without fuzz_)
#   FUZZ_MERGE=1 sh tests/fuzz/run.sh 600
#                                 after a clean run, merge what the fuzzer found
#                                 into tests/fuzz/corpus/<name>/ (libFuzzer's
#                                 -merge=1 keeps only inputs that add coverage),
#                                 to commit as the kept corpus
#
# Run from anywhere; paths are relative to the repository root. Each target
# fuzz_<name>.c is built with
#   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
#       tests/fuzz/fuzz_<name>.c proto/*.c
# (falling back to `clang` when clang-14 is missing); a target that includes
# kernel/ or modules/ headers links instead with kernel/ and modules/
# (but kernel/main.c) and proto/, compiled once per run with the fuzzer's
# coverage (-fsanitize=fuzzer-no-link), and the system libraries. That needs
# zig-out/gen/migrations_gen.c, which `zig build` writes. Each is started on a temporary
# copy of tests/fuzz/corpus/<name>/, so a run never grows the repository's
# seed corpus. A crashing input is copied to tests/fuzz/findings/ (ignored by
# git) and the command that reproduces it is printed. To keep new inputs
# the fuzzer found, copy them by hand from the printed work directory.
#
# Prints one line per target and exits non-zero if any target failed to
# build or crashed.
set -u

secs=${1:-20}
jobs=${FUZZ_JOBS:-1}
only=${FUZZ_TARGETS:-}
merge=${FUZZ_MERGE:-0}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2

cc=clang-14
command -v "$cc" >/dev/null 2>&1 || cc=clang
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: neither clang-14 nor clang found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/trireme-fuzz.XXXXXX") || exit 2
status=0
libs=""

# The instrumented kernel and modules, archived once (the linker takes what
# a target needs). Prints the link arguments.
build_libs() {
    if [ ! -r zig-out/gen/migrations_gen.c ]; then
        echo "run.sh: zig-out/gen/migrations_gen.c is missing: run \`zig build\` first" >&2
        return 1
    fi
    mkdir -p "$work/obj"
    # shellcheck disable=SC2016 # expanded by the inner sh
    compile='o="$0/obj/$(echo "$1" | tr / _).o"; $CC -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE -I. -I/usr/include/postgresql -c "$1" -o "$o"'
    { find kernel modules proto -name '*.c' ! -path kernel/main.c; echo zig-out/gen/migrations_gen.c; } |
        CC=$cc xargs -P "$(nproc)" -n 1 sh -c "$compile" "$work" >"$work/libs.log" 2>&1 || {
        sed -n '1,20p' "$work/libs.log" >&2
        return 1
    }
    ar rcs "$work/libtrireme.a" "$work"/obj/*.o
    echo "$work/libtrireme.a -luring -ljansson -lhiredis -lbearssl -lcares -lpthread -ldl -lm"
}

for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    target=$(basename "$src" .c)
    name=${target#fuzz_}
    if [ -n "$only" ]; then
        case " $only " in *" $name "*) ;; *) continue ;; esac
    fi
    bin="$work/$target"
    log="$work/$target.log"
    corpus="$work/corpus-$name"
    artifacts="$work/artifacts-$name/"
    mkdir -p "$corpus" "$artifacts"
    [ -d "tests/fuzz/corpus/$name" ] && cp -R "tests/fuzz/corpus/$name/." "$corpus/"
    seeds=$(ls "$corpus" | wc -l)

    if grep -q '^#include "\(kernel\|modules\)/' "$src"; then
        if [ -z "$libs" ] && ! libs=$(build_libs); then
            echo "$target: BUILD FAILED (the instrumented libraries, see $work/libs.log)"
            status=1
            continue
        fi
        with=$libs
    else
        with=$(ls proto/*.c)
    fi
    # shellcheck disable=SC2086 # $with is a list of files and flags
    if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -std=gnu11 -D_GNU_SOURCE -I. -I/usr/include/postgresql "$src" $with -o "$bin" 2>"$log"; then
        echo "$target: BUILD FAILED (see $log)"
        sed -n '1,20p' "$log" >&2
        status=1
        continue
    fi

    if [ "$jobs" -gt 1 ]; then
        par="-fork=$jobs -ignore_crashes=0"
    else
        par=""
    fi
    # shellcheck disable=SC2086 # $par is a list of flags
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts" $par "$corpus" >"$log" 2>&1
    rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    now=$(ls "$corpus" | wc -l)
    crashes=$(ls "$artifacts" 2>/dev/null | wc -l)

    if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        echo "$target: ok, ${execs:-?} execs in ${secs}s, cov ${cov:-?}, corpus $seeds -> $now"
        if [ "$merge" = 1 ]; then
            mkdir -p "tests/fuzz/corpus/$name"
            before=$(ls "tests/fuzz/corpus/$name" | wc -l)
            "$bin" -merge=1 -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
                "tests/fuzz/corpus/$name" "$corpus" >>"$log" 2>&1 || status=1
            echo "$target: kept corpus $before -> $(ls "tests/fuzz/corpus/$name" | wc -l)"
        fi
    else
        mkdir -p tests/fuzz/findings
        for f in "$artifacts"*; do
            [ -e "$f" ] || continue
            cp "$f" "tests/fuzz/findings/$target-$(basename "$f")"
            echo "$target: reproduce: $bin tests/fuzz/findings/$target-$(basename "$f")"
        done
        echo "$target: FAILED (exit $rc) after ${execs:-?} execs, $crashes crash input(s); log: $log"
        grep -m 5 -E 'ERROR|check failed|runtime error|SUMMARY' "$log" >&2
        status=1
    fi
done

if [ "$status" -eq 0 ]; then
    rm -rf "$work"
else
    echo "run.sh: work directory kept: $work"
fi
exit "$status"
