/*
 * test_tzfile.c - TZif parsing and zone arithmetic against the real
 * /usr/share/zoneinfo files (tzdata must be installed) and against glibc.
 *
 * glibc (setenv TZ + localtime_r) is the reference in the sweeps; only
 * this test uses it, proto/tzfile.c never does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "proto/tzfile.h"

#define ZONEINFO "/usr/share/zoneinfo/"

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, k;

    if (f == NULL)
        fail_msg("cannot open %s (is tzdata installed?)", path);
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* A zone parsed from its file; the caller frees it. */
static struct tz *load(const char *name)
{
    char path[256], err[128];
    size_t len;
    struct tz *z = malloc(sizeof(*z));
    uint8_t *data;

    assert_non_null(z);
    snprintf(path, sizeof(path), ZONEINFO "%s", name);
    data = read_all(path, &len);
    if (tzfile_parse(data, len, z, err, sizeof(err)) != 0)
        fail_msg("%s: %s", name, err);
    free(data);
    return z;
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct civil c = {y, mo, d, h, mi, s, 0};
    return tz_civil_to_seconds(&c);
}

static void use_libc_zone(const char *name)
{
    setenv("TZ", name, 1);
    tzset();
}

/* ---- calendar ------------------------------------------------------------ */

static void calendar_matches_libc(void **state)
{
    /* Every day from 1600 to 2500, and a few far ones, against timegm. */
    for (int64_t days = -135140; days <= 194000; days += 1) {
        int64_t y;
        int m, d;
        struct tm tm;
        time_t t = (time_t)(days * 86400 + 43210);
        struct civil c;

        tz_civil_from_days(days, &y, &m, &d);
        assert_int_equal(tz_days_from_civil(y, m, d), days);
        gmtime_r(&t, &tm);
        assert_int_equal(y, tm.tm_year + 1900);
        assert_int_equal(m, tm.tm_mon + 1);
        assert_int_equal(d, tm.tm_mday);
        tz_seconds_to_civil(t, &c);
        assert_int_equal(c.wday, tm.tm_wday);
        assert_int_equal(c.hour * 3600 + c.minute * 60 + c.second, 43210);
        assert_int_equal(tz_civil_to_seconds(&c), (int64_t)t);
    }
    assert_int_equal(utc(1970, 1, 1, 0, 0, 0), 0);
    assert_int_equal(utc(2026, 3, 8, 7, 0, 0), 1772953200);
    assert_int_equal(utc(2000, 2, 29, 0, 0, 0), 951782400);
    assert_int_equal(utc(2026, 13, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)); /* normalised */
    assert_int_equal(utc(2026, 3, 0, 0, 0, 0), utc(2026, 2, 28, 0, 0, 0));
    assert_true(tz_is_leap(2000) && tz_is_leap(2028) && !tz_is_leap(2100) && !tz_is_leap(2026));
    assert_int_equal(tz_days_in_month(2028, 2), 29);
    assert_int_equal(tz_days_in_month(2100, 2), 28);
    assert_int_equal(tz_days_in_month(2026, 4), 30);
}

/* ---- the zones of the brief ---------------------------------------------- */

static void expect_change(const struct tz *z, int64_t at, int64_t before, int64_t after)
{
    assert_int_equal(tz_utc_offset(z, at - 1), before);
    assert_int_equal(tz_utc_offset(z, at), after);
}

