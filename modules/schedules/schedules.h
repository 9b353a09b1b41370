/*
 * schedules.h - what every writer and reader of periodic schedules shares:
 * the web API (/v1/schedules), the beat role, its CLI and --schedules
 * files. Validation of a schedule as a client describes it, and IANA time
 * zones from the system tz database. The statements are in sql.h.
 *
 * A schedule fires a job at each slot of its cron expression ("@every N"
 * is anchored to the Unix epoch, so restarts never shift it), evaluated
 * in its IANA zone with Vixie-cron daylight-saving rules (proto/cron.h).
 */
#ifndef TRIREME_MODULES_SCHEDULES_H
#define TRIREME_MODULES_SCHEDULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/tzfile.h"

#define SCHED_NAME_MAX       200
#define SCHED_CRON_MAX       255 /* a cron expression's characters */
#define SCHED_ZONE_NAME_MAX  64
#define SCHED_CATCHUP_MAX_MS (7LL * 86400 * 1000) /* catchup_window at most a week */
#define SCHED_JITTER_MAX_MS  (3600LL * 1000)      /* jitter at most an hour */

/* --- sched_input.c ------------------------------------------------------ */

/*
 * Validate a schedule as the API, the CLI or a --schedules file gives it:
 * name, cron (or every: seconds or "10s"), timezone, queue, kind, payload,
 * priority, max_attempts, timeout, enabled, misfire, catchup_window,
 * overlap, jitter. Read-only fields a GET returns (id, source, last_fire,
 * next_fire, last_job_id, created_at, updated_at) are ignored. partial
 * (PATCH): nothing is required. Returns a new object keyed by column
 * (cron, timeout_ms, catchup_window_ms, jitter_ms, ...) holding only the
 * fields given, or NULL with *field and msg set.
 */
json_t *sched_input_normalize(json_t *in, bool partial, const char *tzdir, const char **field,
                              char *msg, size_t cap);
/* Whether a schedule name is acceptable (it is a URL path segment). */
bool sched_name_valid(const char *s, size_t n);

/* --- zone.c ------------------------------------------------------------- */

/* Load zone `name` ("UTC", "Europe/Berlin") from tzdir into *out. Returns 0,
 * or -1 with a message naming the problem ("unknown time zone ..."). */
int sched_zone_load(const char *tzdir, const char *name, struct tz *out, char *err, size_t cap);

/* A loop-owned cache of loaded zones: one struct tz per name, shared by
 * every schedule in it. */
struct sched_zones {
    struct sched_zone {
        char name[SCHED_ZONE_NAME_MAX];
        struct tz *tz;
    } * v;
    unsigned n, cap;
};
/* The zone `name`, loaded on first use; NULL with err set when it cannot
 * be (the cache keeps only zones that loaded). */
const struct tz *sched_zones_get(struct sched_zones *zs, const char *tzdir, const char *name,
                                 char *err, size_t cap);
void sched_zones_free(struct sched_zones *zs);

#endif
