/*
 * fuzz_cron.c - libFuzzer target for proto/cron.c and proto/tzfile.c.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_cron.c proto/cron.c proto/tzfile.c -o /tmp/fuzz_cron
 *   /tmp/fuzz_cron tests/fuzz/corpus/cron/      (or: sh tests/fuzz/run.sh 60)
 *
 * Input: a 17-byte head, then a cron expression up to the first newline,
 * then optionally a zone:
 *   byte 0       bits 0-1 pick the zone: 0 and 3 UTC only; 1 the bytes after
 *                the newline as a POSIX TZ string; 2 as a TZif file
 *   bytes 1-8    `after`, little-endian, folded into the cron time domain
 *   bytes 9-16   the @every anchor, the same way
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - cron_parse returns 0 or -1; on -1 the message is non-empty, printable
 *     and shorter than CRON_ERR_LEN; on 0 the masks lie in their fields'
 *     ranges, are non-empty, and parsing again gives the same struct;
 *   - in UTC and (when it parses) in the zone, a few cron_next steps:
 *     each result is strictly later than the last, within CRON_HORIZON,
 *     the same when asked from one second before it or from any instant in
 *     between (fire times do not depend on when you ask), and a time the
 *     fields match (or, for a fixed-time schedule, a spring-forward
 *     instant); in UTC no sampled second in between matches; @every
 *     results are anchor + k * period;
 *   - zone lookups: offsets within TZ_MAX_UTOFF, wall-to-UTC results map
 *     back to the wall-clock time they came from, earliest first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cron.h"
#include "proto/tzfile.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define STEPS 4

static int64_t fold(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    int64_t s = (int64_t)v;
    if (s >= CRON_TIME_MIN && s <= CRON_TIME_MAX)
        return s;
    return CRON_TIME_MIN + (int64_t)(v % (uint64_t)(CRON_TIME_MAX - CRON_TIME_MIN + 1));
}

static void check_error(const char *err)
{
    size_t n = strlen(err);
    CHECK(n > 0 && n < CRON_ERR_LEN - 1);
    for (size_t i = 0; i < n; i++)
        CHECK(err[i] >= 0x20 && err[i] <= 0x7e);
}

static void check_struct(const struct cron *c, const char *expr)
{
    struct cron again;
    CHECK(cron_parse(expr, &again, NULL, 0) == 0);
    CHECK(memcmp(c, &again, sizeof(again)) == 0);
    if (c->flags & CRON_EVERY) {
        CHECK(c->every >= 1 && c->every <= CRON_EVERY_MAX);
        CHECK(c->flags == CRON_EVERY);
        return;
    }
    CHECK(c->every == 0);
    CHECK(c->second != 0 && c->second >> 60 == 0);
    CHECK(c->minute != 0 && c->minute >> 60 == 0);
    CHECK(c->hour != 0 && c->hour >> 24 == 0);
    CHECK(c->dom != 0 && (c->dom & 1) == 0);
    CHECK(c->month != 0 && (c->month & ~0x1ffeu) == 0);
    CHECK(c->dow != 0 && c->dow >> 7 == 0);
    if (!(c->flags & CRON_SECONDS))
        CHECK(c->second == 1);
}

/* One fire time n after t: the invariants that hold in any zone. */
static void check_fire(const struct cron *c, const struct tz *z, int64_t t, int64_t anchor,
                       int64_t n, uint64_t salt)
{
    int64_t again;

    CHECK(n > t && n <= CRON_TIME_MAX);
    if (c->flags & CRON_EVERY) {
        CHECK((n - anchor) % c->every == 0 && n - c->every <= t);
        return;
    }
    CHECK(n - t <= CRON_HORIZON + 1);
    CHECK(cron_next(c, z, n - 1, anchor, &again) == 0 && again == n);
    int64_t mid = t + (int64_t)(salt % (uint64_t)(n - t));
    CHECK(cron_next(c, z, mid, anchor, &again) == 0 && again == n);

    int64_t off = tz_utc_offset(z, n);
    if (!cron_matches(c, n + off))
        CHECK((c->flags & CRON_FIXED) && tz_utc_offset(z, n - 1) < off);
    if (z == NULL) {
        /* No second in between matches: sample a few. */
        for (int i = 1; i <= 8 && n - t > 1; i++) {
            uint64_t r = salt * (uint64_t)i * 2654435761u;
            CHECK(!cron_matches(c, t + 1 + (int64_t)(r % (uint64_t)(n - t - 1))));
        }
    }
}

static void run_steps(const struct cron *c, const struct tz *z, int64_t after, int64_t anchor)
{
    int64_t t = after, n;
    for (int i = 0; i < STEPS; i++) {
        if (cron_next(c, z, t, anchor, &n) != 0)
            return;
        check_fire(c, z, t, anchor, n, (uint64_t)after * 31 + (uint64_t)i);
        t = n;
    }
}

static void check_zone(const struct tz *z, int64_t t)
{
    int64_t off = tz_utc_offset(z, t), out[2], at;
    struct tz_info info;
    struct civil c;

    CHECK(off >= -TZ_MAX_UTOFF && off <= TZ_MAX_UTOFF);
    tz_lookup(z, t, &info);
    CHECK(info.utoff == off && info.abbr != NULL && strlen(info.abbr) < TZ_MAX_CHARS);
    tz_utc_to_local(z, t, &c);
    CHECK(c.month >= 1 && c.month <= 12 && c.day >= 1 && c.day <= 31 && c.hour >= 0 &&
          c.hour < 24 && c.minute >= 0 && c.minute < 60 && c.second >= 0 && c.second < 60 &&
          c.wday >= 0 && c.wday < 7);
    int n = tz_local_to_utc(z, &c, out);
    CHECK(n >= 1 && n <= 2);
    for (int i = 0; i < n; i++)
        CHECK(out[i] + tz_utc_offset(z, out[i]) == t + off);
    if (n == 2)
        CHECK(out[0] < out[1]);
    if (tz_next_transition(z, t, &at) == 0) {
        CHECK(at > t);
        CHECK(tz_utc_offset(z, at) != tz_utc_offset(z, at - 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tz zone; /* 19 KB: not on the stack */
    char err[CRON_ERR_LEN];
    struct cron c;
    int64_t after, anchor;
    const uint8_t *nl;
    size_t elen;
    char *expr;
    int mode;

    if (size < 17)
        return 0;
    mode = data[0] & 3;
    after = fold(data + 1);
    anchor = fold(data + 9);
    data += 17;
    size -= 17;
    nl = memchr(data, '\n', size);
    elen = nl != NULL ? (size_t)(nl - data) : size;
    expr = malloc(elen + 1);
    CHECK(expr != NULL);
    memcpy(expr, data, elen);
    expr[elen] = '\0';

    err[0] = '\0';
    if (cron_parse(expr, &c, err, sizeof(err)) != 0) {
        check_error(err);
        free(expr);
        return 0;
    }
    check_struct(&c, expr);
    run_steps(&c, NULL, after, anchor);

    if (nl != NULL && (mode == 1 || mode == 2)) {
        const uint8_t *zd = nl + 1;
        size_t zn = size - elen - 1;
        int rc = mode == 1 ? tz_from_posix((const char *)zd, zn, &zone, err, sizeof(err))
                           : tzfile_parse(zd, zn, &zone, err, sizeof(err));
        if (rc == 0) {
            check_zone(&zone, after);
            run_steps(&c, &zone, after, anchor);
        } else {
            CHECK(rc == -1 && err[0] != '\0');
        }
    }
    free(expr);
    return 0;
}
