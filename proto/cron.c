/*
 * cron.c - cron expressions and next fire times (see cron.h for the syntax).
 *
 * Daylight-saving semantics, exactly
 * ----------------------------------
 * A zone's timeline is cut by its transitions into stretches of constant
 * UTC offset. Within a stretch, wall-clock time L and instant t move
 * together (t = L - offset). Where the offset grows (spring forward) the
 * wall-clock times in between are shown by no instant: a gap. Where it
 * shrinks (fall back) the next stretch shows again wall-clock times the
 * previous one showed: an overlap. The fire times of a schedule are a fixed
 * set of instants, independent of when cron_next is asked:
 *
 *   wall-clock schedules (not CRON_FIXED: a `*` in the second, minute or
 *   hour field, or a range or step in the hour field; @hourly):
 *     every instant whose wall-clock time matches the fields. In an overlap
 *     a matching time fires at both instants ("0,15,30,45 * * * *" fires
 *     at 01:00 EDT and again at 01:00 EST); in a gap it does not fire at all
 *     (no catch-up).
 *
 *   fixed-time schedules (CRON_FIXED: "30 2 * * *", "0 9,17 * * 1-5",
 *   @daily, @weekly, @monthly, @yearly):
 *     - a matching wall-clock time shown once fires then;
 *     - shown twice (overlap): fires at the first instant only (01:30 on
 *       2026-11-01 in New York fires at 01:30 EDT = 05:30 UTC, not again
 *       at 01:30 EST);
 *     - not shown (gap): fires at the transition instant, the first
 *       instant after the gap (02:30 on 2026-03-08 in New York fires at
 *       07:00 UTC, which the clock shows as 03:00 EDT). Several matching
 *       times in one gap make that one fire.
 *   This is Vixie cron's behaviour (cron(8): "Only jobs that run at a
 *   particular time (not specified as @hourly, nor with '*' in the hour or
 *   minute specifier) are affected"), extended to the seconds field, to
 *   hour ranges and steps (which name many hours, so they are treated as
 *   a frequency), and to jumps of any size, not just those under 3 hours.
 *   A gap is assumed to start at the wall-clock time shown just before the
 *   transition: zones never jump back and forth within hours, and if one
 *   did, a fixed-time schedule could fire at a skipped-over time twice.
 *
 * Search
 * ------
 * cron_next walks the stretches from `after` on. In each, next_local()
 * finds the first matching wall-clock time by jumping field by field: to
 * the next allowed month, then the next allowed day (from a 31-bit mask of
 * the month's matching days), hour, minute, second, carrying into the
 * field above when a field has no allowed value left. Each step moves
 * forward to the start of a larger unit, so a call costs O(1) per month
 * crossed: a few steps for a schedule that fires within the month, at most
 * about 12 * 401 for one that fires once in decades (Feb 29 on a Sunday).
 * Per stretch add two offset lookups and a transition lookup (a binary
 * search, or a footer rule evaluated for a few years); a fixed-time
 * candidate adds one wall-to-UTC lookup (a few more of those). Measured
 * on x86-64 at -O2: 0.05-0.3 us per call in UTC or within a zone's
 * transition table, about 1.5 us where a footer rule applies (after 2037
 * in most zones), under 1 us for "Feb 29 on a Sunday" in New York: 10,000
 * schedules take milliseconds.
 */
#include "proto/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/calendar.h"

#define DAY CAL_DAY_SECONDS

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, NFIELDS };