static void new_york_2026(void **state)
{
    struct tz *z = load("America/New_York");
    struct tz_info info;
    int64_t at;

    expect_change(z, 1772953200, -5 * 3600, -4 * 3600); /* 2026-03-08 07:00 UTC */
    expect_change(z, 1793512800, -4 * 3600, -5 * 3600); /* 2026-11-01 06:00 UTC */
    assert_int_equal(tz_next_transition(z, utc(2026, 1, 1, 0, 0, 0), &at), 0);
    assert_int_equal(at, 1772953200);
    assert_int_equal(tz_next_transition(z, at, &at), 0);
    assert_int_equal(at, 1793512800);
    assert_int_equal(tz_next_transition(z, 1772953199, &at), 0);
    assert_int_equal(at, 1772953200);

    tz_lookup(z, 1772953200, &info);
    assert_string_equal(info.abbr, "EDT");
    assert_true(info.isdst);
    tz_lookup(z, 1793512800, &info);
    assert_string_equal(info.abbr, "EST");
    assert_false(info.isdst);

    /* 1970: the table. New York kept DST (Apr 26 - Oct 25). */
    assert_int_equal(tz_utc_offset(z, 0), -5 * 3600);
    assert_int_equal(tz_utc_offset(z, utc(1970, 7, 1, 0, 0, 0)), -4 * 3600);
    expect_change(z, utc(1970, 4, 26, 7, 0, 0), -5 * 3600, -4 * 3600);
    /* 1883 and before: local mean time, -4:56:02. */
    assert_int_equal(tz_utc_offset(z, utc(1850, 1, 1, 0, 0, 0)), -17762);
    tz_lookup(z, utc(1850, 1, 1, 0, 0, 0), &info);
    assert_string_equal(info.abbr, "LMT");

    /* 2100: only the footer rule knows (second Sunday of March 2100 is the 14th). */
    expect_change(z, 4108690800, -5 * 3600, -4 * 3600);
    expect_change(z, 4129250400, -4 * 3600, -5 * 3600);
    assert_int_equal(tz_next_transition(z, utc(2100, 1, 1, 0, 0, 0), &at), 0);
    assert_int_equal(at, 4108690800);
    tz_lookup(z, 4108690800 + 86400, &info);
    assert_string_equal(info.abbr, "EDT");
    free(z);
}

static void berlin_2026(void **state)
{
    struct tz *z = load("Europe/Berlin");
    int64_t at;

    expect_change(z, 1774746000, 3600, 7200); /* 2026-03-29 01:00 UTC */
    expect_change(z, 1792890000, 7200, 3600); /* 2026-10-25 01:00 UTC */
    assert_int_equal(tz_next_transition(z, utc(2026, 1, 1, 0, 0, 0), &at), 0);
    assert_int_equal(at, 1774746000);
    assert_int_equal(tz_utc_offset(z, 0), 3600); /* 1970: no DST in West Germany */
    assert_int_equal(tz_utc_offset(z, utc(1970, 7, 1, 0, 0, 0)), 3600);
    /* 2100: last Sunday of March is the 28th, of October the 31st. */
    expect_change(z, utc(2100, 3, 28, 1, 0, 0), 3600, 7200);
    expect_change(z, utc(2100, 10, 31, 1, 0, 0), 7200, 3600);
    free(z);
}

static void utc_zone(void **state)
{
    struct tz *z = load("UTC");
    struct tz u;
    struct tz_info info;
    int64_t at, out[2];
    struct civil c;

    assert_int_equal(z->ntrans, 0);
    tz_init_utc(&u);
    for (int64_t t = -5000000000LL; t < 5000000000LL; t += 123456789) {
        assert_int_equal(tz_utc_offset(z, t), 0);
        assert_int_equal(tz_utc_offset(&u, t), 0);
        assert_int_equal(tz_utc_offset(NULL, t), 0);
        assert_int_equal(tz_local_seconds_to_utc(z, t, out), 1);
        assert_int_equal(out[0], t);
        assert_int_equal(tz_local_seconds_to_utc(NULL, t, out), 1);
        assert_int_equal(out[0], t);
    }
    assert_int_equal(tz_next_transition(z, 0, &at), -1);
    assert_int_equal(tz_next_transition(&u, 0, &at), -1);
    assert_int_equal(tz_next_transition(NULL, 0, &at), -1);
    tz_lookup(z, 0, &info);
    assert_string_equal(info.abbr, "UTC");
    tz_lookup(&u, 0, &info);
    assert_string_equal(info.abbr, "UTC");
    tz_utc_to_local(NULL, 1772953200, &c);
    assert_int_equal(c.year, 2026);
    assert_int_equal(c.hour, 7);
    assert_int_equal(c.wday, 0);
    free(z);
}

