/*
 * calendar.c - proleptic Gregorian day arithmetic (see calendar.h).
 *
 * days_from_civil and civil_from_days are Howard Hinnant's algorithms:
 * the year is taken to start in March, so the leap day is the last day
 * of a year and month lengths follow the 153-days-per-5-months pattern;
 * a 400-year era has exactly 146097 days.
 */
#include "proto/calendar.h"

#define DAYS_PER_ERA      146097 /* days in 400 Gregorian years */
#define DAYS_0000_TO_1970 719468 /* from 0000-03-01 to 1970-01-01 */

int64_t cal_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * DAYS_PER_ERA + doe - DAYS_0000_TO_1970;
}

void cal_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + DAYS_0000_TO_1970;
    int64_t era = (z >= 0 ? z : z - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
    int64_t doe = z - era * DAYS_PER_ERA;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

int64_t cal_civil_to_seconds(const struct civil *c)
{
    int64_t m0 = (int64_t)c->month - 1, y = c->year + cal_floor_div(m0, 12);
    int m = (int)(m0 - cal_floor_div(m0, 12) * 12) + 1;
    int64_t days = cal_days_from_civil(y, m, 1) + (int64_t)c->day - 1;
    return days * CAL_DAY_SECONDS + (int64_t)c->hour * 3600 + (int64_t)c->minute * 60 + c->second;
}

void cal_seconds_to_civil(int64_t s, struct civil *out)
{
    int64_t days = cal_floor_div(s, CAL_DAY_SECONDS), y;
    int64_t sod = s - days * CAL_DAY_SECONDS;
    cal_civil_from_days(days, &y, &out->month, &out->day);
    out->year = (int)y;
    out->hour = (int)(sod / 3600);
    out->minute = (int)(sod / 60 % 60);
    out->second = (int)(sod % 60);
    out->wday = cal_weekday(days);
}
