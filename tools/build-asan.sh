#!/bin/sh
# tools/build-asan.sh - Trireme built with AddressSanitizer + UBSan by clang.
#
# Zig's toolchain has no ASan runtime, and valgrind cannot follow io_uring
# across threads (it holds its lock through io_uring_enter), so the memory
# checker build uses Debian's clang-14. `zig build asan` runs this script;
# the result is zig-out/asan/trireme, which `zig build e2e-asan` tests.
# It needs zig-out/gen/migrations_gen.c, which `zig build` writes.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang-14}
command -v "$CC" >/dev/null || CC=clang
mkdir -p zig-out/asan
# shellcheck disable=SC2046
$CC -std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -I. -I/usr/include/postgresql \
    $(find proto kernel modules -name '*.c' | sort) zig-out/gen/migrations_gen.c \
    -luring -ljansson -lhiredis -lpthread -o zig-out/asan/trireme
echo "built zig-out/asan/trireme (ASan+UBSan, $($CC --version | head -1))"
# The unit tests too, so proto/ and kernel/ code runs under ASan without
# the ring's cross-thread behaviour getting in the way.
for t in tests/unit/test_*.c; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .c)
    # shellcheck disable=SC2046
    $CC -std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=all \
        -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -I. -I/usr/include/postgresql \
        $(find proto kernel modules -name '*.c' ! -path kernel/main.c | sort) zig-out/gen/migrations_gen.c "$t" \
        -luring -ljansson -lhiredis -lcmocka -lpthread -o "zig-out/asan/$name"
done
