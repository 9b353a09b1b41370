/*
 * test_urlquery.c - proto/urlquery: finding a parameter, '+' and %XX,
 * malformed escapes, and values that do not fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/urlquery.h"

static int get(const char *q, const char *name, char *out, size_t cap)
{
    return urlquery_get(q, q ? strlen(q) : 0, name, out, cap);
}

static void finds_first_match_by_exact_name(void **state)
{
    char out[32];
    assert_int_equal(get("a=1&ab=2&b=3&b=4", "b", out, sizeof(out)), 1);
    assert_string_equal(out, "3");
    assert_int_equal(get("a=1&ab=2", "ab", out, sizeof(out)), 1);
    assert_string_equal(out, "2");
    assert_int_equal(get("ab=2", "a", out, sizeof(out)), 0);
    assert_int_equal(get("a=1", "A", out, sizeof(out)), 0); /* names are case-sensitive */
}

static void absent_and_empty(void **state)
{
    char out[8];
    assert_int_equal(get(NULL, "a", out, sizeof(out)), 0);
    assert_int_equal(get("", "a", out, sizeof(out)), 0);
    assert_int_equal(get("&&a=&", "a", out, sizeof(out)), 1);
    assert_string_equal(out, "");
    assert_int_equal(get("x&a", "a", out, sizeof(out)), 1); /* no '=': empty value */
    assert_string_equal(out, "");
}

static void plus_and_percent_escapes(void **state)
{
    char out[32];
    assert_int_equal(get("q=a+b%20c%2b%2Fd", "q", out, sizeof(out)), 1);
    assert_string_equal(out, "a b c+/d");
    /* The encoded separators are data, not separators. */
    assert_int_equal(get("q=x%26y%3Dz&r=1", "q", out, sizeof(out)), 1);
    assert_string_equal(out, "x&y=z");
    /* UTF-8 comes through as its bytes. */
    assert_int_equal(get("n=%C3%A9", "n", out, sizeof(out)), 1);
    assert_string_equal(out, "\xc3\xa9");
}

static void malformed_percent_is_refused(void **state)
{
    char out[32];
    assert_int_equal(get("q=%", "q", out, sizeof(out)), -1);
    assert_int_equal(get("q=%4", "q", out, sizeof(out)), -1);
    assert_int_equal(get("q=%4&r=1", "q", out, sizeof(out)), -1); /* '&' ends the value */
    assert_int_equal(get("q=%zz", "q", out, sizeof(out)), -1);
    assert_int_equal(get("q=%00", "q", out, sizeof(out)), -1); /* a NUL cannot be a C string */
    /* A malformed value of another parameter does not matter. */
    assert_int_equal(get("p=%&q=ok", "q", out, sizeof(out)), 1);
    assert_string_equal(out, "ok");
}

static void capacity_counts_the_nul(void **state)
{
    char out[4];
    assert_int_equal(get("q=abc", "q", out, 4), 1);
    assert_string_equal(out, "abc");
    assert_int_equal(get("q=abcd", "q", out, 4), -1);
    assert_int_equal(get("q=%41%42%43", "q", out, 4), 1); /* decoded length counts */
    assert_string_equal(out, "ABC");
    assert_int_equal(urlquery_decode("a", 1, out, 0), -1);
    assert_int_equal(urlquery_decode("", 0, out, 1), 0);
    assert_string_equal(out, "");
}

static void decode_alone(void **state)
{
    char out[16];
    assert_int_equal(urlquery_decode("a%2Bb+c", 7, out, sizeof(out)), 5);
    assert_string_equal(out, "a+b c");
    /* n bounds the input: a '%' cut by n is malformed. */
    assert_int_equal(urlquery_decode("%41", 2, out, sizeof(out)), -1);
}

static void path_segment_keeps_plus(void **state)
{
    char out[16];
    assert_int_equal(urlpath_decode("a%3Ab+c%40", 10, out, sizeof(out)), 6);
    assert_string_equal(out, "a:b+c@");
    assert_int_equal(urlpath_decode("a%2", 3, out, sizeof(out)), -1);
    assert_int_equal(urlpath_decode("%00", 3, out, sizeof(out)), -1);
    assert_int_equal(urlpath_decode("abcd", 4, out, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_first_match_by_exact_name),
        cmocka_unit_test(absent_and_empty),
        cmocka_unit_test(plus_and_percent_escapes),
        cmocka_unit_test(malformed_percent_is_refused),
        cmocka_unit_test(capacity_counts_the_nul),
        cmocka_unit_test(decode_alone),
        cmocka_unit_test(path_segment_keeps_plus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
