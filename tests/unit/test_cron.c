/*
 * test_cron.c - cron expressions: every syntax element and rejection, next
 * fire times across month, year and leap-year boundaries, @every anchoring,
 * daylight-saving changes in real zones (tzdata must be installed), and
 * brute-force cross-checks: minute by minute in UTC, and in DST zones
 * against a reference built on glibc's localtime_r (test only).
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

#include "proto/cron.h"
#include "proto/tzfile.h"

#define ALL60     ((((uint64_t)1) << 60) - 1)
#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static struct cron P(const char *expr) {
    struct cron c;
    char err[CRON_ERR_LEN];
    if (cron_parse(expr, &c, err, sizeof(err)) != 0)
        fail_msg("\"%s\": %s", expr, err);
    return c;
}

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct civil c = {y, mo, d, h, mi, s, 0};
    return tz_civil_to_seconds(&c);
}

static int64_t next_of(const struct cron *c, const struct tz *z, int64_t after)
{
    int64_t n = 0;
    if (cron_next(c, z, after, 0, &n) != 0)
        return -1;
    assert_true(n > after);
    return n;
}

/* Next fire of an expression in UTC after a UTC date. */
static int64_t next_utc(const char *expr, int64_t after)
{
    struct cron c = P(expr);
    return next_of(&c, NULL, after);
}

static struct tz *load(const char *name)
{
    char path[256], err[128];
    static uint8_t buf[1 << 16];
    struct tz *z = malloc(sizeof(*z));
    FILE *f;
    size_t n;

    assert_non_null(z);
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (is tzdata installed?)", path);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (tzfile_parse(buf, n, z, err, sizeof(err)) != 0)
        fail_msg("%s: %s", name, err);
    return z;
}

static uint64_t bits(const int *v, int n)
{
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        m |= (uint64_t)1 << v[i];
    return m;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* ---- parsing ------------------------------------------------------------- */

static void parse_fields(void **state)
{
    struct cron c;

    c = P("* * * * *");
    assert_true(c.second == 1 && c.minute == ALL60 && c.hour == 0xffffff);
    assert_true(c.dom == 0xfffffffe && c.month == 0x1ffe && c.dow == 0x7f);
    assert_int_equal(c.flags, CRON_DOM_STAR | CRON_DOW_STAR);
    assert_int_equal(c.every, 0);

    c = P("*/15 9-17 1,15 */3 1-5");
    assert_true(c.minute == BITS(0, 15, 30, 45));
    assert_true(c.hour == BITS(9, 10, 11, 12, 13, 14, 15, 16, 17));
    assert_true(c.dom == BITS(1, 15));
    assert_true(c.month == BITS(1, 4, 7, 10));
    assert_true(c.dow == BITS(1, 2, 3, 4, 5));
    assert_int_equal(c.flags, 0);

    c = P("10-40/10 0-23/6 5/10 2-11/3 0-6/2");
    assert_true(c.minute == BITS(10, 20, 30, 40));
    assert_true(c.hour == BITS(0, 6, 12, 18));
    assert_true(c.dom == BITS(5, 15, 25));
    assert_true(c.month == BITS(2, 5, 8, 11));
    assert_true(c.dow == BITS(0, 2, 4, 6));

    c = P("50/3 22/1 * * *"); /* a/n runs to the field's end */
    assert_true(c.minute == BITS(50, 53, 56, 59));
    assert_true(c.hour == BITS(22, 23));

    c = P("1,2,3-5,7-9/2,59 0 * * *");
    assert_true(c.minute == BITS(1, 2, 3, 4, 5, 7, 9, 59));

    /* tabs and surrounding white space */
    c = P("  \t5\t4 3 2 1  \n");
    assert_true(c.minute == BITS(5) && c.hour == BITS(4) && c.dom == BITS(3));
    assert_true(c.month == BITS(2) && c.dow == BITS(1));
}

static void parse_names(void **state)
{
    struct cron c, d;

    c = P("0 0 * jan-mar mon-fri");
    assert_true(c.month == BITS(1, 2, 3) && c.dow == BITS(1, 2, 3, 4, 5));
    d = P("0 0 * JAN-Mar MoN-FRI");
    assert_memory_equal(&c, &d, sizeof(c));
    c = P("0 0 * jan,apr,jul,oct sun,sat");
    assert_true(c.month == BITS(1, 4, 7, 10) && c.dow == BITS(0, 6));
    c = P("0 0 * feb-dec/2 *");
    assert_true(c.month == BITS(2, 4, 6, 8, 10, 12));
    c = P("0 0 * jan/3 tue/2"); /* a name may start a/n */
    assert_true(c.month == BITS(1, 4, 7, 10) && c.dow == BITS(2, 4, 6));
    for (int m = 0; m < 12; m++) {
        static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
        char e[32];
        snprintf(e, sizeof(e), "0 0 1 %s *", names[m]);
        c = P(e);
        assert_true(c.month == BITS(m + 1));
    }
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int w = 0; w < 7; w++) {
        char e[32];
        snprintf(e, sizeof(e), "0 0 * * %s", days[w]);
        c = P(e);
        assert_true(c.dow == BITS(w));
    }
}

static void parse_sunday(void **state)
{
    assert_true(P("0 0 * * 0").dow == BITS(0));
    assert_true(P("0 0 * * 7").dow == BITS(0));
    assert_true(P("0 0 * * 5-7").dow == BITS(0, 5, 6));
    assert_true(P("0 0 * * fri-sun").dow == BITS(0, 5, 6));
    assert_true(P("0 0 * * sat-7").dow == BITS(0, 6));
    assert_true(P("0 0 * * 0-7").dow == 0x7f);
    assert_true(P("0 0 * * */7").dow == BITS(0));
}

