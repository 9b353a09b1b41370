/*
 * test_rfc3339.c - timestamp parsing: valid forms, offsets, bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/rfc3339.h"

static int64_t p(const char *s)
{
    int64_t ms = -42;
    return rfc3339_parse_ms(s, strlen(s), &ms) ? -1 : ms;
}

static void valid(void **state)
{
    assert_int_equal(p("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(p("1994-11-06T08:49:37Z"), 784111777000LL);
    assert_int_equal(p("1994-11-06T09:49:37+01:00"), 784111777000LL);
    assert_int_equal(p("1994-11-06T03:49:37-05:00"), 784111777000LL);
    assert_int_equal(p("1994-11-06 08:49:37.250z"), 784111777250LL);
    assert_int_equal(p("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_int_equal(p("2026-11-22T07:00:00.1Z"), 1795330800100LL);
}

static void invalid(void **state)
{
    const char *bad[] = {"",
                         "2026-11-22",
                         "2026-11-22T07:00:00",
                         "2026-13-01T00:00:00Z",
                         "2026-02-29T00:00:00Z",
                         "2100-02-29T00:00:00Z",
                         "2026-11-22T24:00:00Z",
                         "2026-11-22T07:00:00.Z",
                         "2026-11-22T07:00:00+0100",
                         "2026-11-22T07:00:00Z trailing",
                         "tomorrow"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(p(bad[i]), -1);
}

static void format(void **state)
{
    char b[40];
    assert_int_equal(rfc3339_format_ms(0, b, sizeof(b)), 24);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
    rfc3339_format_ms(784111777250LL, b, sizeof(b));
    assert_string_equal(b, "1994-11-06T08:49:37.250Z");
    rfc3339_format_ms(951782400000LL, b, sizeof(b));
    assert_string_equal(b, "2000-02-29T00:00:00.000Z");
    rfc3339_format_ms(-1, b, sizeof(b));
    assert_string_equal(b, "1969-12-31T23:59:59.999Z");
    assert_int_equal(rfc3339_format_ms(0, b, 10), 0);
    /* Round trip every ~37 hours from 1970 to 2191. */
    for (int64_t ms = 0; ms < 7000000000000LL; ms += 133333333LL + 7) {
        size_t n = rfc3339_format_ms(ms, b, sizeof(b));
        int64_t back = 0;
        assert_int_equal(rfc3339_parse_ms(b, n, &back), 0);
        assert_int_equal(back, ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(valid), cmocka_unit_test(invalid),
                                       cmocka_unit_test(format)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
