/*
 * test_utf8.c - proto/utf8: well-formed UTF-8 passes; overlong forms,
 * surrogates, code points past U+10FFFF, stray or missing continuation
 * bytes and NUL do not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/utf8.h"

static bool ok(const char *s)
{
    return utf8_valid(s, strlen(s));
}

static void well_formed_passes(void **state)
{
    assert_true(ok(""));
    assert_true(ok("default"));
    assert_true(ok("\xc3\xa9t\xc3\xa9"));        /* été */
    assert_true(ok("\xe2\x82\xac"));             /* U+20AC */
    assert_true(ok("\xf0\x9f\x98\x80"));         /* U+1F600 */
    assert_true(ok("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
    assert_true(ok("\xed\x9f\xbf\xee\x80\x80")); /* U+D7FF, U+E000 */
}

static void malformed_fails(void **state)
{
    assert_false(ok("\xff\xfe"));
    assert_false(ok("\xc3\x28"));         /* continuation missing */
    assert_false(ok("\x80"));             /* stray continuation */
    assert_false(ok("\xc3"));             /* cut short */
    assert_false(ok("\xe2\x82"));         /* cut short */
    assert_false(ok("\xc0\xaf"));         /* overlong '/' */
    assert_false(ok("\xe0\x80\xaf"));     /* overlong */
    assert_false(ok("\xf0\x80\x80\xaf")); /* overlong */
    assert_false(ok("\xed\xa0\x80"));     /* U+D800, a surrogate */
    assert_false(ok("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(ok("\xf5\x80\x80\x80"));
}

static void nul_fails(void **state)
{
    assert_false(utf8_valid("a\0b", 3));
    assert_true(utf8_valid("ab", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(well_formed_passes),
                                       cmocka_unit_test(malformed_fails),
                                       cmocka_unit_test(nul_fails)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