static void parse_seconds(void **state)
{
    struct cron c = P("*/20 30 2 * * *");
    assert_true(c.second == BITS(0, 20, 40));
    assert_true(c.minute == BITS(30) && c.hour == BITS(2));
    assert_true(c.flags & CRON_SECONDS);
    c = P("0 0 12 * * mon");
    assert_true(c.second == 1 && c.minute == 1 && c.hour == BITS(12) && c.dow == BITS(1));
    c = P("30 2 * * *");
    assert_true(c.second == 1);
    assert_false(c.flags & CRON_SECONDS);
}

static void parse_macros(void **state)
{
    static const struct {
        const char *macro, *same;
    } m[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},  {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},     {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"  @DAILY  ", "0 0 * * *"}, {"@Hourly", "0 * * * *"},
    };
    for (size_t i = 0; i < NCASES(m); i++) {
        struct cron a = P(m[i].macro), b = P(m[i].same);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

static void parse_every(void **state)
{
    static const struct {
        const char *expr;
        int64_t secs;
    } ok[] = {
        {"@every 90s", 90},
        {"@every 5m", 300},
        {"@every 1h30m", 5400},
        {"@every 1h", 3600},
        {"@every 1s", 1},
        {"@every 2h45m30s", 9930},
        {"@EVERY 10M", 600},
        {"@every 36h", 129600},
        {" @every  15m  ", 900},
        {"@every 30s1m", 90},
        {"@every 87840h", 316224000},
    };
    for (size_t i = 0; i < NCASES(ok); i++) {
        struct cron c = P(ok[i].expr);
        assert_int_equal(c.flags, CRON_EVERY);
        assert_int_equal(c.every, ok[i].secs);
    }
}

static void parse_errors(void **state)
{
    static const struct {
        const char *expr, *err;
    } bad[] = {
        {"", "expected 5 or 6 fields, got 0"},
        {"* * * *", "expected 5 or 6 fields, got 4"},
        {"* * * * * * *", "expected 5 or 6 fields, got 7"},
        {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
        {"0 25 * * *", "field 2 (hour): 25 is out of range 0-23"},
        {"0 0 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
        {"0 0 32 * *", "field 3 (day of month): 32 is out of range 1-31"},
        {"0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"},
        {"0 0 * 0 *", "field 4 (month): 0 is out of range 1-12"},
        {"0 0 * * 8", "field 5 (day of week): 8 is out of range 0-7"},
        {"0 99999999999 * * *", "field 2 (hour): 99999999999 is out of range 0-23"},
        {"0 0 * * fry", "field 5 (day of week): unknown name 'fry'"},
        {"0 0 * * monday", "field 5 (day of week): unknown name 'monday'"},
        {"0 0 * foo *", "field 4 (month): unknown name 'foo'"},
        {"0 0 * * jan", "field 5 (day of week): unknown name 'jan'"},
        {"0 jan * * *", "field 2 (hour): 'jan' is not a number"},
        {"*/0 * * * *", "field 1 (minute): step 0 is out of range 1-60"},
        {"*/61 * * * *", "field 1 (minute): step 61 is out of range 1-60"},
        {"0 */25 * * *", "field 2 (hour): step 25 is out of range 1-24"},
        {"0 0 * * */8", "field 5 (day of week): step 8 is out of range 1-7"},
        {"*/x * * * *", "field 1 (minute): step 'x' is not a number"},
        {"*/ * * * *", "field 1 (minute): missing step after '/'"},
        {"/5 * * * *", "field 1 (minute): missing value before '/'"},
        {"30-10 * * * *", "field 1 (minute): range '30-10' ends before it starts"},
        {"0 0 * * fri-mon", "field 5 (day of week): range 'fri-mon' ends before it starts"},
        {"-5 * * * *", "field 1 (minute): missing range start before '-'"},
        {"5- * * * *", "field 1 (minute): missing range end after '-'"},
        {"1,,2 * * * *", "field 1 (minute): empty item in a list"},
        {"0 1, * * *", "field 2 (hour): empty item in a list"},
        {"*5 * * * *", "field 1 (minute): unexpected character '*'"},
        {"5? * * * *", "field 1 (minute): unexpected character '?' in '5?'"},
        {"0 0 ? * *", "field 3 (day of month): unexpected character '?'"},
        {"0 0 L * *", "field 3 (day of month): 'L' is not a number"},
        {"1-2-3 * * * *", "field 1 (minute): unexpected character '-' in '2-3'"},
        {"0 0 30 2 *", "field 3 (day of month): never fires: February has at most 29 days"},
        {"0 0 30,31 2 *", "field 3 (day of month): never fires: February has at most 29 days"},
        {"0 0 31 4,6,9,11 *", "field 3 (day of month): never fires: April, June, September "
                              "and November have at most 30 days"},
        {"0 0 31 2,4 *", "never fires: February and April have fewer than 31 days"},
        {"0 0 31 2 */7", "never fires: February has at most 29 days"},
        {"60 0 0 * * *", "field 1 (second): 60 is out of range 0-59"},
        {"0 60 0 * * *", "field 2 (minute): 60 is out of range 0-59"},
        {"0 0 25 * * *", "field 3 (hour): 25 is out of range 0-23"},
        {"0 0 0 30 feb *", "field 4 (day of month): never fires: February has at most 29 days"},
        {"0 0 0 * * fry", "field 6 (day of week): unknown name 'fry'"},
        {"@every", "@every: missing duration"},
        {"@every 500ms", "units below a second are not allowed (minimum 1s)"},
        {"@every 1.5h", "fractions are not supported"},
        {"@every 0s", "shorter than the minimum of 1s"},
        {"@every 0h0m", "shorter than the minimum of 1s"},
        {"@every 90", "missing unit"},
        {"@every 2d", "unknown unit 'd' (use h, m or s)"},
        {"@every -5m", "expected a number"},
        {"@every 87841h", "longer than the maximum of 87840h"},
        {"@every 99999999999999999999s", "longer than the maximum"},
        {"@every 5m extra", "unexpected text after @every 5m: 'extra'"},
        {"@daily 5", "unexpected text after @daily: '5'"},
        {"@fortnightly", "unknown macro '@fortnightly'"},
        {"@", "unknown macro '@'"},
        {"@reboot", "@reboot is not a schedule"},
        {"\x01 * * * *", "field 1 (minute): unexpected character '?'"},
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        struct cron c;
        char err[CRON_ERR_LEN] = "";
        if (cron_parse(bad[i].expr, &c, err, sizeof(err)) != -1)
            fail_msg("\"%s\" parsed", bad[i].expr);
        if (strstr(err, bad[i].err) == NULL)
            fail_msg("\"%s\": got \"%s\", wanted \"%s\"", bad[i].expr, err, bad[i].err);
        assert_true(strlen(err) < CRON_ERR_LEN - 1); /* not truncated */
    }
    /* a short buffer truncates, NULL is allowed */
    struct cron c;
    char small[8];
    assert_int_equal(cron_parse("0 25 * * *", &c, small, sizeof(small)), -1);
    assert_string_equal(small, "field 2");
    assert_int_equal(cron_parse("0 25 * * *", &c, NULL, 0), -1);
    assert_int_equal(cron_parse(NULL, &c, NULL, 0), -1);
    /* The day of week can stand in for a missing day of month (OR rule). */
    c = P("0 0 30 2 mon");
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 1, 0, 0, 0)), utc(2026, 2, 2, 0, 0, 0));
}