static void kolkata(void **state)
{
    struct tz *z = load("Asia/Kolkata");
    int64_t at, out[2];
    struct civil c = {2026, 3, 8, 2, 30, 0, 0};

    assert_int_equal(tz_utc_offset(z, utc(2026, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_utc_offset(z, utc(2026, 12, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_utc_offset(z, 0), 19800);
    assert_int_equal(tz_utc_offset(z, utc(2100, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_next_transition(z, utc(1990, 1, 1, 0, 0, 0), &at), -1);
    assert_int_equal(tz_local_to_utc(z, &c, out), 1);
    assert_int_equal(out[0], utc(2026, 3, 7, 21, 0, 0));
    free(z);
}

static void lord_howe(void **state)
{
    struct tz *z = load("Australia/Lord_Howe");
    int64_t out[2];
    struct civil gap = {2026, 10, 4, 2, 15, 0, 0}, overlap = {2026, 4, 5, 1, 45, 0, 0};
    struct civil normal = {2026, 4, 5, 2, 15, 0, 0};

    /* +11 in summer, +10:30 in winter: a 30-minute change. */
    expect_change(z, 1775314800, 11 * 3600, 10 * 3600 + 1800); /* 2026-04-04 15:00 UTC */
    expect_change(z, 1791041400, 10 * 3600 + 1800, 11 * 3600); /* 2026-10-03 15:30 UTC */
    assert_int_equal(tz_local_to_utc(z, &gap, out), 0);
    assert_int_equal(tz_local_to_utc(z, &overlap, out), 2);
    assert_int_equal(out[0], 1775314800 - 900);
    assert_int_equal(out[1], 1775314800 + 900);
    assert_int_equal(tz_local_to_utc(z, &normal, out), 1);
    assert_int_equal(out[0], 1775314800 + 2700);
    free(z);
}

static void local_to_utc_gaps_and_overlaps(void **state)
{
    struct tz *ny = load("America/New_York"), *be = load("Europe/Berlin");
    int64_t out[2] = {0, 0};
    struct civil c;

    c = (struct civil){2026, 3, 8, 2, 30, 0, 0}; /* skipped */
    assert_int_equal(tz_local_to_utc(ny, &c, out), 0);
    c = (struct civil){2026, 3, 8, 2, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 0);
    c = (struct civil){2026, 3, 8, 1, 59, 59, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 1);
    assert_int_equal(out[0], 1772953199);
    c = (struct civil){2026, 3, 8, 3, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 1);
    assert_int_equal(out[0], 1772953200);

    c = (struct civil){2026, 11, 1, 1, 30, 0, 0}; /* repeated */
    assert_int_equal(tz_local_to_utc(ny, &c, out), 2);
    assert_int_equal(out[0], utc(2026, 11, 1, 5, 30, 0));
    assert_int_equal(out[1], utc(2026, 11, 1, 6, 30, 0));
    c = (struct civil){2026, 11, 1, 1, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 2);
    c = (struct civil){2026, 11, 1, 2, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 1);
    assert_int_equal(out[0], 1793512800 + 3600);
    c = (struct civil){2026, 11, 1, 0, 59, 59, 0};
    assert_int_equal(tz_local_to_utc(ny, &c, out), 1);

    c = (struct civil){2026, 3, 29, 2, 30, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), 0);
    c = (struct civil){2026, 10, 25, 2, 30, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), 2);
    assert_int_equal(out[0], utc(2026, 10, 25, 0, 30, 0));
    assert_int_equal(out[1], utc(2026, 10, 25, 1, 30, 0));
    c = (struct civil){2026, 7, 1, 12, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), 1);
    assert_int_equal(out[0], utc(2026, 7, 1, 10, 0, 0));
    /* 2100: the footer's gap and overlap */
    c = (struct civil){2100, 3, 28, 2, 30, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), 0);
    c = (struct civil){2100, 10, 31, 2, 30, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), 2);

    /* invalid fields */
    c = (struct civil){2026, 2, 29, 0, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), -1);
    c = (struct civil){2026, 13, 1, 0, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), -1);
    c = (struct civil){2026, 1, 1, 24, 0, 0, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), -1);
    c = (struct civil){2026, 1, 1, 0, 0, 60, 0};
    assert_int_equal(tz_local_to_utc(be, &c, out), -1);

    tz_utc_to_local(ny, 1772953200, &c);
    assert_int_equal(c.year, 2026);
    assert_int_equal(c.month, 3);
    assert_int_equal(c.day, 8);
    assert_int_equal(c.hour, 3);
    assert_int_equal(c.minute, 0);
    assert_int_equal(c.wday, 0);
    free(ny);
    free(be);
}

