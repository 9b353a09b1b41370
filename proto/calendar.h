/*
 * calendar.h - proleptic Gregorian calendar arithmetic, pure: the one
 * place dates become day numbers and back (cron, tzfile and rfc3339 all
 * count days through it).
 *
 * Day numbers count days since 1970-01-01 (negative before it). Years
 * are astronomical (year 0 is 1 BC). The conversions are exact for every
 * year whose day number fits an int64_t; callers that store a year in an
 * int clamp their inputs first (tzfile's instant domain does).
 */
#ifndef TRIREME_PROTO_CALENDAR_H
#define TRIREME_PROTO_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#define CAL_DAY_SECONDS   86400
#define CAL_EPOCH_WEEKDAY 4 /* 1970-01-01 was a Thursday */

/* A wall-clock date and time. wday is 0 for Sunday; it is an output only. */
struct civil {
    int year, month, day; /* month 1-12, day 1-31 */
    int hour, minute, second;
    int wday;
};

/* a / b rounded towards negative infinity (b != 0). */
static inline int64_t cal_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline bool cal_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days in month 1-12 of a year. */
static inline int cal_days_in_month(int64_t year, int month)
{
    static const uint8_t dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && cal_is_leap(year) ? 29 : dm[month - 1];
}

/* Days since 1970-01-01 of year-month-day (month 1-12, day 1-31). */
int64_t cal_days_from_civil(int64_t year, int month, int day);

/* The date of a day number. */
void cal_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* The weekday of a day number: 0 for Sunday .. 6 for Saturday. */
static inline int cal_weekday(int64_t days)
{
    return (int)((days % 7 + 7 + CAL_EPOCH_WEEKDAY) % 7);
}

/* Seconds since 1970-01-01T00:00 of a civil time read as UTC (wday not
 * read). A month outside 1-12 carries into the year, as mktime does. The
 * caller keeps the year within an int64_t day number. */
int64_t cal_civil_to_seconds(const struct civil *c);

/* The civil time (wday included) of seconds since 1970-01-01T00:00. The
 * caller keeps s within years an int holds. */
void cal_seconds_to_civil(int64_t s, struct civil *out);

#endif