static void fixed_time_flag(void **state)
{
    static const struct {
        const char *expr;
        bool fixed;
    } f[] = {
        {"30 2 * * *", true},      {"0 9,17 * * 1-5", true},  {"@daily", true},
        {"@weekly", true},         {"@monthly", true},        {"@yearly", true},
        {"0 0 29 2 *", true},      {"0 0 0 * * *", true},     {"0 1,2 * * *", true},
        {"0-59/5 2 * * *", true},  {"*/15 * * * *", false},   {"@hourly", false},
        {"0 * * * *", false},      {"0 */2 * * *", false},    {"0 1-3 * * *", false},
        {"0 0-23/2 * * *", false}, {"* 2 * * *", false},      {"*/10 30 2 * * *", false},
        {"15 3/4 * * *", false},   {"0 2,*/12 * * *", false}, {"@every 1h", false},
    };
    for (size_t i = 0; i < NCASES(f); i++) {
        struct cron c = P(f[i].expr);
        if (!!(c.flags & CRON_FIXED) != f[i].fixed)
            fail_msg("\"%s\": fixed should be %d", f[i].expr, f[i].fixed);
    }
}

/* ---- next fire in UTC ---------------------------------------------------- */

static void vixie_or_rule(void **state)
{
    struct cron c = P("0 0 13 * 5"); /* the 13th, and every Friday */
    int64_t t = utc(2026, 2, 1, 0, 0, 0);
    const int64_t want[] = {utc(2026, 2, 6, 0, 0, 0),  utc(2026, 2, 13, 0, 0, 0),
                            utc(2026, 2, 20, 0, 0, 0), utc(2026, 2, 27, 0, 0, 0),
                            utc(2026, 3, 6, 0, 0, 0),  utc(2026, 3, 13, 0, 0, 0)};
    for (size_t i = 0; i < NCASES(want); i++)
        assert_int_equal(t = next_of(&c, NULL, t), want[i]); /* Feb 13 is a Friday too */

    /* A `*` on either side: both must match (odd days that are Mondays). */
    c = P("0 0 */2 * mon");
    t = utc(2026, 1, 1, 0, 0, 0);
    assert_int_equal(t = next_of(&c, NULL, t), utc(2026, 1, 5, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2026, 1, 19, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2026, 2, 9, 0, 0, 0));
    c = P("0 0 1 * */7"); /* the 1st when it is a Sunday */
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 1, 0, 0, 0)), utc(2026, 2, 1, 0, 0, 0));
    assert_int_equal(next_of(&c, NULL, utc(2026, 2, 1, 0, 0, 0)), utc(2026, 3, 1, 0, 0, 0));
    assert_int_equal(next_of(&c, NULL, utc(2026, 3, 1, 0, 0, 0)), utc(2026, 11, 1, 0, 0, 0));
    c = P("0 0 * * mon"); /* day of month `*`: just Mondays */
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 5, 0, 0, 0));
    c = P("0 0 1 * *");
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 1, 0, 0, 0)), utc(2026, 2, 1, 0, 0, 0));
}