/* ---- sweeps against glibc ------------------------------------------------ */

static const char *const sweep_zones[] = {
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "UTC",
    "Europe/Dublin",
    "America/Santiago",
    "Australia/Sydney",
    "Asia/Tehran",
    "America/St_Johns",
    "Pacific/Apia",
    "Africa/Casablanca",
    "Europe/London",
    "America/Sao_Paulo",
    "Antarctica/Troll",
    "Pacific/Chatham",
    "Asia/Gaza",
    "America/Godthab",
    "Pacific/Kiritimati",
};

/* Local seconds of a struct tm, by timegm: independent of tzfile.c. */
static int64_t tm_local(const struct tm *tm)
{
    struct tm copy = *tm;
    return (int64_t)timegm(&copy);
}

static void check_instant(const struct tz *z, int64_t t, const char *zone)
{
    time_t tt = (time_t)t;
    struct tm tm;
    struct tz_info info;
    struct civil c;

    localtime_r(&tt, &tm);
    tz_lookup(z, t, &info);
    if (info.utoff != tm.tm_gmtoff || info.isdst != (tm.tm_isdst > 0) ||
        strcmp(info.abbr, tm.tm_zone) != 0)
        fail_msg("%s at %lld: tzfile %d %d %s, glibc %ld %d %s", zone, (long long)t, info.utoff,
                 info.isdst, info.abbr, tm.tm_gmtoff, tm.tm_isdst, tm.tm_zone);
    tz_utc_to_local(z, t, &c);
    assert_int_equal(c.year, tm.tm_year + 1900);
    assert_int_equal(c.month, tm.tm_mon + 1);
    assert_int_equal(c.day, tm.tm_mday);
    assert_int_equal(c.hour, tm.tm_hour);
    assert_int_equal(c.minute, tm.tm_min);
    assert_int_equal(c.second, tm.tm_sec);
    assert_int_equal(c.wday, tm.tm_wday);
}

/* How many instants glibc shows wall-clock time `local` at, trying the
 * offsets in force on either side of a transition at `at`. */
static int libc_count(int64_t local, int64_t at)
{
    int64_t offs[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        time_t tt = (time_t)(at - 1 + i);
        struct tm tm;
        localtime_r(&tt, &tm);
        offs[i] = tm.tm_gmtoff;
    }
    for (int i = 0; i < 2; i++) {
        time_t tt = (time_t)(local - offs[i]);
        struct tm tm;
        if (i == 1 && offs[1] == offs[0])
            break;
        localtime_r(&tt, &tm);
        n += tm_local(&tm) == local;
    }
    return n;
}

