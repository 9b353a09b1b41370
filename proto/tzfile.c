/*
 * tzfile.c - TZif parsing, POSIX TZ rules and wall-clock arithmetic (see
 * tzfile.h for the contract).
 *
 * Lookups are a binary search over the transition table, or, past its
 * end, an evaluation of the footer rule for the years around the instant:
 * nothing is precomputed, so a parsed struct tz stays read-only and the
 * cost per lookup is O(log transitions) or a few dozen integer operations.
 */
#include "proto/tzfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HEADER_LEN 44
#define DAY        CAL_DAY_SECONDS

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

/* ---- calendar: proto/calendar.c, clamped to the domain ------------------- */

static int64_t clamp(int64_t t, int64_t lo, int64_t hi)
{
    return t < lo ? lo : t > hi ? hi : t;
}

/* Local seconds may exceed the instant domain by a UTC offset. */
#define LOCAL_MAX (TZ_TIME_MAX + 2 * DAY)

int64_t tz_civil_to_seconds(const struct civil *c)
{
    return clamp(cal_civil_to_seconds(c), -LOCAL_MAX, LOCAL_MAX);
}

void tz_seconds_to_civil(int64_t s, struct civil *out)
{
    cal_seconds_to_civil(clamp(s, -LOCAL_MAX, LOCAL_MAX), out);
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    cal_civil_from_days(cal_floor_div(t, DAY), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

struct cur {
    const char *s;
    size_t n, i;
};

static bool at_end(const struct cur *c)
{
    return c->i >= c->n;
}

static int peek(const struct cur *c)
{
    return c->i < c->n ? (unsigned char)c->s[c->i] : -1;
}

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static const char *parse_name(struct cur *c, char out[TZ_MAX_ABBR])
{
    size_t start, len;
    if (peek(c) == '<') {
        /* Quoted form: any of [A-Za-z0-9+-], as in "<+0530>" or "<-03>". */
        start = ++c->i;
        while (!at_end(c) &&
               (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-'))
            c->i++;
        if (peek(c) != '>')
            return "a name opened with '<' must be closed with '>'";
        len = c->i - start;
        c->i++;
    } else {
        start = c->i;
        while (is_alpha(peek(c)))
            c->i++;
        len = c->i - start;
    }
    if (len < 3)
        return "a zone abbreviation needs at least 3 characters";
    if (len >= TZ_MAX_ABBR)
        return "a zone abbreviation has at most 15 characters";
    memcpy(out, c->s + start, len);
    out[len] = '\0';
    return NULL;
}

static bool parse_num(struct cur *c, int maxdigits, int *out)
{
    int v = 0, k = 0;
    while (k < maxdigits && is_digit(peek(c))) {
        v = v * 10 + (peek(c) - '0');
        c->i++;
        k++;
    }
    *out = v;
    return k > 0 && !is_digit(peek(c));
}

/* [+-]hh[:mm[:ss]], hours at most maxh. */
static const char *parse_hms(struct cur *c, int maxh, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (peek(c) == '+' || peek(c) == '-')
        sign = c->s[c->i++] == '-' ? -1 : 1;
    if (!parse_num(c, 3, &h))
        return "expected a UTC offset or a time, in hours";
    if (h > maxh)
        return maxh == 24 ? "hours of an offset must be 0-24"
                          : "hours of a rule time must be 0-167";
    if (peek(c) == ':') {
        c->i++;
        if (!parse_num(c, 2, &m) || m > 59)
            return "minutes must be 0-59";
        if (peek(c) == ':') {
            c->i++;
            if (!parse_num(c, 2, &s) || s > 59)
                return "seconds must be 0-59";
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return NULL;
}

static const char *parse_rule(struct cur *c, struct tz_rule *r)
{
    int a, b, d;
    const char *why;
    memset(r, 0, sizeof(*r));
    if (peek(c) == 'J') {
        c->i++;
        if (!parse_num(c, 3, &a) || a < 1 || a > 365)
            return "Jn needs a day 1-365";
        r->kind = TZ_RULE_JULIAN1;
        r->day = (int16_t)a;
    } else if (is_digit(peek(c))) {
        if (!parse_num(c, 3, &a) || a > 365)
            return "n needs a day 0-365";
        r->kind = TZ_RULE_JULIAN0;
        r->day = (int16_t)a;
    } else if (peek(c) == 'M') {
        c->i++;
        if (!parse_num(c, 2, &a) || a < 1 || a > 12)
            return "Mm.w.d needs a month 1-12";
        if (peek(c) != '.' || (c->i++, !parse_num(c, 1, &b)) || b < 1 || b > 5)
            return "Mm.w.d needs a week 1-5";
        if (peek(c) != '.' || (c->i++, !parse_num(c, 1, &d)) || d > 6)
            return "Mm.w.d needs a weekday 0-6";
        r->kind = TZ_RULE_MWD;
        r->month = (uint8_t)a;
        r->week = (uint8_t)b;
        r->wday = (uint8_t)d;
    } else {
        return "expected a rule date (Jn, n or Mm.w.d)";
    }
    r->time = 2 * 3600;
    if (peek(c) == '/') {
        c->i++;
        if ((why = parse_hms(c, TZ_MAX_RULE_HOURS, &r->time)) != NULL)
            return why;
    }
    return NULL;
}

static const char *parse_posix(const char *s, size_t n, struct tz_posix *p)
{
    struct cur c = {s, n, 0};
    int32_t off;
    const char *why;

    memset(p, 0, sizeof(*p));
    if ((why = parse_name(&c, p->std_abbr)) != NULL)
        return why;
    if (at_end(&c))
        return "expected a UTC offset after the standard time name";
    if ((why = parse_hms(&c, 24, &off)) != NULL)
        return why;
    p->std_utoff = -off; /* POSIX counts hours west of Greenwich */
    if (at_end(&c))
        return NULL;
    p->has_dst = true;
    if ((why = parse_name(&c, p->dst_abbr)) != NULL)
        return why;
    p->dst_utoff = p->std_utoff + 3600;
    if (!at_end(&c) && peek(&c) != ',') {
        if ((why = parse_hms(&c, 24, &off)) != NULL)
            return why;
        p->dst_utoff = -off;
    }
    if (at_end(&c)) {
        /* No rules: what tzcode and glibc assume (the US rules since 2007). */
        p->start = (struct tz_rule){.kind = TZ_RULE_MWD, .month = 3, .week = 2, .time = 7200};
        p->end = (struct tz_rule){.kind = TZ_RULE_MWD, .month = 11, .week = 1, .time = 7200};
        return NULL;
    }
    if (peek(&c) != ',')
        return "expected ',' before the start rule";
    c.i++;
    if ((why = parse_rule(&c, &p->start)) != NULL)
        return why;
    if (peek(&c) != ',')
        return "expected ',' before the end rule";
    c.i++;
    if ((why = parse_rule(&c, &p->end)) != NULL)
        return why;
    if (!at_end(&c))
        return "unexpected text after the end rule";
    return NULL;
}

/* The instant a rule names in a year, the rule's time being wall-clock
 * time at UTC offset utoff. */
static int64_t rule_instant(const struct tz_rule *r, int64_t year, int32_t utoff)
{
    int64_t days = cal_days_from_civil(year, 1, 1);
    switch (r->kind) {
    case TZ_RULE_JULIAN1:
        days += r->day - 1 + (r->day >= 60 && cal_is_leap(year));
        break;
    case TZ_RULE_JULIAN0:
        days += r->day;
        break;
    default: {
        int64_t first = cal_days_from_civil(year, r->month, 1);
        int d = (r->wday - cal_weekday(first) + 7) % 7 + 7 * (r->week - 1);
        if (d >= cal_days_in_month(year, r->month))
            d -= 7; /* week 5: the last such weekday */
        days = first + d;
        break;
    }
    }
    return days * DAY + r->time - utoff;
}

struct fev {
    int64_t at;
    bool dst; /* daylight time from `at` on */
};

#define FEV_YEARS 5

/*
 * The footer's changes in the years y-2..y+2, in time order. Ties keep year
 * order, so when one year's end meets the next year's start (a zone on
 * daylight time all year, "EST5EDT,0/0,J365/25") daylight time wins. Two
 * years back is enough for the latest change at or before any instant of
 * year y: rule times reach at most 167 hours past the end of their year.
 */
static void footer_events(const struct tz_posix *f, int64_t y, struct fev ev[2 * FEV_YEARS])
{
    int n = 0;
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        ev[n++] = (struct fev){rule_instant(&f->start, yy, f->std_utoff), true};
        ev[n++] = (struct fev){rule_instant(&f->end, yy, f->dst_utoff), false};
    }
    for (int i = 1; i < n; i++) {
        struct fev e = ev[i];
        int j = i;
        while (j > 0 && ev[j - 1].at > e.at) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = e;
    }
}

static bool footer_isdst(const struct tz_posix *f, int64_t t)
{
    struct fev ev[2 * FEV_YEARS];
    bool dst = false;
    if (!f->has_dst)
        return false;
    footer_events(f, year_of(t), ev);
    for (int i = 0; i < 2 * FEV_YEARS && ev[i].at <= t; i++)
        dst = ev[i].dst;
    return dst;
}

static int footer_next_change(const struct tz_posix *f, int64_t t, int64_t *at)
{
    struct fev ev[2 * FEV_YEARS];
    int64_t y = year_of(t), seen = t;
    /* Two windows: more than five years ahead. A yearly rule that changes
     * nothing in that long (all-year daylight time) never will. */
    for (int w = 0; w < 2; w++, y += 4) {
        footer_events(f, y, ev);
        for (int i = 0; i < 2 * FEV_YEARS; i++) {
            if (ev[i].at <= seen || ev[i].at > TZ_TIME_MAX)
                continue;
            seen = ev[i].at;
            if (footer_isdst(f, ev[i].at) != footer_isdst(f, ev[i].at - 1) &&
                f->std_utoff != f->dst_utoff) {
                *at = ev[i].at;
                return 0;
            }
        }
    }
    return -1;
}

/* ---- TZif ---------------------------------------------------------------- */

struct head {
    uint8_t version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int read_head(const uint8_t *p, size_t avail, struct head *h, char *err, size_t cap)
{
    if (avail < HEADER_LEN)
        return fail(err, cap, "truncated: %zu bytes left, a TZif header needs %d", avail,
                    HEADER_LEN);
    if (memcmp(p, "TZif", 4) != 0)
        return fail(err, cap, "not a TZif file: no \"TZif\" magic");
    h->version = p[4];
    /* Versions after 4 are promised to stay readable by v2+ readers. */
    if (h->version != 0 && h->version < '2')
        return fail(err, cap, "unknown TZif version byte 0x%02x", h->version);
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return 0;
}

static uint64_t block_len(const struct head *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int parse_block(const uint8_t *p, const struct head *h, unsigned tsize, struct tz *z,
                       char *err, size_t cap)
{
    const uint8_t *times = p, *idx = p + (size_t)h->timecnt * tsize;
    const uint8_t *ttinfo = idx + h->timecnt, *chars = ttinfo + (size_t)h->typecnt * 6;

    if (h->typecnt == 0)
        return fail(err, cap, "no local time types (typecnt is 0)");
    if (h->typecnt > TZ_MAX_TYPES)
        return fail(err, cap, "%u local time types, more than TZ_MAX_TYPES (%d)", h->typecnt,
                    TZ_MAX_TYPES);
    if (h->timecnt > TZ_MAX_TRANSITIONS)
        return fail(err, cap, "%u transitions, more than TZ_MAX_TRANSITIONS (%d)", h->timecnt,
                    TZ_MAX_TRANSITIONS);
    if (h->charcnt == 0)
        return fail(err, cap, "no abbreviation characters (charcnt is 0)");
    if (h->charcnt > TZ_MAX_CHARS)
        return fail(err, cap, "%u abbreviation characters, more than TZ_MAX_CHARS (%d)", h->charcnt,
                    TZ_MAX_CHARS);
    if (h->leapcnt != 0)
        return fail(err, cap,
                    "%u leap-second records: leap-second (\"right/\") zones are not supported",
                    h->leapcnt);
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return fail(err, cap, "isstdcnt and isutcnt must be 0 or typecnt (%u)", h->typecnt);

    memcpy(z->chars, chars, h->charcnt);
    z->ntypes = h->typecnt;
    for (uint32_t i = 0; i < h->typecnt; i++) {
        const uint8_t *t = ttinfo + 6 * i;
        int32_t utoff = (int32_t)be32(t);
        if (utoff < -TZ_MAX_UTOFF || utoff > TZ_MAX_UTOFF)
            return fail(err, cap, "type %u: UTC offset %d s is beyond +-25:59:59", i, utoff);
        if (t[4] > 1)
            return fail(err, cap, "type %u: isdst is %u, not 0 or 1", i, t[4]);
        if (t[5] >= h->charcnt || memchr(chars + t[5], '\0', h->charcnt - t[5]) == NULL)
            return fail(err, cap, "type %u: abbreviation index %u is not a NUL-terminated string",
                        i, t[5]);
        z->types[i] = (struct tz_type){utoff, t[4], t[5]};
    }

    z->type_before = 0;
    z->ntrans = 0;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t at = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (idx[i] >= h->typecnt)
            return fail(err, cap, "transition %u: type %u, but there are only %u types", i, idx[i],
                        h->typecnt);
        if (i > 0 &&
            at <= (tsize == 8 ? be64(times + 8 * (i - 1)) : (int32_t)be32(times + 4 * (i - 1))))
            return fail(err, cap, "transition %u: times are not in ascending order", i);
        if (at > TZ_TIME_MAX)
            return fail(err, cap, "transition %u: time %lld is beyond the year 1,000,000,000", i,
                        (long long)at);
        if (at < TZ_TIME_MIN) {
            /* zic writes a "big bang" transition at -2^59: before the
             * domain, it only says which type holds at its start. */
            z->type_before = idx[i];
            continue;
        }
        z->trans[z->ntrans] = at;
        z->trans_type[z->ntrans++] = idx[i];
    }
    return 0;
}

int tzfile_parse(const uint8_t *data, size_t len, struct tz *out, char *err, size_t errcap)
{
    struct head h1, h2;
    size_t off;
    uint64_t b1;

    memset(out, 0, sizeof(*out));
    if (read_head(data, len, &h1, err, errcap))
        return -1;
    b1 = block_len(&h1, 4);
    if (b1 > len - HEADER_LEN)
        return fail(err, errcap, "truncated: the version 1 data needs %llu bytes, %zu are left",
                    (unsigned long long)b1, len - HEADER_LEN);
    off = HEADER_LEN + (size_t)b1;
    if (h1.version == 0) {
        if (off != len)
            return fail(err, errcap, "%zu bytes after the version 1 data", len - off);
        return parse_block(data + HEADER_LEN, &h1, 4, out, err, errcap);
    }

    /* Version 2+: the 32-bit block is only for old readers; skip it. */
    if (read_head(data + off, len - off, &h2, err, errcap))
        return -1;
    off += HEADER_LEN;
    uint64_t b2 = block_len(&h2, 8);
    if (b2 > len - off)
        return fail(err, errcap, "truncated: the 64-bit data needs %llu bytes, %zu are left",
                    (unsigned long long)b2, len - off);
    if (parse_block(data + off, &h2, 8, out, err, errcap))
        return -1;
    off += (size_t)b2;

    if (off >= len || data[off] != '\n')
        return fail(err, errcap, "missing footer: expected a newline after the 64-bit data");
    const char *s = (const char *)data + off + 1;
    const char *nl = memchr(s, '\n', len - off - 1);
    if (nl == NULL)
        return fail(err, errcap, "footer not terminated by a newline");
    if ((size_t)(nl + 1 - (const char *)data) != len)
        return fail(err, errcap, "%zu bytes after the footer",
                    len - (size_t)(nl + 1 - (const char *)data));
    if (nl == s)
        return 0; /* empty footer: the last type holds for ever */
    const char *why = parse_posix(s, (size_t)(nl - s), &out->footer);
    if (why != NULL) {
        int n = (int)(nl - s) > 64 ? 64 : (int)(nl - s);
        for (int i = 0; i < n; i++)
            if (s[i] < 0x20 || s[i] > 0x7e)
                n = i;
        return fail(err, errcap, "footer TZ string \"%.*s\": %s", n, s, why);
    }
    out->has_footer = true;
    return 0;
}

int tz_from_posix(const char *s, size_t n, struct tz *out, char *err, size_t errcap)
{
    const char *why;
    memset(out, 0, sizeof(*out));
    if ((why = parse_posix(s, n, &out->footer)) != NULL) {
        int k = n > 64 ? 64 : (int)n;
        for (int i = 0; i < k; i++)
            if (s[i] < 0x20 || s[i] > 0x7e)
                k = i;
        return fail(err, errcap, "TZ string \"%.*s\": %s", k, s, why);
    }
    out->has_footer = true;
    out->ntypes = 1;
    out->types[0].utoff = out->footer.std_utoff;
    memcpy(out->chars, out->footer.std_abbr, sizeof(out->footer.std_abbr));
    return 0;
}

void tz_init_utc(struct tz *out)
{
    memset(out, 0, sizeof(*out));
    out->ntypes = 1;
    memcpy(out->chars, "UTC", 4);
}

/* ---- lookups ------------------------------------------------------------- */

static bool in_footer(const struct tz *z, int64_t t)
{
    return z->has_footer && (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]);
}

void tz_lookup(const struct tz *z, int64_t t, struct tz_info *out)
{
    const struct tz_type *ty;

    if (z == NULL) {
        *out = (struct tz_info){0, false, "UTC"};
        return;
    }
    t = clamp(t, TZ_TIME_MIN, TZ_TIME_MAX);
    if (in_footer(z, t)) {
        bool dst = footer_isdst(&z->footer, t);
        out->utoff = dst ? z->footer.dst_utoff : z->footer.std_utoff;
        out->isdst = dst;
        out->abbr = dst ? z->footer.dst_abbr : z->footer.std_abbr;
        return;
    }
    if (z->ntrans == 0 || t < z->trans[0]) {
        ty = &z->types[z->type_before];
    } else {
        uint32_t lo = 0, hi = z->ntrans; /* the answer is in [lo, hi) */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        ty = &z->types[z->trans_type[lo]];
    }
    out->utoff = ty->utoff;
    out->isdst = ty->isdst;
    out->abbr = z->chars + ty->abbr;
}

int64_t tz_utc_offset(const struct tz *z, int64_t t)
{
    struct tz_info info;
    tz_lookup(z, t, &info);
    return info.utoff;
}

int tz_next_transition(const struct tz *z, int64_t t, int64_t *at)
{
    if (z == NULL)
        return -1;
    t = clamp(t, TZ_TIME_MIN, TZ_TIME_MAX);
    if (z->ntrans > 0 && t < z->trans[z->ntrans - 1]) {
        uint32_t lo = 0, hi = z->ntrans; /* first transition > t */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (uint32_t i = lo; i < z->ntrans; i++) {
            if (tz_utc_offset(z, z->trans[i]) != tz_utc_offset(z, z->trans[i] - 1)) {
                *at = z->trans[i];
                return 0;
            }
        }
        t = z->trans[z->ntrans - 1];
    }
    if (in_footer(z, t) && z->footer.has_dst)
        return footer_next_change(&z->footer, t, at);
    return -1;
}

void tz_utc_to_local(const struct tz *z, int64_t t, struct civil *out)
{
    t = clamp(t, TZ_TIME_MIN, TZ_TIME_MAX);
    tz_seconds_to_civil(t + tz_utc_offset(z, t), out);
}

#define MAX_CANDIDATES (TZ_MAX_TYPES + 2)

int tz_local_seconds_to_utc(const struct tz *z, int64_t local, int64_t out[2])
{
    int64_t offs[MAX_CANDIDATES], sol[MAX_CANDIDATES], c;
    int noff = 0, nsol = 0;

    if (local < TZ_TIME_MIN + TZ_MAX_UTOFF || local > TZ_TIME_MAX - TZ_MAX_UTOFF)
        return -1;
    /*
     * A solution u has u + offset(u) == local, so it lies within
     * TZ_MAX_UTOFF of local and its offset is one in force somewhere in
     * that window: try each of them.
     */
    c = local - TZ_MAX_UTOFF - 1;
    offs[noff++] = tz_utc_offset(z, c);
    while (noff < 8 && tz_next_transition(z, c, &c) == 0 && c <= local + TZ_MAX_UTOFF + 1)
        offs[noff++] = tz_utc_offset(z, c);
    if (noff == 8 && z != NULL) {
        /* A file with that many changes in two days: try every offset it has. */
        noff = 0;
        for (uint32_t i = 0; i < z->ntypes; i++)
            offs[noff++] = z->types[i].utoff;
        offs[noff++] = z->footer.std_utoff;
        offs[noff++] = z->footer.dst_utoff;
    }
    for (int i = 0; i < noff; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= offs[j] == offs[i];
        if (!dup && tz_utc_offset(z, local - offs[i]) == offs[i])
            sol[nsol++] = local - offs[i];
    }
    for (int i = 1; i < nsol; i++) {
        int64_t v = sol[i];
        int j = i;
        while (j > 0 && sol[j - 1] > v) {
            sol[j] = sol[j - 1];
            j--;
        }
        sol[j] = v;
    }
    if (nsol > 2)
        nsol = 2;
    for (int i = 0; i < nsol; i++)
        out[i] = sol[i];
    return nsol;
}

int tz_local_to_utc(const struct tz *z, const struct civil *l, int64_t out[2])
{
    if (l->month < 1 || l->month > 12 || l->day < 1 ||
        l->day > cal_days_in_month(l->year, l->month) || l->hour < 0 || l->hour > 23 ||
        l->minute < 0 || l->minute > 59 || l->second < 0 || l->second > 59)
        return -1;
    return tz_local_seconds_to_utc(z, tz_civil_to_seconds(l), out);
}