static void next_plain(void **state)
{
    assert_int_equal(next_utc("*/5 * * * *", utc(2026, 5, 5, 12, 3, 0)), utc(2026, 5, 5, 12, 5, 0));
    assert_int_equal(next_utc("*/5 * * * *", utc(2026, 5, 5, 12, 5, 0)),
                     utc(2026, 5, 5, 12, 10, 0)); /* strictly after */
    assert_int_equal(next_utc("*/5 * * * *", utc(2026, 5, 5, 12, 4, 59)),
                     utc(2026, 5, 5, 12, 5, 0));
    assert_int_equal(next_utc("* * * * *", utc(2026, 5, 5, 12, 4, 30)), utc(2026, 5, 5, 12, 5, 0));
    assert_int_equal(next_utc("0 9 * * 1-5", utc(2026, 5, 8, 9, 0, 0)), /* Friday */
                     utc(2026, 5, 11, 9, 0, 0));
    assert_int_equal(next_utc("30 8 * * *", utc(2026, 5, 5, 8, 29, 59)), utc(2026, 5, 5, 8, 30, 0));
    assert_int_equal(next_utc("30 8 * * *", utc(2026, 5, 5, 8, 30, 0)), utc(2026, 5, 6, 8, 30, 0));
    assert_int_equal(next_utc("15 14 1 * *", utc(2026, 5, 5, 0, 0, 0)), utc(2026, 6, 1, 14, 15, 0));
    assert_int_equal(next_utc("0 22 * * 1-5", utc(2026, 5, 5, 23, 0, 0)),
                     utc(2026, 5, 6, 22, 0, 0));
    assert_int_equal(next_utc("23 0-20/2 * * *", utc(2026, 5, 5, 20, 23, 0)),
                     utc(2026, 5, 6, 0, 23, 0));
    assert_int_equal(next_utc("5 4 * * sun", utc(2026, 5, 5, 0, 0, 0)), utc(2026, 5, 10, 4, 5, 0));
    assert_int_equal(next_utc("0 0,12 1 */2 *", utc(2026, 5, 5, 0, 0, 0)),
                     utc(2026, 7, 1, 0, 0, 0));
    /* before 1970 and far ahead */
    assert_int_equal(next_utc("0 12 * * *", utc(1969, 12, 31, 13, 0, 0)),
                     utc(1970, 1, 1, 12, 0, 0));
    assert_int_equal(next_utc("0 0 1 1 *", utc(1066, 10, 14, 0, 0, 0)), utc(1067, 1, 1, 0, 0, 0));
    assert_int_equal(next_utc("0 0 1 1 *", utc(9000, 6, 1, 0, 0, 0)), utc(9001, 1, 1, 0, 0, 0));
}