static void sweep_against_glibc(void **state)
{
    const int64_t start = utc(1901, 1, 1, 0, 0, 0), end = utc(2200, 1, 1, 0, 0, 0);

    for (size_t k = 0; k < sizeof(sweep_zones) / sizeof(sweep_zones[0]); k++) {
        const char *zone = sweep_zones[k];
        struct tz *z = load(zone);
        int64_t t, at, ntrans = 0;

        use_libc_zone(zone);
        /* A stride that drifts through the hours of the day. */
        for (t = start; t < end; t += 86400 * 3 + 3607)
            check_instant(z, t, zone);
        /* Every transition: the offsets either side, glibc's own changes
         * found between ours (none missed), and wall-to-UTC counts. */
        for (t = start; tz_next_transition(z, t, &at) == 0 && at < end; t = at) {
            time_t mid = (time_t)(t + (at - t) / 2);
            struct tm a, b;
            localtime_r(&mid, &a);
            mid = (time_t)(at - 1);
            localtime_r(&mid, &b);
            if (a.tm_gmtoff != b.tm_gmtoff && at - t > 2 * 86400)
                fail_msg("%s: glibc changes offset between %lld and %lld", zone, (long long)t,
                         (long long)at);
            check_instant(z, at - 1, zone);
            check_instant(z, at, zone);
            int64_t lo = at + tz_utc_offset(z, at - 1), hi = at + tz_utc_offset(z, at);
            int64_t probes[] = {lo - 1, lo, (lo + hi) / 2, hi - 1, hi, hi + 1};
            for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                int64_t out[2];
                int n = tz_local_seconds_to_utc(z, probes[i], out);
                if (n != libc_count(probes[i], at))
                    fail_msg("%s: %lld local: %d instants, glibc %d", zone, (long long)probes[i], n,
                             libc_count(probes[i], at));
                for (int j = 0; j < n; j++)
                    assert_int_equal(out[j] + tz_utc_offset(z, out[j]), probes[i]);
                if (n == 2)
                    assert_true(out[0] < out[1]);
            }
            ntrans++;
        }
        if (strcmp(zone, "UTC") != 0 && strcmp(zone, "Asia/Kolkata") != 0 &&
            strcmp(zone, "Pacific/Kiritimati") != 0)
            assert_true(ntrans > 10);
        free(z);
    }
    unsetenv("TZ");
    tzset();
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

static void posix_strings_against_glibc(void **state)
{
    static const char *const rules[] = {
        "EST5EDT,M3.2.0,M11.1.0",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "IST-1GMT0,M10.5.0,M3.5.0/1",          /* negative DST (Dublin) */
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",    /* negative rule times (Nuuk) */
        "AAA3BBB,J60/0,J300/25",               /* Julian, no leap day; hour 25 */
        "CCC-2DDD,100/1,250/30:30",            /* zero-based days */
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",     /* 24:00 (Santiago) */
        "EEE5FFF4:30,M3.5.0/-100,M10.5.5/167", /* extreme v3 hours */
        "PST8PDT",                             /* DST without rules: US rules */
        "NZST-12NZDT,M9.5.0,M4.1.0/3",
        "GGG0HHH,M1.1.0/0,M12.5.6/23:59:59",
    };
    for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++) {
        struct tz z;
        char err[128];
        if (tz_from_posix(rules[k], strlen(rules[k]), &z, err, sizeof(err)) != 0)
            fail_msg("%s: %s", rules[k], err);
        use_libc_zone(rules[k]);
        for (int64_t t = utc(2019, 1, 1, 0, 0, 0); t < utc(2031, 1, 1, 0, 0, 0); t += 7 * 3600 + 13)
            check_instant(&z, t, rules[k]);
        int64_t t = utc(2020, 1, 1, 0, 0, 0), at;
        for (int i = 0; i < 16 && tz_next_transition(&z, t, &at) == 0; i++, t = at) {
            check_instant(&z, at - 1, rules[k]);
            check_instant(&z, at, rules[k]);
        }
    }
    unsetenv("TZ");
    tzset();
}

