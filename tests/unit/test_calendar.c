/*
 * test_calendar.c - proto/calendar.c: leap years, month lengths, day
 * numbers both ways (checked against a day-by-day count, far before and
 * after 1970), weekdays, civil times with carried months, and
 * rfc3339_format_s built on them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/calendar.h"
#include "proto/rfc3339.h"

static void leap_years_and_month_lengths(void **state)
{
    assert_true(cal_is_leap(2000) && cal_is_leap(2024) && cal_is_leap(1600) && cal_is_leap(0));
    assert_true(cal_is_leap(-4) && cal_is_leap(-400));
    assert_false(cal_is_leap(1900) || cal_is_leap(2100) || cal_is_leap(2026) || cal_is_leap(-100));
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        assert_int_equal(cal_days_in_month(2026, m), len[m - 1]);
        assert_int_equal(cal_days_in_month(2028, m), m == 2 ? 29 : len[m - 1]);
    }
    assert_int_equal(cal_days_in_month(1900, 2), 28);
    assert_int_equal(cal_days_in_month(2000, 2), 29);
}

static void known_day_numbers(void **state)
{
    assert_int_equal(cal_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cal_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(cal_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(cal_days_from_civil(2026, 12, 6), 20793);
    assert_int_equal(cal_days_from_civil(0, 3, 1), -719468);
    assert_int_equal(cal_days_from_civil(1, 1, 1), -719162);
    int64_t y;
    int m, d;
    cal_civil_from_days(-719469, &y, &m, &d); /* the day before 0000-03-01 */
    assert_int_equal(y, 0);
    assert_int_equal(m, 2);
    assert_int_equal(d, 29);
}

/* Walk day by day from 1600-01-01 to 2400-12-31 and from -2000 to -1600,
 * counting independently of the closed forms. */
static void walk(int64_t y0, int64_t y1)
{
    int64_t n = cal_days_from_civil(y0, 1, 1);
    for (int64_t y = y0; y <= y1; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= cal_days_in_month(y, m); d++, n++) {
                assert_int_equal(cal_days_from_civil(y, m, d), n);
                int64_t yy;
                int mm, dd;
                cal_civil_from_days(n, &yy, &mm, &dd);
                assert_true(yy == y && mm == m && dd == d);
                assert_int_equal(cal_weekday(n + 1), (cal_weekday(n) + 1) % 7);
            }
    /* 400 years are exactly 146097 days. */
    assert_int_equal(cal_days_from_civil(y1 + 1, 1, 1) - cal_days_from_civil(y1 - 399, 1, 1),
                     146097);
}

static void day_numbers_both_ways(void **state)
{
    walk(1600, 2400);
    walk(-2000, -1600);
}

static void weekdays(void **state)
{
    assert_int_equal(cal_weekday(0), 4);                                /* 1970-01-01 Thursday */
    assert_int_equal(cal_weekday(-1), 3);                               /* Wednesday */
    assert_int_equal(cal_weekday(cal_days_from_civil(2026, 12, 6)), 0); /* Sunday */
    assert_int_equal(cal_weekday(cal_days_from_civil(2000, 2, 29)), 2); /* Tuesday */
    assert_int_equal(cal_weekday(cal_days_from_civil(1, 1, 1)), 1);     /* Monday */
}

static void floor_division(void **state)
{
    assert_int_equal(cal_floor_div(7, 2), 3);
    assert_int_equal(cal_floor_div(-7, 2), -4);
    assert_int_equal(cal_floor_div(-8, 2), -4);
    assert_int_equal(cal_floor_div(7, -2), -4);
    assert_int_equal(cal_floor_div(-1, 86400), -1);
    assert_int_equal(cal_floor_div(0, 86400), 0);
}

static void civil_times(void **state)
{
    struct civil c;
    cal_seconds_to_civil(-1, &c);
    assert_true(c.year == 1969 && c.month == 12 && c.day == 31 && c.hour == 23 && c.minute == 59 &&
                c.second == 59 && c.wday == 3);
    cal_seconds_to_civil(1772953200, &c); /* 2026-03-08T07:00:00Z */
    assert_true(c.year == 2026 && c.month == 3 && c.day == 8 && c.hour == 7 && c.minute == 0 &&
                c.second == 0 && c.wday == 0);
    assert_int_equal(cal_civil_to_seconds(&c), 1772953200);
    /* Months outside 1-12 carry into the year. */
    struct civil m13 = {.year = 2025, .month = 13, .day = 1};
    struct civil jan = {.year = 2026, .month = 1, .day = 1};
    assert_int_equal(cal_civil_to_seconds(&m13), cal_civil_to_seconds(&jan));
    struct civil m0 = {.year = 2026, .month = 0, .day = 31, .hour = 12};
    struct civil dec = {.year = 2025, .month = 12, .day = 31, .hour = 12};
    assert_int_equal(cal_civil_to_seconds(&m0), cal_civil_to_seconds(&dec));
    /* Round trip, a step that is not a divisor of a day, both signs. */
    for (int64_t s = -20000000000LL; s < 20000000000LL; s += 9876543211LL / 100) {
        cal_seconds_to_civil(s, &c);
        assert_int_equal(cal_civil_to_seconds(&c), s);
    }
}

static void rfc3339_seconds(void **state)
{
    char b[40];
    assert_int_equal(rfc3339_format_s(0, b, sizeof(b)), 20);
    assert_string_equal(b, "1970-01-01T00:00:00Z");
    rfc3339_format_s(1772953200, b, sizeof(b));
    assert_string_equal(b, "2026-03-08T07:00:00Z");
    rfc3339_format_s(951782399, b, sizeof(b));
    assert_string_equal(b, "2000-02-28T23:59:59Z");
    rfc3339_format_s(-1, b, sizeof(b));
    assert_string_equal(b, "1969-12-31T23:59:59Z");
    assert_int_equal(rfc3339_format_s(0, b, 20), 0); /* no room for the NUL */
    int64_t ms;
    size_t n = rfc3339_format_s(1764547200, b, sizeof(b));
    assert_int_equal(rfc3339_parse_ms(b, n, &ms), 0);
    assert_int_equal(ms, 1764547200000LL);
    /* Out of the domain: clamped, still a timestamp. */
    assert_true(rfc3339_format_s(INT64_MAX, b, sizeof(b)) > 0);
    assert_true(rfc3339_format_s(INT64_MIN, b, sizeof(b)) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leap_years_and_month_lengths),
        cmocka_unit_test(known_day_numbers),
        cmocka_unit_test(day_numbers_both_ways),
        cmocka_unit_test(weekdays),
        cmocka_unit_test(floor_division),
        cmocka_unit_test(civil_times),
        cmocka_unit_test(rfc3339_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