static void rollovers(void **state)
{
    assert_int_equal(next_utc("0 0 1 1 *", utc(2026, 12, 31, 23, 59, 59)),
                     utc(2027, 1, 1, 0, 0, 0));
    assert_int_equal(next_utc("59 23 31 12 *", utc(2026, 12, 31, 23, 59, 0)),
                     utc(2027, 12, 31, 23, 59, 0));
    assert_int_equal(next_utc("* * * * *", utc(2026, 12, 31, 23, 59, 0)), utc(2027, 1, 1, 0, 0, 0));
    assert_int_equal(next_utc("0 0 * * *", utc(2026, 1, 31, 0, 0, 0)), utc(2026, 2, 1, 0, 0, 0));
    assert_int_equal(next_utc("0 0 * * *", utc(2026, 2, 28, 0, 0, 0)), utc(2026, 3, 1, 0, 0, 0));
    assert_int_equal(next_utc("0 0 * * *", utc(2028, 2, 28, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
    assert_int_equal(next_utc("0 0 * 3 *", utc(2026, 3, 31, 0, 0, 0)), utc(2027, 3, 1, 0, 0, 0));
    assert_int_equal(next_utc("0 12 * jan,jun *", utc(2026, 1, 31, 12, 0, 0)),
                     utc(2026, 6, 1, 12, 0, 0));
    assert_int_equal(next_utc("0 12 * jan,jun *", utc(2026, 6, 30, 12, 0, 0)),
                     utc(2027, 1, 1, 12, 0, 0));
    assert_int_equal(next_utc("59 23 * * sat", utc(2026, 12, 27, 0, 0, 0)),
                     utc(2027, 1, 2, 23, 59, 0));
}

static void leap_years(void **state)
{
    struct cron c = P("0 0 29 2 *");
    int64_t t = utc(2026, 3, 1, 0, 0, 0);
    assert_int_equal(t = next_of(&c, NULL, t), utc(2028, 2, 29, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2032, 2, 29, 0, 0, 0));
    /* 2100 is not a leap year */
    assert_int_equal(next_of(&c, NULL, utc(2096, 3, 1, 0, 0, 0)), utc(2104, 2, 29, 0, 0, 0));
    assert_int_equal(next_of(&c, NULL, utc(1996, 3, 1, 0, 0, 0)), utc(2000, 2, 29, 0, 0, 0));
    /* Feb 29 on a Sunday: 28 years apart, 40 across 2100 */
    c = P("0 0 29 2 */7");
    assert_int_equal(t = next_of(&c, NULL, utc(2026, 1, 1, 0, 0, 0)), utc(2032, 2, 29, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2060, 2, 29, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2088, 2, 29, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2128, 2, 29, 0, 0, 0));
    c = P("0 0 28-29 feb *");
    assert_int_equal(t = next_of(&c, NULL, utc(2028, 1, 1, 0, 0, 0)), utc(2028, 2, 28, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2028, 2, 29, 0, 0, 0));
    assert_int_equal(t = next_of(&c, NULL, t), utc(2029, 2, 28, 0, 0, 0));
}

static void last_days(void **state)
{
    struct cron c = P("0 0 31 * *");
    int64_t t = utc(2026, 1, 31, 0, 0, 0);
    const int months[] = {3, 5, 7, 8, 10, 12};
    for (size_t i = 0; i < NCASES(months); i++)
        assert_int_equal(t = next_of(&c, NULL, t), utc(2026, months[i], 31, 0, 0, 0));
    assert_int_equal(next_of(&c, NULL, t), utc(2027, 1, 31, 0, 0, 0));
    c = P("0 0 30 * *");
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 30, 0, 0, 0)), utc(2026, 3, 30, 0, 0, 0));
    c = P("0 0 29,30,31 * *");
    assert_int_equal(next_of(&c, NULL, utc(2026, 1, 31, 0, 0, 0)), utc(2026, 3, 29, 0, 0, 0));
    assert_int_equal(next_of(&c, NULL, utc(2028, 1, 31, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
    c = P("0 0 31 jan-apr *");
    assert_int_equal(next_of(&c, NULL, utc(2026, 3, 31, 0, 0, 0)), utc(2027, 1, 31, 0, 0, 0));
}

static void seconds_field(void **state)
{
    struct cron c = P("*/10 * * * * *");
    int64_t t = utc(2026, 5, 5, 12, 0, 0);
    for (int i = 1; i <= 12; i++)
        assert_int_equal(t = next_of(&c, NULL, t), utc(2026, 5, 5, 12, 0, 0) + 10 * i);
    assert_int_equal(next_utc("30 0 0 * * *", utc(2026, 5, 5, 0, 0, 30)),
                     utc(2026, 5, 6, 0, 0, 30));
    assert_int_equal(next_utc("30 0 0 * * *", utc(2026, 5, 5, 0, 0, 29)),
                     utc(2026, 5, 5, 0, 0, 30));
    assert_int_equal(next_utc("59 59 23 31 12 *", utc(2026, 6, 1, 0, 0, 0)),
                     utc(2026, 12, 31, 23, 59, 59));
    assert_int_equal(next_utc("15,45 * * * * *", utc(2026, 5, 5, 12, 0, 45)),
                     utc(2026, 5, 5, 12, 1, 15));
    assert_int_equal(next_utc("* * * * * *", utc(2026, 5, 5, 12, 0, 59)),
                     utc(2026, 5, 5, 12, 1, 0));
    assert_int_equal(next_utc("0 */5 * * * *", utc(2026, 5, 5, 12, 4, 0)),
                     utc(2026, 5, 5, 12, 5, 0));
}

static void macros_next(void **state)
{
    int64_t t = utc(2026, 5, 5, 12, 34, 56); /* a Tuesday */
    assert_int_equal(next_utc("@hourly", t), utc(2026, 5, 5, 13, 0, 0));
    assert_int_equal(next_utc("@daily", t), utc(2026, 5, 6, 0, 0, 0));
    assert_int_equal(next_utc("@midnight", t), utc(2026, 5, 6, 0, 0, 0));
    assert_int_equal(next_utc("@weekly", t), utc(2026, 5, 10, 0, 0, 0));
    assert_int_equal(next_utc("@monthly", t), utc(2026, 6, 1, 0, 0, 0));
    assert_int_equal(next_utc("@yearly", t), utc(2027, 1, 1, 0, 0, 0));
    assert_int_equal(next_utc("@annually", t), utc(2027, 1, 1, 0, 0, 0));
}

static void every_anchored(void **state)
{
    struct cron c = P("@every 90s");
    struct tz *ny = load("America/New_York");
    int64_t n, fires[50];

    assert_int_equal(cron_next(&c, NULL, 1000, 0, &n), 0);
    assert_int_equal(n, 1080);
    assert_int_equal(cron_next(&c, NULL, 1080, 0, &n), 0);
    assert_int_equal(n, 1170);
    assert_int_equal(cron_next(&c, NULL, 1079, 0, &n), 0);
    assert_int_equal(n, 1080);
    assert_int_equal(cron_next(&c, NULL, -1000, 0, &n), 0);
    assert_int_equal(n, -990);
    assert_int_equal(cron_next(&c, NULL, 1000, 7, &n), 0); /* 7 + 90k */
    assert_int_equal(n, 1087);
    assert_int_equal(cron_next(&c, NULL, 7, 7, &n), 0);
    assert_int_equal(n, 97);
    assert_int_equal(cron_next(&c, NULL, 0, 1000000, &n), 0); /* before the anchor */
    assert_int_equal(n, 10);

    /* From the previous fire or from any restart time: the same series. */
    c = P("@every 1h30m");
    int64_t anchor = utc(2026, 1, 1, 0, 17, 0), t = utc(2026, 3, 8, 0, 0, 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(cron_next(&c, ny, t, anchor, &fires[i]), 0);
        assert_int_equal((fires[i] - anchor) % 5400, 0);
        t = fires[i];
    }
    for (int i = 0; i + 1 < 50; i++) {
        for (int64_t r = fires[i]; r < fires[i + 1]; r += 997) {
            assert_int_equal(cron_next(&c, ny, r, anchor, &n), 0);
            assert_int_equal(n, fires[i + 1]);
            assert_int_equal(cron_next(&c, NULL, r, anchor, &n), 0); /* zone ignored */
            assert_int_equal(n, fires[i + 1]);
        }
    }
    free(ny);
}

static void limits(void **state)
{
    struct cron c = P("* * * * *");
    int64_t n;

    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MIN - 1, 0, &n), -1);
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MAX + 1, 0, &n), -1);
    assert_int_equal(cron_next(&c, NULL, INT64_MAX, 0, &n), -1);
    assert_int_equal(cron_next(&c, NULL, INT64_MIN, 0, &n), -1);
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MIN, 0, &n), 0);
    assert_int_equal(n, CRON_TIME_MIN + 60);
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MAX - 60, 0, &n), 0);
    assert_int_equal(n, CRON_TIME_MAX - 59);
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MAX - 59, 0, &n), -1);
    c = P("0 0 1 1 *");
    assert_int_equal(cron_next(&c, NULL, utc(9999, 1, 1, 0, 0, 0), 0, &n), -1);
    c = P("@every 1s");
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MAX, 0, &n), -1);
    assert_int_equal(cron_next(&c, NULL, 0, INT64_MAX, &n), -1);
    /* a struct not from cron_parse */
    struct cron bogus = {0};
    assert_int_equal(cron_next(&bogus, NULL, 0, 0, &n), -1);
    bogus = P("* * * * *");
    bogus.month = 1 << 13;
    assert_int_equal(cron_next(&bogus, NULL, 0, 0, &n), -1);
}