static void posix_all_year_dst(void **state)
{
    struct tz z;
    int64_t at;

    assert_int_equal(tz_from_posix("EST5EDT,0/0,J365/25", 19, &z, NULL, 0), 0);
    for (int64_t t = utc(2020, 1, 1, 0, 0, 0); t < utc(2030, 1, 1, 0, 0, 0); t += 3599)
        assert_int_equal(tz_utc_offset(&z, t), -4 * 3600);
    assert_int_equal(tz_next_transition(&z, utc(2026, 1, 1, 0, 0, 0), &at), -1);
    assert_int_equal(tz_from_posix("JST-9", 5, &z, NULL, 0), 0);
    assert_int_equal(tz_utc_offset(&z, 0), 9 * 3600);
    assert_int_equal(tz_next_transition(&z, 0, &at), -1);
}

static void posix_errors(void **state)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"", "at least 3 characters"},
        {"ES5", "at least 3 characters"},
        {"EST", "expected a UTC offset"},
        {"EST25", "hours of an offset must be 0-24"},
        {"EST5:60", "minutes must be 0-59"},
        {"<EST5", "closed with '>'"},
        {"EST5EDT,M3.2.0", "expected ',' before the end rule"},
        {"EST5EDT,M13.2.0,M11.1.0", "month 1-12"},
        {"EST5EDT,M3.6.0,M11.1.0", "week 1-5"},
        {"EST5EDT,M3.2.7,M11.1.0", "weekday 0-6"},
        {"EST5EDT,J0,J100", "Jn needs a day 1-365"},
        {"EST5EDT,366,J100", "n needs a day 0-365"},
        {"EST5EDT,M3.2.0/168,M11.1.0", "0-167"},
        {"EST5EDT,M3.2.0,M11.1.0x", "unexpected text"},
        {"EST5EDT;", "expected a UTC offset or a time"},
        {"EST5EDT4;", "expected ',' before the start rule"},
        {"ABCDEFGHIJKLMNOPQ5", "at most 15"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tz z;
        char err[160] = "";
        assert_int_equal(tz_from_posix(bad[i].s, strlen(bad[i].s), &z, err, sizeof(err)), -1);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("\"%s\": got \"%s\", wanted \"%s\"", bad[i].s, err, bad[i].why);
    }
}

/* ---- synthetic TZif files ------------------------------------------------ */

struct tzif {
    uint8_t buf[70000];
    size_t len;
};

static void put32(struct tzif *f, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        f->buf[f->len++] = (uint8_t)(v >> (8 * i));
}

static void put64(struct tzif *f, uint64_t v)
{
    put32(f, (uint32_t)(v >> 32));
    put32(f, (uint32_t)v);
}

struct zdesc {
    char version; /* 0, '2', '3', '4' */
    uint32_t ntrans, ntypes, leapcnt;
    const int64_t *times;
    const uint8_t *idx;
    const int32_t *utoff;
    const uint8_t *isdst;
    const uint8_t *abbr;
    const char *chars;
    uint32_t charcnt;
    const char *footer; /* with its newlines, or NULL */
};

static void header(struct tzif *f, const struct zdesc *d)
{
    memcpy(f->buf + f->len, "TZif", 4);
    f->len += 4;
    f->buf[f->len++] = (uint8_t)d->version;
    memset(f->buf + f->len, 0, 15);
    f->len += 15;
    put32(f, 0);
    put32(f, 0);
    put32(f, d->leapcnt);
    put32(f, d->ntrans);
    put32(f, d->ntypes);
    put32(f, d->charcnt);
}

