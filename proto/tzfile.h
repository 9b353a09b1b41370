/*
 * tzfile.h - IANA time zones (TZif files, RFC 8536 + RFC 9636) and POSIX TZ
 * rules, pure.
 *
 * The caller reads a zone file (e.g. /usr/share/zoneinfo/America/New_York)
 * and passes its bytes to tzfile_parse(), which fills a caller-owned
 * struct tz: no I/O, no clocks, no allocation, no globals. A struct tz is
 * about 19 KB and is read-only after parsing, so one copy per zone can be
 * shared by every schedule (and every thread) that uses it.
 *
 * What a zone says, and where it comes from:
 *   - instants before the first transition: time type 0 (RFC 8536 3.2);
 *   - between transitions: the type of the latest transition at or before
 *     the instant (the 64-bit v2+ data block when the file has one);
 *   - at and after the last transition, or everywhere when there are no
 *     transitions: the footer's POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0"),
 *     with the v3 extensions (rule times from -167 to 167 hours). A file
 *     without a footer (version 1, or an empty footer) keeps the last type.
 *
 * Times are Unix seconds (int64_t, leap seconds not counted). Wall-clock
 * times are a struct civil, or "local seconds": the wall-clock time read
 * as if it were UTC, i.e. Unix seconds + the UTC offset in force.
 *
 * Every function that takes a zone accepts NULL for UTC.
 *
 * Calendar: proleptic Gregorian (proto/calendar.h). Instants are
 * clamped to the domain [TZ_TIME_MIN, TZ_TIME_MAX] (about +-1.1 billion
 * years, so a year always fits an int).
 */
#ifndef TRIREME_PROTO_TZFILE_H
#define TRIREME_PROTO_TZFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/calendar.h"

/* Named limits: a file beyond one of them is rejected with a message
 * naming the limit. Real tzdata files stay far below them (a "fat" zone
 * has under 300 transitions and under 20 types). */
#define TZ_MAX_TRANSITIONS 2000
#define TZ_MAX_TYPES       64
#define TZ_MAX_CHARS       256             /* bytes of NUL-terminated abbreviations */
#define TZ_MAX_ABBR        16              /* one footer abbreviation, with its NUL */
#define TZ_MAX_UTOFF       (26 * 3600 - 1) /* |UTC offset|: RFC 8536 allows -24:59:59..25:59:59 */
#define TZ_MAX_RULE_HOURS  167             /* |hours| in a footer rule time (RFC 8536 3.3.1) */

#define TZ_TIME_MAX ((int64_t)1 << 55)
#define TZ_TIME_MIN (-TZ_TIME_MAX)

struct tz_type {
    int32_t utoff; /* seconds east of UTC */
    uint8_t isdst;
    uint8_t abbr; /* offset of the NUL-terminated abbreviation in tz.chars */
};

/* One POSIX TZ rule date: when a change happens, in a given year. */
enum tz_rule_kind {
    TZ_RULE_JULIAN1 = 1, /* Jn: day n (1-365), February 29 never counted */
    TZ_RULE_JULIAN0,     /* n: zero-based day n (0-365), February 29 counted */
    TZ_RULE_MWD,         /* Mm.w.d: day d (0=Sunday) of week w (1-4, 5=last) of month m */
};

struct tz_rule {
    uint8_t kind; /* enum tz_rule_kind */
    uint8_t month, week, wday;
    int16_t day;
    int32_t time; /* seconds after local midnight, in the time being left */
};

/* A footer: "STDoffset[DST[offset][,start[/time],end[/time]]]". */
struct tz_posix {
    bool has_dst;
    int32_t std_utoff; /* seconds east of UTC (POSIX writes the opposite sign) */
    int32_t dst_utoff;
    char std_abbr[TZ_MAX_ABBR];
    char dst_abbr[TZ_MAX_ABBR];
    struct tz_rule start; /* into daylight time, in standard time */
    struct tz_rule end;   /* back to standard time, in daylight time */
};