/* ---- daylight saving ----------------------------------------------------- */

static int count_between(const struct cron *c, const struct tz *z, int64_t from, int64_t to)
{
    int n = 0;
    for (int64_t t = from - 1; (t = next_of(c, z, t)) < to && t != -1;)
        n++;
    return n;
}

static void dst_new_york(void **state)
{
    struct tz *z = load("America/New_York");
    const int64_t spring = 1772953200, fall = 1793512800; /* 07:00, 06:00 UTC */
    struct cron c;
    int64_t t;

    /* Fixed time in the skipped hour: once, at the change (03:00 EDT). */
    c = P("30 2 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2026, 3, 7, 12, 0, 0)), spring);
    assert_int_equal(next_of(&c, z, t), utc(2026, 3, 9, 6, 30, 0));
    assert_int_equal(next_of(&c, z, spring - 1), spring);
    assert_int_equal(next_of(&c, z, utc(2026, 3, 7, 7, 30, 0)), spring);
    c = P("0 2 * * *");
    assert_int_equal(next_of(&c, z, utc(2026, 3, 7, 12, 0, 0)), spring);
    c = P("0,30 2 * * *"); /* two skipped times: one fire */
    assert_int_equal(t = next_of(&c, z, utc(2026, 3, 7, 12, 0, 0)), spring);
    assert_int_equal(next_of(&c, z, t), utc(2026, 3, 9, 6, 0, 0));
    c = P("0 3 * * *"); /* 03:00 EDT exists: the same instant, as usual */
    assert_int_equal(next_of(&c, z, utc(2026, 3, 7, 12, 0, 0)), spring);

    /* Fixed time in the repeated hour: once, at the first (EDT). */
    c = P("30 1 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2026, 10, 31, 12, 0, 0)), utc(2026, 11, 1, 5, 30, 0));
    assert_int_equal(next_of(&c, z, t), utc(2026, 11, 2, 6, 30, 0));
    assert_int_equal(next_of(&c, z, utc(2026, 11, 1, 6, 10, 0)), utc(2026, 11, 2, 6, 30, 0));
    c = P("0 1 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2026, 10, 31, 12, 0, 0)), utc(2026, 11, 1, 5, 0, 0));
    assert_int_equal(next_of(&c, z, t), utc(2026, 11, 2, 6, 0, 0));
    c = P("0,59 1 * * *");
    assert_int_equal(count_between(&c, z, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0)), 2);

    /* Wall-clock schedules: no 02:xx on the spring day, 01:xx twice in fall. */
    c = P("*/15 * * * *");
    assert_int_equal(next_of(&c, z, spring - 900), spring);
    assert_int_equal(next_of(&c, z, spring), spring + 900);
    assert_int_equal(count_between(&c, z, utc(2026, 3, 8, 5, 0, 0), utc(2026, 3, 9, 4, 0, 0)),
                     92);                               /* a 23-hour day */
    assert_int_equal(next_of(&c, z, fall - 900), fall); /* 01:45 EDT -> 01:00 EST */
    assert_int_equal(count_between(&c, z, utc(2026, 11, 1, 4, 0, 0), utc(2026, 11, 2, 5, 0, 0)),
                     100); /* a 25-hour day */
    c = P("@hourly");
    assert_int_equal(t = next_of(&c, z, utc(2026, 11, 1, 4, 30, 0)), utc(2026, 11, 1, 5, 0, 0));
    assert_int_equal(t = next_of(&c, z, t), fall); /* 01:00 EST */
    assert_int_equal(next_of(&c, z, t), utc(2026, 11, 1, 7, 0, 0));
    c = P("*/20 1 * * *"); /* a `*` in minutes: wall clock */
    assert_int_equal(count_between(&c, z, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0)), 6);
    c = P("0 1-3 * * *"); /* an hour range: wall clock */
    assert_int_equal(count_between(&c, z, utc(2026, 3, 8, 0, 0, 0), utc(2026, 3, 9, 0, 0, 0)), 2);
    assert_int_equal(count_between(&c, z, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0)), 4);

    /* Unaffected: midnight, and the footer rule years later. */
    c = P("@daily");
    assert_int_equal(next_of(&c, z, utc(2026, 3, 8, 5, 0, 0)), utc(2026, 3, 9, 4, 0, 0));
    c = P("30 2 * * *");
    assert_int_equal(next_of(&c, z, utc(2100, 3, 13, 12, 0, 0)), utc(2100, 3, 14, 7, 0, 0));
    c = P("30 1 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2100, 11, 6, 12, 0, 0)), utc(2100, 11, 7, 5, 30, 0));
    assert_int_equal(next_of(&c, z, t), utc(2100, 11, 8, 6, 30, 0));
    free(z);
}

static void dst_berlin(void **state)
{
    struct tz *z = load("Europe/Berlin");
    const int64_t spring = 1774746000, fall = 1792890000; /* both 01:00 UTC */
    struct cron c;
    int64_t t;

    c = P("30 2 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2026, 3, 28, 12, 0, 0)), spring);
    assert_int_equal(next_of(&c, z, t), utc(2026, 3, 30, 0, 30, 0));
    assert_int_equal(t = next_of(&c, z, utc(2026, 10, 24, 12, 0, 0)), fall - 1800);
    assert_int_equal(next_of(&c, z, t), utc(2026, 10, 26, 1, 30, 0));
    c = P("0,30 2 * * *");
    assert_int_equal(t = next_of(&c, z, utc(2026, 3, 28, 12, 0, 0)), spring);
    assert_int_equal(next_of(&c, z, t), utc(2026, 3, 30, 0, 0, 0));
    assert_int_equal(count_between(&c, z, utc(2026, 10, 24, 12, 0, 0), utc(2026, 10, 25, 12, 0, 0)),
                     2);

    c = P("*/30 * * * *");
    t = utc(2026, 10, 24, 23, 45, 0);
    assert_int_equal(t = next_of(&c, z, t), fall - 3600);    /* 02:00 CEST */
    assert_int_equal(t = next_of(&c, z, t), fall - 1800);    /* 02:30 CEST */
    assert_int_equal(t = next_of(&c, z, t), fall);           /* 02:00 CET */
    assert_int_equal(t = next_of(&c, z, t), fall + 1800);    /* 02:30 CET */
    assert_int_equal(next_of(&c, z, spring - 1800), spring); /* 01:30 CET -> 03:00 CEST */
    c = P("0 */1 * * *");
    assert_int_equal(count_between(&c, z, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0)),
                     23);
    free(z);
}

static void dst_half_hour_and_midnight(void **state)
{
    struct tz *lh = load("Australia/Lord_Howe"), *scl = load("America/Santiago");
    struct cron c;
    int64_t t;

    /* Lord Howe: 02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on 2026-04-05. */
    c = P("15 2 * * *");
    assert_int_equal(t = next_of(&c, lh, utc(2026, 10, 3, 0, 0, 0)), 1791041400);
    assert_int_equal(next_of(&c, lh, t), 1791041400 + 86400 - 900);
    c = P("45 1 * * *");
    assert_int_equal(t = next_of(&c, lh, utc(2026, 4, 4, 0, 0, 0)), 1775314800 - 900);
    assert_int_equal(next_of(&c, lh, t), 1775314800 + 86400 - 900 + 1800);
    c = P("*/15 * * * *");
    assert_int_equal(next_of(&c, lh, 1791041400 - 1), 1791041400); /* 02:30 */
    assert_int_equal(next_of(&c, lh, 1775314800 - 1), 1775314800); /* 01:30 again */

    /* Santiago skips midnight in spring (2026-09-06 00:00 -> 01:00 under
     * the rules of tzdata 2025): @daily fires at the change. Found, not
     * hard-coded, as Chile's rules change often. */
    int64_t at;
    struct civil before, after;
    c = P("@daily");
    assert_int_equal(tz_next_transition(scl, utc(2026, 8, 1, 0, 0, 0), &at), 0);
    tz_utc_to_local(scl, at - 1, &before);
    tz_utc_to_local(scl, at, &after);
    if (before.hour == 23 && before.minute == 59 && after.hour == 1 && after.minute == 0) {
        assert_int_equal(t = next_of(&c, scl, at - 12 * 3600), at);
        assert_int_equal(next_of(&c, scl, t), at + 23 * 3600);
    }
    free(lh);
    free(scl);
}

/* ---- brute force ---------------------------------------------------------- */

/* The schedule's fields against broken-down time, written independently
 * of cron.c's day masks and search. */
static bool ref_match(const struct cron *c, const struct tm *tm)
{
    bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
    bool day = (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR)) ? dom && dow : dom || dow;
    return day && (c->second >> tm->tm_sec & 1) && (c->minute >> tm->tm_min & 1) &&
           (c->hour >> tm->tm_hour & 1) && (c->month >> (tm->tm_mon + 1) & 1);
}