static void block(struct tzif *f, const struct zdesc *d, int tsize)
{
    for (uint32_t i = 0; i < d->ntrans; i++) {
        if (tsize == 8)
            put64(f, (uint64_t)d->times[i]);
        else
            put32(f, (uint32_t)(int32_t)d->times[i]);
    }
    for (uint32_t i = 0; i < d->ntrans; i++)
        f->buf[f->len++] = d->idx[i];
    for (uint32_t i = 0; i < d->ntypes; i++) {
        put32(f, (uint32_t)d->utoff[i]);
        f->buf[f->len++] = d->isdst[i];
        f->buf[f->len++] = d->abbr[i];
    }
    memcpy(f->buf + f->len, d->chars, d->charcnt);
    f->len += d->charcnt;
    for (uint32_t i = 0; i < d->leapcnt; i++) {
        if (tsize == 8)
            put64(f, 78796800);
        else
            put32(f, 78796800);
        put32(f, 1);
    }
}

static void build(struct tzif *f, const struct zdesc *d)
{
    f->len = 0;
    header(f, d);
    block(f, d, 4);
    if (d->version == 0)
        return;
    header(f, d);
    block(f, d, 8);
    if (d->footer != NULL) {
        memcpy(f->buf + f->len, d->footer, strlen(d->footer));
        f->len += strlen(d->footer);
    }
}

static const int64_t two_times[] = {1000000000, 1100000000};
static const uint8_t two_idx[] = {1, 0};
static const int32_t two_utoff[] = {3600, 7200};
static const uint8_t two_isdst[] = {0, 1};
static const uint8_t two_abbr[] = {0, 4};

static struct zdesc good(void)
{
    return (struct zdesc){'2',       2,         2,        0,          two_times, two_idx,
                          two_utoff, two_isdst, two_abbr, "AAA\0BBB", 8,         "\nAAA-1\n"};
}

static void synthetic_files(void **state)
{
    static struct tzif f;
    struct tz z;
    struct zdesc d = good();
    char err[160];

    build(&f, &d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), 0);
    assert_int_equal(tz_utc_offset(&z, 999999999), 3600); /* type 0 before the first */
    assert_int_equal(tz_utc_offset(&z, 1000000000), 7200);
    assert_int_equal(tz_utc_offset(&z, 1099999999), 7200);
    assert_int_equal(tz_utc_offset(&z, 1100000000), 3600); /* the footer */

    /* version 1: 32-bit data only, no footer, the last type stays */
    d.version = 0;
    build(&f, &d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), 0);
    assert_false(z.has_footer);
    assert_int_equal(tz_utc_offset(&z, 1000000000), 7200);
    assert_int_equal(tz_utc_offset(&z, 2000000000), 3600);

    /* versions 3 and 4 and an empty footer */
    d = good();
    d.version = '4';
    d.footer = "\n\n";
    build(&f, &d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), 0);
    assert_false(z.has_footer);

    /* a "big bang" transition before the domain says what holds first */
    static const int64_t bang[] = {-((int64_t)1 << 59), 1000000000};
    static const uint8_t bang_idx[] = {1, 0};
    d = good();
    d.times = bang;
    d.idx = bang_idx;
    build(&f, &d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), 0);
    assert_int_equal(z.ntrans, 1);
    assert_int_equal(tz_utc_offset(&z, 0), 7200);
    assert_int_equal(tz_utc_offset(&z, 1000000000), 3600);
}

static void expect_error(const struct zdesc *d, const char *why)
{
    static struct tzif f;
    struct tz z;
    char err[160] = "";

    build(&f, d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), -1);
    if (strstr(err, why) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err, why);
}