struct tz {
    uint32_t ntrans;
    uint32_t ntypes;
    uint8_t type_before; /* in force before trans[0]: type 0, or the type of a
                            transition dropped for lying before TZ_TIME_MIN */
    bool has_footer;
    int64_t trans[TZ_MAX_TRANSITIONS]; /* strictly ascending */
    uint8_t trans_type[TZ_MAX_TRANSITIONS];
    struct tz_type types[TZ_MAX_TYPES];
    char chars[TZ_MAX_CHARS];
    struct tz_posix footer;
};

/* What a zone says about one instant. abbr points into the struct tz. */
struct tz_info {
    int32_t utoff;
    bool isdst;
    const char *abbr;
};

/*
 * Parse a TZif file (versions 1 to 4). Returns 0 and fills *out, or -1 with
 * a NUL-terminated message in err (when err != NULL and errcap > 0) saying
 * what is wrong, e.g. "truncated: 120 bytes, the header needs 44".
 * Files with leap-second records (the "right/" zones) are rejected: their
 * transition times are not Unix times.
 */
int tzfile_parse(const uint8_t *data, size_t len, struct tz *out, char *err, size_t errcap);

/* A zone from a POSIX TZ string alone, e.g. "CET-1CEST,M3.5.0,M10.5.0/3"
 * (as in a TZif footer; a DST name without rules gets the US rules
 * M3.2.0,M11.1.0). Returns 0, or -1 with err set. */
int tz_from_posix(const char *s, size_t n, struct tz *out, char *err, size_t errcap);

/* UTC: no transitions, offset 0, abbreviation "UTC". */
void tz_init_utc(struct tz *out);

/* Offset from UTC, in seconds east, in force at an instant. */
int64_t tz_utc_offset(const struct tz *z, int64_t unix_seconds);

/* Offset, daylight flag and abbreviation in force at an instant. */
void tz_lookup(const struct tz *z, int64_t unix_seconds, struct tz_info *out);

/*
 * The first instant > t at which the UTC offset changes (transitions that
 * change only the abbreviation or the DST flag are skipped). Returns 0 and
 * *at, or -1 when the offset never changes again (for a footer rule: not
 * within the next few years, which for a yearly rule means never).
 */
int tz_next_transition(const struct tz *z, int64_t t, int64_t *at);

/* Wall-clock time of an instant. */
void tz_utc_to_local(const struct tz *z, int64_t t, struct civil *out);

/*
 * The instants whose wall-clock time is *local (wday ignored). Returns how
 * many there are, earliest first in out: 0 in a gap (spring forward), 1
 * normally, 2 in an overlap (fall back). Should a zone repeat a wall-clock
 * time more than twice, the two earliest are returned. Returns -1 when a
 * field is out of range (month 1-12, day within the month, hour 0-23,
 * minute 0-59, second 0-59).
 */
int tz_local_to_utc(const struct tz *z, const struct civil *local, int64_t out[2]);

/* The same with the wall-clock time as local seconds (see above). */
int tz_local_seconds_to_utc(const struct tz *z, int64_t local, int64_t out[2]);

/* A civil time read as UTC, to and from seconds since 1970-01-01T00:00
 * (proto/calendar.h), with the seconds clamped to the domain (widened by
 * a day either side for wall-clock times). */
int64_t tz_civil_to_seconds(const struct civil *c);
void tz_seconds_to_civil(int64_t s, struct civil *out);

/* The calendar (proto/calendar.h) under the names tzfile's callers use. */
static inline int64_t tz_days_from_civil(int64_t year, int month, int day)
{
    return cal_days_from_civil(year, month, day);
}
static inline void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    cal_civil_from_days(days, year, month, day);
}
static inline int tz_days_in_month(int64_t year, int month)
{
    return cal_days_in_month(year, month);
}
static inline bool tz_is_leap(int64_t year)
{
    return cal_is_leap(year);
}

#endif