static bool ref_match_local(const struct cron *c, int64_t local)
{
    time_t t = (time_t)local;
    struct tm tm;
    gmtime_r(&t, &tm);
    return ref_match(c, &tm);
}

static const char *const brute_exprs[] = {
    "*/7 * * * *",    "0 9-17/2 * * 1-5", "15,45 */3 1,15 * *", "0 0 13 * 5",  "30 4 * * sun",
    "0 12 */2 * mon", "5 0 * 2,8 *",      "0 0 31 * *",         "0 0 29 2 *",  "59 23 * * *",
    "@hourly",        "@weekly",          "0 0 1-7 * 1",        "1-5 0 * * *",
};

static void brute_force_utc(void **state)
{
    const int64_t from = utc(2027, 12, 1, 0, 0, 0), to = utc(2029, 1, 1, 0, 0, 0);
    const int nmin = (int)((to - from) / 60);

    for (size_t e = 0; e < NCASES(brute_exprs); e++) {
        struct cron c = P(brute_exprs[e]);
        int64_t t = from - 1;
        int fired = 0;
        for (int i = 0; i < nmin; i++) {
            int64_t m = from + 60 * (int64_t)i;
            if (!ref_match_local(&c, m))
                continue;
            t = next_of(&c, NULL, t);
            if (t != m)
                fail_msg("\"%s\": expected %lld, cron_next gave %lld", brute_exprs[e], (long long)m,
                         (long long)t);
            assert_true(cron_matches(&c, m));
            fired++;
        }
        assert_true(fired > 0);
        assert_true(next_of(&c, NULL, t) >= to);
    }
    /* seconds resolution over two days */
    static const char *const sec_exprs[] = {"*/13 * * * * *", "5-10 0 */5 * * *", "59 59 23 * * *"};
    for (size_t e = 0; e < NCASES(sec_exprs); e++) {
        struct cron c = P(sec_exprs[e]);
        int64_t t = from - 1;
        for (int64_t s = from; s < from + 2 * 86400; s++) {
            if (!ref_match_local(&c, s))
                continue;
            assert_int_equal(t = next_of(&c, NULL, t), s);
        }
    }
}