static void rejected_files(void **state)
{
    static struct tzif f;
    static int64_t many[TZ_MAX_TRANSITIONS + 1];
    static uint8_t many_idx[TZ_MAX_TRANSITIONS + 1];
    static int32_t utoffs[TZ_MAX_TYPES + 1];
    static uint8_t zeros[TZ_MAX_TYPES + 1];
    struct zdesc d;
    struct tz z;
    char err[160] = "";

    assert_int_equal(tzfile_parse((const uint8_t *)"", 0, &z, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(tzfile_parse((const uint8_t *)"TZjf2...", 8, &z, NULL, 0), -1);

    d = good();
    build(&f, &d);
    memcpy(f.buf, "TZjf", 4);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "magic"));
    for (size_t cut = 0; cut < f.len; cut++) { /* every truncation fails cleanly */
        build(&f, &d);
        assert_int_equal(tzfile_parse(f.buf, cut, &z, err, sizeof(err)), -1);
    }

    for (int i = 0; i <= TZ_MAX_TRANSITIONS; i++)
        many[i] = 1000000 + i;
    d = good();
    d.ntrans = TZ_MAX_TRANSITIONS + 1;
    d.times = many;
    d.idx = many_idx;
    expect_error(&d, "2001 transitions, more than TZ_MAX_TRANSITIONS (2000)");
    d.ntrans = TZ_MAX_TRANSITIONS;
    build(&f, &d);
    assert_int_equal(tzfile_parse(f.buf, f.len, &z, err, sizeof(err)), 0);

    d = good();
    d.ntypes = TZ_MAX_TYPES + 1;
    d.utoff = utoffs;
    d.isdst = zeros;
    d.abbr = zeros;
    expect_error(&d, "65 local time types, more than TZ_MAX_TYPES (64)");

    d = good();
    d.leapcnt = 1;
    expect_error(&d, "leap-second");
    d = good();
    d.version = '1';
    expect_error(&d, "unknown TZif version");
    d = good();
    d.footer = NULL;
    expect_error(&d, "missing footer");
    d.footer = "\nAAA-1";
    expect_error(&d, "footer not terminated");
    d.footer = "\nAAA-1\nxx";
    expect_error(&d, "2 bytes after the footer");
    d.footer = "\nAAA-1BBB,M13.1.0,M1.1.0\n";
    expect_error(&d, "footer TZ string \"AAA-1BBB,M13.1.0,M1.1.0\": Mm.w.d needs a month 1-12");

    static const int64_t desc[] = {1100000000, 1000000000};
    d = good();
    d.times = desc;
    expect_error(&d, "transition 1: times are not in ascending order");
    static const uint8_t bad_idx[] = {0, 2};
    d = good();
    d.idx = bad_idx;
    expect_error(&d, "transition 1: type 2, but there are only 2 types");
    static const int32_t bad_utoff[] = {3600, 26 * 3600};
    d = good();
    d.utoff = bad_utoff;
    expect_error(&d, "type 1: UTC offset 93600 s");
    static const uint8_t bad_dst[] = {0, 2};
    d = good();
    d.isdst = bad_dst;
    expect_error(&d, "type 1: isdst is 2");
    static const uint8_t bad_abbr[] = {0, 9};
    d = good();
    d.abbr = bad_abbr;
    expect_error(&d, "type 1: abbreviation index 9");
    d = good();
    d.charcnt = 7;
    d.abbr = (const uint8_t[]){0, 4};
    d.chars = "AAA\0BBB"; /* "BBB" loses its NUL */
    expect_error(&d, "type 1: abbreviation index 4 is not a NUL-terminated string");
    d = good();
    d.ntypes = 0;
    expect_error(&d, "no local time types");
    static const int64_t far[] = {1000000000, (int64_t)1 << 60};
    d = good();
    d.times = far;
    expect_error(&d, "transition 1: time");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calendar_matches_libc),
        cmocka_unit_test(new_york_2026),
        cmocka_unit_test(berlin_2026),
        cmocka_unit_test(utc_zone),
        cmocka_unit_test(kolkata),
        cmocka_unit_test(lord_howe),
        cmocka_unit_test(local_to_utc_gaps_and_overlaps),
        cmocka_unit_test(sweep_against_glibc),
        cmocka_unit_test(posix_strings_against_glibc),
        cmocka_unit_test(posix_all_year_dst),
        cmocka_unit_test(posix_errors),
        cmocka_unit_test(synthetic_files),
        cmocka_unit_test(rejected_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
