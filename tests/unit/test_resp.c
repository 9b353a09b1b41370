/*
 * test_resp.c - RESP command encoding: exact bytes, sizes that match what
 * is written, binary-safe and empty arguments, multi-digit counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/resp.h"

/* Encode into a buffer with a guard byte after the announced size. */
static size_t encode(char *out, size_t cap, int argc, const char *const *argv, const size_t *lens)
{
    size_t n = resp_command_size(argc, argv, lens);
    assert_true(n + 1 <= cap);
    memset(out, '#', cap);
    assert_int_equal(resp_command_write(out, argc, argv, lens), n);
    assert_int_equal(out[n], '#'); /* nothing written past the size */
    return n;
}

static void c_strings(void **state)
{
    char out[256];
    const char *argv[] = {"SET", "key", "value"};
    size_t n = encode(out, sizeof(out), 3, argv, NULL);
    const char *want = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void one_argument(void **state)
{
    char out[64];
    size_t n = encode(out, sizeof(out), 1, (const char *[]){"PING"}, NULL);
    assert_int_equal(n, 14);
    assert_memory_equal(out, "*1\r\n$4\r\nPING\r\n", n);
}

static void binary_and_empty(void **state)
{
    char out[128];
    const char bin[] = {'a', 0, '\r', '\n', 'b'};
    const char *argv[] = {"HSET", bin, ""};
    const size_t lens[] = {4, sizeof(bin), 0};
    size_t n = encode(out, sizeof(out), 3, argv, lens);
    const char want[] = "*3\r\n$4\r\nHSET\r\n$5\r\na\0\r\nb\r\n$0\r\n\r\n";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
}

static void lengths_not_nul(void **state)
{
    /* With lens, only that many bytes count, whatever follows. */
    char out[64];
    const size_t lens[] = {3, 2};
    size_t n = encode(out, sizeof(out), 2, (const char *[]){"GETX", "keyZ"}, lens);
    assert_memory_equal(out, "*2\r\n$3\r\nGET\r\n$2\r\nke\r\n", n);
}

static void multi_digit(void **state)
{
    /* 12 arguments, one of 1234 bytes: two- and four-digit headers. */
    enum { ARGC = 12, BIG = 1234 };
    char *big = malloc(BIG);
    memset(big, 'x', BIG);
    const char *argv[ARGC];
    size_t lens[ARGC];
    for (int i = 0; i < ARGC; i++)
        argv[i] = "a", lens[i] = 1;
    argv[5] = big, lens[5] = BIG;
    size_t cap = 4096;
    char *out = malloc(cap);
    size_t n = encode(out, cap, ARGC, argv, lens);
    assert_int_equal(n, 5 + 11 * 7 + (7 + BIG + 2));
    assert_memory_equal(out, "*12\r\n$1\r\na\r\n", 12);
    const char *p = out + 5 + 5 * 7;
    assert_memory_equal(p, "$1234\r\nxxx", 10);
    assert_memory_equal(p + 7 + BIG, "\r\n$1\r\na\r\n", 9);
    free(out);
    free(big);
}

static void no_arguments(void **state)
{
    char out[16];
    size_t n = encode(out, sizeof(out), 0, NULL, NULL);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "*0\r\n", 4);
}

static void pieces_make_the_same_bytes(void **state)
{
    /* A command written piece by piece (as a caller holding its arguments
     * elsewhere does) is the command written whole. */
    const char *argv[] = {"EVALSHA", "0123456789", "0", "job-42"};
    char whole[128], parts[128];
    size_t n = encode(whole, sizeof(whole), 4, argv, NULL);
    size_t size = resp_array_size(4);
    for (int i = 0; i < 4; i++)
        size += resp_bulk_size(strlen(argv[i]));
    assert_int_equal(size, n);
    char *p = resp_array_write(parts, 4);
    for (int i = 0; i < 4; i++)
        p = resp_bulk_write(p, argv[i], strlen(argv[i]));
    assert_int_equal((size_t)(p - parts), n);
    assert_memory_equal(parts, whole, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(c_strings),
        cmocka_unit_test(one_argument),
        cmocka_unit_test(binary_and_empty),
        cmocka_unit_test(lengths_not_nul),
        cmocka_unit_test(multi_digit),
        cmocka_unit_test(no_arguments),
        cmocka_unit_test(pieces_make_the_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