/* Wall-clock time (local seconds) of each minute, from glibc. */
static int64_t *libc_locals(const char *zone, int64_t from, int n)
{
    int64_t *l = malloc(sizeof(*l) * (size_t)(n + 1));
    assert_non_null(l);
    setenv("TZ", zone, 1);
    tzset();
    for (int i = -1; i < n; i++) {
        time_t t = (time_t)(from + 60 * (int64_t)i);
        struct tm tm;
        localtime_r(&t, &tm);
        l[i + 1] = (int64_t)timegm(&tm);
    }
    unsetenv("TZ");
    tzset();
    return l;
}

/*
 * The semantics of cron.c's header comment, minute by minute: a wall-clock
 * schedule fires whenever the wall clock matches; a fixed-time one when it
 * matches a wall-clock time not shown before, and at the first minute after
 * a jump forward that skipped a match.
 */
static void brute_force_zones(void **state)
{
    static const char *const zones[] = {"America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
                                        "America/Santiago", "Europe/Dublin"};
    static const char *const exprs[] = {
        "30 2 * * *",   "0,30 1,2 * * *", "*/15 * * * *", "0 * * * *",  "30 1 * * *",
        "0 2 * * *",    "*/10 1-3 * * *", "0 0 * * *",    "15 0 * * *", "0 3 * * 0",
        "45 1 * * 1-5", "0 0-23/3 * * *", "59 1 * * *",   "0 12 * * *", "15,45 2 * * *",
    };
    const int64_t from = utc(2026, 1, 1, 0, 0, 0), to = utc(2027, 1, 1, 0, 0, 0);
    const int n = (int)((to - from) / 60);

    for (size_t k = 0; k < NCASES(zones); k++) {
        struct tz *z = load(zones[k]);
        int64_t *loc = libc_locals(zones[k], from, n); /* loc[i + 1]: minute i */
        for (size_t e = 0; e < NCASES(exprs); e++) {
            struct cron c = P(exprs[e]);
            bool fixed = c.flags & CRON_FIXED;
            int64_t shown = loc[0], t = from - 1;
            int fired = 0;
            for (int i = 0; i < n; i++) {
                int64_t at = from + 60 * (int64_t)i, l = loc[i + 1], prev = loc[i];
                bool fire = false;
                if (fixed)
                    for (int64_t m = prev + 60; m < l && !fire; m += 60)
                        fire = ref_match_local(&c, m); /* skipped */
                if (ref_match_local(&c, l) && (!fixed || l > shown))
                    fire = true;
                if (l > shown)
                    shown = l;
                if (!fire)
                    continue;
                t = next_of(&c, z, t);
                if (t != at)
                    fail_msg("%s \"%s\": expected %lld, cron_next gave %lld", zones[k], exprs[e],
                             (long long)at, (long long)t);
                fired++;
            }
            assert_true(fired > 0);
            assert_true(next_of(&c, z, t) >= to);
        }
        free(loc);
        free(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_fields),    cmocka_unit_test(parse_names),
        cmocka_unit_test(parse_sunday),    cmocka_unit_test(parse_seconds),
        cmocka_unit_test(parse_macros),    cmocka_unit_test(parse_every),
        cmocka_unit_test(parse_errors),    cmocka_unit_test(fixed_time_flag),
        cmocka_unit_test(vixie_or_rule),   cmocka_unit_test(next_plain),
        cmocka_unit_test(rollovers),       cmocka_unit_test(leap_years),
        cmocka_unit_test(last_days),       cmocka_unit_test(seconds_field),
        cmocka_unit_test(macros_next),     cmocka_unit_test(every_anchored),
        cmocka_unit_test(limits),          cmocka_unit_test(dst_new_york),
        cmocka_unit_test(dst_berlin),      cmocka_unit_test(dst_half_hour_and_midnight),
        cmocka_unit_test(brute_force_utc), cmocka_unit_test(brute_force_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
