#!/bin/sh
# tools/build-asan.sh - Trireme built with AddressSanitizer + UBSan by clang.
#
# Zig's toolchain has no ASan runtime, and valgrind cannot follow io_uring
# across threads (it holds its lock through io_uring_enter), so the memory
# checker build uses Debian's clang-14. `zig build asan` runs this script;
# the result is zig-out/asan/trireme, which `zig build e2e-asan` tests.
# It needs zig-out/gen/migrations_gen.c, openapi_gen.c and ui_gen.c, which
# `zig build` writes.
#
# Layered like build.zig (read its header): every source is compiled once
# into zig-out/asan/obj/, archived as libproto.a, libkernel.a (kernel/ but
# main.c) and libmodules.a (modules/ + the migrations); trireme is
# kernel/main.c linked with the three, and each tests/unit/test_*.c links
# only its layer's libraries: proto tests libproto alone (no system
# library), kernel tests libkernel + libproto + tests/unit/kernel_registry.c,
# modules tests all three. A test's layer is the highest of its quoted
# includes (proto/, kernel/, modules/; includes of files next to it are
# followed). build.zig's `layers` step checks the libraries' symbols.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang-14}
command -v "$CC" >/dev/null || CC=clang
JOBS=${JOBS:-$(nproc)}
out=zig-out/asan
rm -rf "$out/obj"
mkdir -p "$out/obj"
export CC out
FLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -I. -I/usr/include/postgresql"
export FLAGS

# Compile one source to zig-out/asan/obj/<path with / as _>.o.
# shellcheck disable=SC2016 # expanded by the inner sh
compile='o="$out/obj/$(echo "$1" | tr / _ | sed "s/\.c\$//").o"; $CC $FLAGS -c "$1" -o "$o"'
srcs=$(find proto kernel modules -name '*.c' | sort)
printf '%s\n' $srcs zig-out/gen/migrations_gen.c zig-out/gen/openapi_gen.c zig-out/gen/ui_gen.c | xargs -P "$JOBS" -n 1 sh -c "$compile" sh

obj() { for f in "$@"; do echo "$out/obj/$(echo "$f" | tr / _ | sed 's/\.c$//').o"; done; }
rm -f "$out"/lib*.a
# shellcheck disable=SC2046
ar rcs "$out/libproto.a" $(obj $(find proto -name '*.c' | sort))
# shellcheck disable=SC2046
ar rcs "$out/libkernel.a" $(obj $(find kernel -name '*.c' ! -path kernel/main.c | sort))
# shellcheck disable=SC2046
ar rcs "$out/libmodules.a" $(obj $(find modules -name '*.c' | sort) zig-out/gen/migrations_gen.c zig-out/gen/openapi_gen.c zig-out/gen/ui_gen.c)

SYSLIBS="-luring -ljansson -lhiredis -lbearssl -lcares -lpthread"
# shellcheck disable=SC2086
$CC $FLAGS "$(obj kernel/main.c)" "$out/libmodules.a" "$out/libkernel.a" "$out/libproto.a" \
    $SYSLIBS -o "$out/trireme"
echo "built $out/trireme (ASan+UBSan, $($CC --version | head -1))"

# 0 proto, 1 kernel, 2 modules: the highest layer $1 includes.
layer() {
    [ "${2:-0}" -le 8 ] && [ -r "$1" ] || {
        echo 2
        return
    }
    best=0
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"); do
        case $inc in
            proto/*) l=0 ;;
            kernel/*) l=1 ;;
            modules/*) l=2 ;;
            *) l=$(layer "$(dirname "$1")/$inc" $((${2:-0} + 1))) ;;
        esac
        [ "$l" -gt "$best" ] && best=$l
    done
    echo "$best"
}

# The unit tests too, so proto/ and kernel/ code runs under ASan without
# the ring's cross-thread behaviour getting in the way.
for t in tests/unit/test_*.c; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .c)
    case $(layer "$t") in
        0) libs="$out/libproto.a" ;;
        1) libs="tests/unit/kernel_registry.c $out/libkernel.a $out/libproto.a $SYSLIBS" ;;
        *) libs="$out/libmodules.a $out/libkernel.a $out/libproto.a $SYSLIBS" ;;
    esac
    # shellcheck disable=SC2086
    $CC $FLAGS "$t" $libs -lcmocka -o "$out/$name"
done
echo "built $(ls "$out"/test_* | wc -l) unit tests into $out"

# Test-only drivers of kernel code (tests/tools/*.c, as build.zig's
# zig-out/test-bin/): zig-out/asan/trireme-<name>, beside the ASan trireme
# so the e2e tests find the matching one.
for t in tests/tools/*.c; do
    [ -e "$t" ] || continue
    name=trireme-$(basename "$t" .c | tr _ -)
    # shellcheck disable=SC2086
    $CC $FLAGS "$t" tests/unit/kernel_registry.c "$out/libkernel.a" "$out/libproto.a" $SYSLIBS \
        -o "$out/$name"
done
