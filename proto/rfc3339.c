/*
 * rfc3339.c - RFC 3339 timestamps (section 5.6): strict parsing, UTC
 * formatting; dates are counted by proto/calendar.c.
 */
#include "proto/rfc3339.h"

#include <stdbool.h>
#include <stdio.h>

#include "proto/calendar.h"

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int rfc3339_parse_ms(const char *s, size_t n, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > cal_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (sec == 60)
        sec = 59; /* a leap second is the last instant of its minute */
    size_t i = 19;
    int frac_ms = 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return -1;
    }
    int offset_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    int64_t days = cal_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

size_t rfc3339_format_ms(int64_t ms, char *out, size_t cap)
{
    int64_t secs = cal_floor_div(ms, 1000);
    struct civil c;
    cal_seconds_to_civil(secs, &c);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month, c.day,
                     c.hour, c.minute, c.second, (int)(ms - secs * 1000));
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t rfc3339_format_s(int64_t s, char *out, size_t cap)
{
    struct civil c;
    if (s > RFC3339_S_MAX)
        s = RFC3339_S_MAX;
    else if (s < -RFC3339_S_MAX)
        s = -RFC3339_S_MAX;
    cal_seconds_to_civil(s, &c);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour,
                     c.minute, c.second);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
