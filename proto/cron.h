/*
 * cron.h - cron schedule expressions and their next fire time, pure.
 *
 * Syntax (parsed by cron_parse, case-insensitive):
 *
 *   minute hour day-of-month month day-of-week         five fields (Vixie cron)
 *   second minute hour day-of-month month day-of-week  six fields: seconds first
 *
 *   field    values                 names
 *   second   0-59
 *   minute   0-59
 *   hour     0-23
 *   dom      1-31
 *   month    1-12                   jan feb mar apr may jun jul aug sep oct nov dec
 *   dow      0-7 (0 and 7: Sunday)  sun mon tue wed thu fri sat
 *
 *   Each field is a comma-separated list of items: `*`, `a`, `a-b`, each
 *   optionally followed by a step `/n` (every n-th value of the range;
 *   `*` is the whole range), or `a/n` (a to the field's maximum, every n).
 *   Names are allowed where numbers are, except in steps. In day of week a
 *   range may end with `sun` or `7` ("fri-sun").
 *
 *   @yearly @annually  = 0 0 1 1 *       @daily @midnight = 0 0 * * *
 *   @monthly           = 0 0 1 * *       @hourly          = 0 * * * *
 *   @weekly            = 0 0 * * 0
 *   @every <duration>  e.g. @every 90s, @every 5m, @every 1h30m: units h, m
 *                      and s, whole numbers, at least 1s, at most
 *                      CRON_EVERY_MAX seconds.
 *
 * Day matching, as in Vixie cron: when the day-of-month and day-of-week
 * fields both start with something other than `*`, a day matches if
 * EITHER matches ("0 0 13 * 5": the 13th and every Friday); otherwise both
 * must match (so `*` on one side leaves the other deciding).
 *
 * An expression that can never fire because no month given has the day of
 * month given ("0 0 30 2 *", "0 0 31 4,6,9,11 *") is rejected; February 29
 * counts as existing.
 *
 * Daylight-saving time: see cron_next and the comment at the top of
 * cron.c.
 */
#ifndef TRIREME_PROTO_CRON_H
#define TRIREME_PROTO_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/tzfile.h"

#define CRON_EVERY_MAX (10LL * 366 * 86400) /* @every at most about ten years */
#define CRON_ERR_LEN   128                  /* an error buffer this big holds any message */

/* Instants cron_next works with: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define CRON_TIME_MIN (-62135596800LL)
#define CRON_TIME_MAX 253402300799LL

/* cron_next looks this far past `after` (one 400-year Gregorian cycle and a
 * year: any schedule cron_parse accepts has a fire time within it, unless
 * a zone's gaps swallow all of them). */
#define CRON_HORIZON ((int64_t)401 * 366 * 86400)

enum {
    CRON_DOM_STAR = 1 << 0, /* day-of-month field starts with '*' */
    CRON_DOW_STAR = 1 << 1, /* day-of-week field starts with '*' */
    CRON_FIXED = 1 << 2,    /* a fixed time of day: the DST rules of cron_next */
    CRON_SECONDS = 1 << 3,  /* six fields: the seconds field was given */
    CRON_EVERY = 1 << 4,    /* @every: only `every` is meaningful */
};

/* A parsed schedule: one bit per allowed value. Plain data, 40 bytes. */
struct cron {
    uint64_t second; /* bits 0-59; only bit 0 with five fields */
    uint64_t minute; /* bits 0-59 */
    uint32_t hour;   /* bits 0-23 */
    uint32_t dom;    /* bits 1-31 */
    uint16_t month;  /* bits 1-12 */
    uint8_t dow;     /* bits 0-6, 0 = Sunday */
    uint8_t flags;   /* CRON_* above */
    int64_t every;   /* @every period in seconds, else 0 */
};

/*
 * Parse a NUL-terminated expression. Returns 0 and fills *out, or -1 with
 * a message in err (when err != NULL and errcap > 0) naming the field and
 * the problem, e.g. "field 2 (hour): 25 is out of range 0-23",
 * "field 5 (day of week): unknown name 'fry'", "expected 5 or 6 fields,
 * got 4".
 */
int cron_parse(const char *expr, struct cron *out, char *err, size_t errcap);

/*
 * The first fire time strictly after after_unix, in Unix seconds, for the
 * schedule evaluated in zone z (NULL: UTC). Returns 0 and *next_unix, or
 * -1 when there is none within CRON_HORIZON (or before CRON_TIME_MAX), or
 * after_unix is outside [CRON_TIME_MIN, CRON_TIME_MAX].
 *
 * @every ignores the zone: it fires at anchor_unix + k * period for every
 * integer k, so the result does not depend on when the caller last ran it
 * (pass 0 to anchor on the Unix epoch). Other schedules ignore anchor_unix.
 *
 * Wall-clock gaps and overlaps (daylight-saving changes), as Vixie cron:
 *   - a fixed-time schedule (flags & CRON_FIXED: no `*` in the second,
 *     minute or hour field, and the hour field is single values only, no
 *     range or step) fires once for each wall-clock time it names: at the
 *     first instant showing it when the clock shows it twice, and at the
 *     instant the clock jumps when the jump skips it;
 *   - any other schedule follows the wall clock: it fires at every instant
 *     whose wall-clock time matches, so twice in a repeated hour and never
 *     in a skipped one.
 * Cost: O(log transitions) plus O(1) per calendar month crossed (the search
 * jumps field by field, never second by second).
 */
int cron_next(const struct cron *c, const struct tz *z, int64_t after_unix, int64_t anchor_unix,
              int64_t *next_unix);

/* Whether a wall-clock time (local seconds, see tzfile.h) matches the
 * fields of a non-@every schedule, ignoring daylight-saving rules. */
bool cron_matches(const struct cron *c, int64_t local);

#endif
