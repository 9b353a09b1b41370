/*
 * test_json_escape.c - proto/json_escape: what is escaped, what passes,
 * and how output is cut to the capacity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/json_escape.h"

static void printable_ascii_passes_unchanged(void **state)
{
    char out[64];
    const char *s = "Hello, world! /v1/jobs?x=1 {}[]:'";
    assert_int_equal(json_escape(out, sizeof(out), s, strlen(s)), strlen(s));
    assert_string_equal(out, s);
}

static void quote_and_backslash_get_two_char_escapes(void **state)
{
    char out[64];
    assert_int_equal(json_escape(out, sizeof(out), "a\"b\\c", 5), 7);
    assert_string_equal(out, "a\\\"b\\\\c");
}

static void control_chars_and_del_become_u_escapes(void **state)
{
    char out[128];
    const char in[] = {'\n', '\r', '\t', 0x01, 0x1f, 0x7f, 0};
    /* The embedded NUL is input like any other byte (n says where it ends). */
    size_t n = json_escape(out, sizeof(out), in, sizeof(in));
    assert_string_equal(out, "\\u000a\\u000d\\u0009\\u0001\\u001f\\u007f\\u0000");
    assert_int_equal(n, 7 * 6);
}

static void utf8_is_escaped_byte_wise(void **state)
{
    /* Bytes >= 0x80 are not passed through: the input need not be valid
     * UTF-8, and the result must be valid JSON whatever it is. */
    char out[64];
    json_escape(out, sizeof(out), "\xc3\xa9", 2); /* U+00E9 */
    assert_string_equal(out, "\\u00c3\\u00a9");
    json_escape(out, sizeof(out), "\xff", 1); /* never valid UTF-8 */
    assert_string_equal(out, "\\u00ff");
}

static void truncation_never_splits_an_escape(void **state)
{
    char out[16];
    /* Room for 3 bytes + NUL: one 2-byte escape fits, the second does not. */
    assert_int_equal(json_escape(out, 4, "\"\"\"", 3), 2);
    assert_string_equal(out, "\\\"");
    /* A 6-byte escape needs 7 bytes of room. */
    assert_int_equal(json_escape(out, 7, "a\x01", 2), 1);
    assert_string_equal(out, "a");
    assert_int_equal(json_escape(out, 8, "a\x01", 2), 7);
    assert_string_equal(out, "a\\u0001");
    /* Plain bytes fill up to cap - 1. */
    assert_int_equal(json_escape(out, 4, "abcdef", 6), 3);
    assert_string_equal(out, "abc");
}

static void tiny_capacities(void **state)
{
    char out[4] = "xyz";
    assert_int_equal(json_escape(out, 0, "abc", 3), 0);
    assert_string_equal(out, "xyz"); /* cap 0: nothing written */
    assert_int_equal(json_escape(out, 1, "abc", 3), 0);
    assert_string_equal(out, "");
    assert_int_equal(json_escape(out, sizeof(out), "", 0), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(printable_ascii_passes_unchanged),
        cmocka_unit_test(quote_and_backslash_get_two_char_escapes),
        cmocka_unit_test(control_chars_and_del_become_u_escapes),
        cmocka_unit_test(utf8_is_escaped_byte_wise),
        cmocka_unit_test(truncation_never_splits_an_escape),
        cmocka_unit_test(tiny_capacities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