static const char *const month_abbr[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const month_full[12] = {"January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December"};
static const char *const dow_abbr[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field_def {
    const char *name;
    int min, max;             /* values accepted */
    int star_max;             /* what `*` covers: max, but 6 for day of week */
    const char *const *names; /* 3-letter names of min, min+1, ... */
    int nnames;
} fields[NFIELDS] = {
    {"second", 0, 59, 59, NULL, 0},       {"minute", 0, 59, 59, NULL, 0},
    {"hour", 0, 23, 23, NULL, 0},         {"day of month", 1, 31, 31, NULL, 0},
    {"month", 1, 12, 12, month_abbr, 12}, {"day of week", 0, 7, 6, dow_abbr, 7},
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"yearly", "0 0 1 1 *"}, {"annually", "0 0 1 1 *"}, {"monthly", "0 0 1 * *"},
    {"weekly", "0 0 * * 0"}, {"daily", "0 0 * * *"},    {"midnight", "0 0 * * *"},
    {"hourly", "0 * * * *"},
};

/* ---- errors -------------------------------------------------------------- */

struct ctx {
    char *err;
    size_t cap;
    int pos; /* 1-based field position as written */
    const struct field_def *f;
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "field 2 (hour): " + message. */
__attribute__((format(printf, 2, 3))) static int ferr(const struct ctx *x, const char *fmt, ...)
{
    if (x->err != NULL && x->cap > 0) {
        int n = snprintf(x->err, x->cap, "field %d (%s): ", x->pos, x->f->name);
        if (n >= 0 && (size_t)n < x->cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(x->err + n, x->cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* Input text for a message: at most 20 bytes, unprintable ones as '?'. */
struct quoted {
    char s[24];
};

static struct quoted quote(const char *s, size_t n)
{
    struct quoted q;
    size_t k = n > 20 ? 20 : n;
    for (size_t i = 0; i < k; i++)
        q.s[i] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
    if (n > k) {
        memcpy(q.s + k, "...", 3);
        k += 3;
    }
    q.s[k] = '\0';
    return q;
}

/* ---- lexical helpers ----------------------------------------------------- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool is_alpha(char ch)
{
    return lower(ch) >= 'a' && lower(ch) <= 'z';
}

static bool word_eq(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i] != '\0'; i++)
        if (lower(s[i]) != word[i])
            return false;
    return i == n && word[i] == '\0';
}

/* ---- fields -------------------------------------------------------------- */

/* A number or a name, s[0..n). */
static int parse_value(const struct ctx *x, const char *s, size_t n, int *out)
{
    const struct field_def *f = x->f;
    size_t i;

    if (n == 0)
        return ferr(x, "missing value");
    if (is_digit(s[0])) {
        long v = 0;
        for (i = 0; i < n && is_digit(s[i]); i++)
            if (v <= 1000000)
                v = v * 10 + (s[i] - '0');
        if (i < n)
            return ferr(x, "unexpected character '%s' in '%s'", quote(s + i, 1).s, quote(s, n).s);
        if (v < f->min || v > f->max)
            return ferr(x, "%s is out of range %d-%d", quote(s, n).s, f->min, f->max);
        *out = (int)v;
        return 0;
    }
    if (!is_alpha(s[0]))
        return ferr(x, "unexpected character '%s'", quote(s, 1).s);
    for (i = 0; i < n && is_alpha(s[i]); i++)
        ;
    if (i < n)
        return ferr(x, "unexpected character '%s' in '%s'", quote(s + i, 1).s, quote(s, n).s);
    if (f->names == NULL)
        return ferr(x, "'%s' is not a number (names are allowed in month and day of week)",
                    quote(s, n).s);
    for (int k = 0; k < f->nnames; k++) {
        if (word_eq(s, n, f->names[k])) {
            *out = f->min + k;
            return 0;
        }
    }
    return ferr(x, "unknown name '%s'", quote(s, n).s);
}

/* One list item: `*`, a, a-b, each with an optional /step, into *mask. */
static int parse_item(const struct ctx *x, const char *s, size_t n, uint64_t *mask, bool *star,
                      bool *span)
{
    const struct field_def *f = x->f;
    const char *slash = memchr(s, '/', n), *dash;
    size_t left = slash != NULL ? (size_t)(slash - s) : n;
    int lo, hi, step = 1;

    if (n == 0)
        return ferr(x, "empty item in a list");
    if (slash != NULL) {
        const char *st = slash + 1;
        size_t sn = n - left - 1;
        long v = 0;
        size_t i;
        if (left == 0)
            return ferr(x, "missing value before '/'");
        if (sn == 0)
            return ferr(x, "missing step after '/'");
        for (i = 0; i < sn && is_digit(st[i]); i++)
            if (v <= 1000000)
                v = v * 10 + (st[i] - '0');
        if (i < sn)
            return ferr(x, "step '%s' is not a number", quote(st, sn).s);
        if (v < 1 || v > f->star_max - f->min + 1)
            return ferr(x, "step %s is out of range 1-%d", quote(st, sn).s,
                        f->star_max - f->min + 1);
        step = (int)v;
        *span = true;
    }
    if (left == 1 && s[0] == '*') {
        lo = f->min;
        hi = f->star_max;
        *star = true;
    } else if ((dash = memchr(s, '-', left)) != NULL) {
        if (dash == s)
            return ferr(x, "missing range start before '-'");
        if (dash == s + left - 1)
            return ferr(x, "missing range end after '-'");
        if (parse_value(x, s, (size_t)(dash - s), &lo) ||
            parse_value(x, dash + 1, left - (size_t)(dash - s) - 1, &hi))
            return -1;
        if (f == &fields[F_DOW] && hi == 0 && lo > 0)
            hi = 7; /* "fri-sun": Sunday as 7 */
        if (lo > hi)
            return ferr(x, "range '%s' ends before it starts", quote(s, left).s);
        *span = true;
    } else {
        if (parse_value(x, s, left, &lo))
            return -1;
        hi = slash != NULL ? f->star_max : lo; /* a/n: from a to the end */
        if (hi < lo)
            hi = lo;
    }
    for (int v = lo; v <= hi; v += step)
        *mask |= (uint64_t)1 << v;
    return 0;
}

struct field_out {
    uint64_t mask;
    bool star; /* a `*` item somewhere */
    bool span; /* a range or a step somewhere */
};

static int parse_field(struct ctx *x, const char *s, size_t n, struct field_out *o)
{
    size_t i = 0;
    memset(o, 0, sizeof(*o));
    for (;;) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t end = comma != NULL ? (size_t)(comma - s) : n;
        if (parse_item(x, s + i, end - i, &o->mask, &o->star, &o->span))
            return -1;
        if (comma == NULL)
            return 0;
        i = end + 1;
    }
}

/* ---- day arithmetic ------------------------------------------------------ */

/* The days (bits 1..31) of month m of year y on which the schedule fires. */
static uint32_t day_mask(const struct cron *c, int64_t y, int m)
{
    int dim = cal_days_in_month(y, m);
    uint32_t valid = (uint32_t)(((uint64_t)1 << (dim + 1)) - 2);
    int w1 = cal_weekday(cal_days_from_civil(y, m, 1));
    uint32_t p = 0, dw;

    /* Bit k of p: day k+1 falls on an allowed weekday; then repeat it. */
    for (int k = 0; k < 7; k++)
        if (c->dow >> ((w1 + k) % 7) & 1)
            p |= 1u << k;
    dw = (p | p << 7 | p << 14 | p << 21 | p << 28) << 1 & valid;
    if (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
        return c->dom & dw;
    return (c->dom & valid) | dw;
}

/* Smallest set bit >= from and <= max, or -1. */
static int next_bit(uint64_t mask, int from, int max)
{
    if (from > max)
        return -1;
    mask >>= from;
    if (mask == 0)
        return -1;
    int b = from + __builtin_ctzll(mask);
    return b <= max ? b : -1;
}

struct pos {
    int64_t y;
    int m, d, h, mi, s;
};

static void next_month(struct pos *p)
{
    if (++p->m > 12) {
        p->m = 1;
        p->y++;
    }
    p->d = 1;
    p->h = p->mi = p->s = 0;
}

static void next_day(struct pos *p)
{
    if (++p->d > cal_days_in_month(p->y, p->m)) {
        next_month(p);
        return;
    }
    p->h = p->mi = p->s = 0;
}

static void next_hour(struct pos *p)
{
    if (++p->h > 23) {
        next_day(p);
        return;
    }
    p->mi = p->s = 0;
}

static void next_minute(struct pos *p)
{
    if (++p->mi > 59) {
        next_hour(p);
        return;
    }
    p->s = 0;
}

static int64_t pos_seconds(const struct pos *p)
{
    return cal_days_from_civil(p->y, p->m, p->d) * DAY + p->h * 3600 + p->mi * 60 + p->s;
}

/* The first wall-clock time >= from and < limit (local seconds) matching
 * the fields. Each pass either returns or moves p forward to the start of
 * a later second, minute, hour, day or month that may match. */
static bool next_local(const struct cron *c, int64_t from, int64_t limit, int64_t *out)
{
    int64_t days = cal_floor_div(from, DAY), sod = from - days * DAY;
    struct pos p;
    int v;

    cal_civil_from_days(days, &p.y, &p.m, &p.d);
    p.h = (int)(sod / 3600);
    p.mi = (int)(sod / 60 % 60);
    p.s = (int)(sod % 60);
    for (;;) {
        if (pos_seconds(&p) >= limit)
            return false;
        if (!(c->month >> p.m & 1)) {
            if ((v = next_bit(c->month, p.m + 1, 12)) < 0) {
                p.y++;
                v = __builtin_ctz(c->month);
            }
            p.m = v;
            p.d = 1;
            p.h = p.mi = p.s = 0;
            continue;
        }
        if ((v = next_bit(day_mask(c, p.y, p.m), p.d, 31)) < 0) {
            next_month(&p);
            continue;
        }
        if (v != p.d) {
            p.d = v;
            p.h = p.mi = p.s = 0;
        }
        if ((v = next_bit(c->hour, p.h, 23)) < 0) {
            next_day(&p);
            continue;
        }
        if (v != p.h) {
            p.h = v;
            p.mi = p.s = 0;
        }
        if ((v = next_bit(c->minute, p.mi, 59)) < 0) {
            next_hour(&p);
            continue;
        }
        if (v != p.mi) {
            p.mi = v;
            p.s = 0;
        }
        if ((v = next_bit(c->second, p.s, 59)) < 0) {
            next_minute(&p);
            continue;
        }
        p.s = v;
        *out = pos_seconds(&p);
        return *out < limit;
    }
}

bool cron_matches(const struct cron *c, int64_t local)
{
    struct civil t;
    if (c->flags & CRON_EVERY)
        return false;
    tz_seconds_to_civil(local, &t);
    return (c->second >> t.second & 1) && (c->minute >> t.minute & 1) && (c->hour >> t.hour & 1) &&
           (c->month >> t.month & 1) && (day_mask(c, t.year, t.month) >> t.day & 1);
}

/* ---- parsing ------------------------------------------------------------- */

/* "never fires: ..." unless some month given has some day of month given.
 * Only needed when the day of week cannot stand in for the day of month
 * (see cron.h); every date falls on every weekday within 400 years. */
static int check_fires(const struct cron *c, struct ctx *x)
{
    static const int maxdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int first = __builtin_ctz(c->dom), same = -1, k = 0, nmon = 0;
    char list[96];
    size_t used = 0;

    if (!(c->flags & (CRON_DOM_STAR | CRON_DOW_STAR)))
        return 0;
    for (int m = 1; m <= 12; m++) {
        if (!(c->month >> m & 1))
            continue;
        if (maxdays[m] >= first)
            return 0;
        same = same == -1 || same == maxdays[m] ? maxdays[m] : 0;
        nmon++;
    }
    list[0] = '\0';
    for (int m = 1; m <= 12; m++) {
        if (!(c->month >> m & 1))
            continue;
        k++;
        int w = snprintf(list + used, sizeof(list) - used, "%s%s",
                         k == 1      ? ""
                         : k == nmon ? " and "
                                     : ", ",
                         month_full[m - 1]);
        if (w > 0 && used + (size_t)w < sizeof(list))
            used += (size_t)w;
    }
    if (same > 0)
        return ferr(x, "never fires: %s %s at most %d days", list, nmon == 1 ? "has" : "have",
                    same);
    return ferr(x, "never fires: %s have fewer than %d days", list, first);
}

static int parse_every(const char *s, struct cron *out, char *err, size_t cap)
{
    size_t n, i = 0;
    int64_t total = 0;

    while (is_space(*s))
        s++;
    for (n = 0; s[n] != '\0' && !is_space(s[n]); n++)
        ;
    if (n == 0)
        return fail(err, cap, "@every: missing duration, e.g. @every 90s, 5m or 1h30m");
    struct quoted q = quote(s, n);
    while (i < n) {
        int64_t v = 0, unit;
        size_t u;
        if (!is_digit(s[i]))
            return fail(err, cap, "@every: '%s': expected a number at '%s'", q.s,
                        quote(s + i, 1).s);
        for (; i < n && is_digit(s[i]); i++)
            if (v <= CRON_EVERY_MAX)
                v = v * 10 + (s[i] - '0');
        if (i < n && (s[i] == '.' || s[i] == ','))
            return fail(err, cap, "@every: '%s': fractions are not supported, use e.g. 1m30s", q.s);
        for (u = i; i < n && is_alpha(s[i]); i++)
            ;
        if (u == i)
            return fail(err, cap, "@every: '%s': missing unit after a number (use h, m or s)", q.s);
        if (word_eq(s + u, i - u, "h"))
            unit = 3600;
        else if (word_eq(s + u, i - u, "m"))
            unit = 60;
        else if (word_eq(s + u, i - u, "s"))
            unit = 1;
        else if (word_eq(s + u, i - u, "ms") || word_eq(s + u, i - u, "us") ||
                 word_eq(s + u, i - u, "ns"))
            return fail(err, cap, "@every: '%s': units below a second are not allowed (minimum 1s)",
                        q.s);
        else
            return fail(err, cap, "@every: '%s': unknown unit '%s' (use h, m or s)", q.s,
                        quote(s + u, i - u).s);
        if (v > CRON_EVERY_MAX || (total += v * unit) > CRON_EVERY_MAX)
            return fail(err, cap, "@every: '%s' is longer than the maximum of %lldh", q.s,
                        CRON_EVERY_MAX / 3600);
    }
    if (total < 1)
        return fail(err, cap, "@every: '%s' is shorter than the minimum of 1s", q.s);
    for (s += n; is_space(*s); s++)
        ;
    if (*s != '\0')
        return fail(err, cap, "unexpected text after @every %s: '%s'", q.s, quote(s, strlen(s)).s);
    out->every = total;
    out->flags = CRON_EVERY;
    return 0;
}

static int parse_macro(const char *s, struct cron *out, char *err, size_t cap)
{
    size_t n;
    for (n = 1; s[n] != '\0' && !is_space(s[n]); n++)
        ;
    if (word_eq(s + 1, n - 1, "every"))
        return parse_every(s + n, out, err, cap);
    for (size_t k = 0; k < sizeof(macros) / sizeof(macros[0]); k++) {
        if (!word_eq(s + 1, n - 1, macros[k].name))
            continue;
        const char *rest = s + n;
        while (is_space(*rest))
            rest++;
        if (*rest != '\0')
            return fail(err, cap, "unexpected text after %s: '%s'", quote(s, n).s,
                        quote(rest, strlen(rest)).s);
        return cron_parse(macros[k].expr, out, err, cap);
    }
    if (word_eq(s + 1, n - 1, "reboot"))
        return fail(err, cap, "@reboot is not a schedule");
    return fail(err, cap,
                "unknown macro '%s' (use @yearly, @annually, @monthly, @weekly, @daily, "
                "@midnight, @hourly or @every)",
                quote(s, n).s);
}

int cron_parse(const char *expr, struct cron *out, char *err, size_t errcap)
{
    const char *tok[NFIELDS];
    size_t len[NFIELDS];
    int nf = 0;
    struct field_out fo[NFIELDS];
    const char *s = expr;

    memset(out, 0, sizeof(*out));
    if (expr == NULL)
        return fail(err, errcap, "no expression");
    while (is_space(*s))
        s++;
    if (*s == '@')
        return parse_macro(s, out, err, errcap);
    while (*s != '\0') {
        const char *start = s;
        while (*s != '\0' && !is_space(*s))
            s++;
        if (nf < NFIELDS) {
            tok[nf] = start;
            len[nf] = (size_t)(s - start);
        }
        nf++;
        while (is_space(*s))
            s++;
    }
    if (nf != 5 && nf != 6)
        return fail(err, errcap, "expected 5 or 6 fields, got %d", nf);

    int first = nf == 6 ? F_SEC : F_MIN;
    for (int i = 0; i < nf; i++) {
        struct ctx x = {err, errcap, i + 1, &fields[first + i]};
        if (parse_field(&x, tok[i], len[i], &fo[first + i]))
            return -1;
    }
    if (nf == 5)
        fo[F_SEC] = (struct field_out){1, false, false};

    out->second = fo[F_SEC].mask;
    out->minute = fo[F_MIN].mask;
    out->hour = (uint32_t)fo[F_HOUR].mask;
    out->dom = (uint32_t)fo[F_DOM].mask;
    out->month = (uint16_t)fo[F_MON].mask;
    out->dow = (uint8_t)((fo[F_DOW].mask | fo[F_DOW].mask >> 7) & 0x7f); /* 7 is Sunday */
    if (tok[F_DOM - first][0] == '*')
        out->flags |= CRON_DOM_STAR;
    if (tok[F_DOW - first][0] == '*')
        out->flags |= CRON_DOW_STAR;
    if (!fo[F_SEC].star && !fo[F_MIN].star && !fo[F_HOUR].star && !fo[F_HOUR].span)
        out->flags |= CRON_FIXED;
    if (nf == 6)
        out->flags |= CRON_SECONDS;

    struct ctx x = {err, errcap, F_DOM - first + 1, &fields[F_DOM]};
    return check_fires(out, &x);
}

/* ---- next fire ----------------------------------------------------------- */

int cron_next(const struct cron *sched, const struct tz *z, int64_t after, int64_t anchor,
              int64_t *next)
{
    struct cron k = *sched, *c = &k;
    int64_t t, horizon;
    bool fixed = c->flags & CRON_FIXED;

    if (after < CRON_TIME_MIN || after > CRON_TIME_MAX)
        return -1;
    if (c->flags & CRON_EVERY) {
        if (c->every < 1 || c->every > CRON_EVERY_MAX || anchor < CRON_TIME_MIN ||
            anchor > CRON_TIME_MAX)
            return -1;
        t = anchor + (cal_floor_div(after - anchor, c->every) + 1) * c->every;
        if (t > CRON_TIME_MAX)
            return -1;
        *next = t;
        return 0;
    }
    /* Bits outside the fields' ranges can only come from a struct not
     * made by cron_parse: drop them rather than index out of range. */
    k.second &= ((uint64_t)1 << 60) - 1;
    k.minute &= ((uint64_t)1 << 60) - 1;
    k.hour &= (1u << 24) - 1;
    k.dom &= ~1u;
    k.month &= 0x1ffe;
    k.dow &= 0x7f;
    if (!k.second || !k.minute || !k.hour || !k.dom || !k.month || !k.dow)
        return -1;

    /* Exclusive end of the search. */
    horizon = after + 1 + CRON_HORIZON;
    if (horizon > CRON_TIME_MAX + 1)
        horizon = CRON_TIME_MAX + 1;

    /* One pass per stretch of constant UTC offset: [t, e). */
    for (t = after + 1; t < horizon;) {
        int64_t o = tz_utc_offset(z, t), e, wall, from;

        if (tz_next_transition(z, t, &e) != 0 || e > horizon)
            e = horizon;
        if (fixed) {
            /* Spring forward at t: a match in [t + before, t + o) fires now. */
            int64_t before = tz_utc_offset(z, t - 1);
            if (before < o && next_local(c, t + before, t + o, &wall)) {
                *next = t;
                return 0;
            }
        }
        from = t + o;
        while (next_local(c, from, e + o, &wall)) {
            int64_t sol[2], pe;
            if (fixed && tz_local_seconds_to_utc(z, wall, sol) > 0 && sol[0] < wall - o) {
                /* Shown before, in an earlier stretch: it fired then. The
                 * rest of that stretch's wall-clock times did too. */
                int64_t po = tz_utc_offset(z, sol[0]);
                if (tz_next_transition(z, sol[0], &pe) != 0)
                    pe = wall - o;
                from = pe + po > wall + 1 ? pe + po : wall + 1;
                continue;
            }
            *next = wall - o;
            return 0;
        }
        t = e;
    }
    return -1;
}
