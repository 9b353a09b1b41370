/*
 * beat.h - the beat role's pieces that other files (the web API, the CLI,
 * the unit tests) use: time zones from the system tz database, validation
 * of a schedule as a client describes it, and the slot planner.
 *
 * A schedule fires a job at each slot of its cron expression ("@every N"
 * is anchored to the Unix epoch, so restarts never shift it), evaluated in
 * its IANA zone with Vixie-cron daylight-saving rules (proto/cron.h). Beat
 * hands due slots to trireme.fire_schedules() (sql/005), which inserts each
 * slot's job together with its unique (schedule, slot) row: one job per
 * slot however many beats run.
 */
#ifndef TRIREME_MODULES_BEAT_H
#define TRIREME_MODULES_BEAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/redis.h"
#include "modules/rqueue/rqueue.h"
#include "proto/cron.h"
#include "proto/tzfile.h"

#define BEAT_NAME_MAX       200
#define BEAT_ZONE_NAME_MAX  64
#define BEAT_CATCHUP_MAX_MS (7LL * 86400 * 1000) /* catchup_window at most a week */
#define BEAT_JITTER_MAX_MS  (3600LL * 1000)      /* jitter at most an hour */

enum beat_misfire { MISFIRE_SKIP = 0, MISFIRE_FIRE_ONCE, MISFIRE_FIRE_ALL };
enum beat_overlap { OVERLAP_ALLOW = 0, OVERLAP_SKIP_IF_RUNNING };

/* --- zone.c ------------------------------------------------------------- */

/* Load zone `name` ("UTC", "Europe/Berlin") from tzdir into *out. Returns 0,
 * or -1 with a message naming the problem ("unknown time zone ..."). */
int beat_zone_load(const char *tzdir, const char *name, struct tz *out, char *err, size_t cap);

/* A loop-owned cache of loaded zones: one struct tz per name, shared by
 * every schedule in it. */
struct beat_zones {
    struct beat_zone {
        char name[BEAT_ZONE_NAME_MAX];
        struct tz *tz;
    } * v;
    unsigned n, cap;
};
const struct tz *beat_zones_get(struct beat_zones *zs, const char *tzdir, const char *name,
                                char *err, size_t cap);
void beat_zones_free(struct beat_zones *zs);

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

/* --- plan.c: which slots to fire, pure ----------------------------------- */

struct beat_sched {
    int64_t id;
    char *name;
    struct cron cron;
    const struct tz *tz;
    int64_t next;      /* next slot to fire, Unix seconds */
    int64_t last;      /* latest slot handed to the database, or INT64_MIN */
    uint32_t heap_idx; /* 1-based slot in the beat heap; 0 when not in it */
    uint8_t misfire, overlap;
    int32_t jitter_ms;
    int64_t catchup_window_s;
    /* --queue-backend=redis only: */
    json_t *job;      /* the job template (queue, kind, payload, ...) */
    int64_t last_job; /* the latest job it enqueued, 0 when none */
};

/*
 * Plan a schedule that is (re)loaded at `now` (Unix seconds), whose slots
 * up to `from` are handled (the later of its last fire and its last
 * definition change). Slots in (from, now] were missed: with skip none is
 * fired, with fire_once the latest, with fire_all every one (at most `max`,
 * the latest ones); only those within catchup_window_s of now count.
 * Writes the slots to fire (ascending) to out[0..*n) and s->next to the
 * first slot after now. Returns 0, or -1 when the schedule never fires
 * again.
 */
int beat_plan_load(struct beat_sched *s, int64_t from, int64_t now, int64_t *out, unsigned max,
                   unsigned *n);

/* A min-heap of schedules by next slot (ties by id). */
struct beat_heap {
    struct beat_sched **v;
    uint32_t n, cap;
};
int beat_heap_push(struct beat_heap *h, struct beat_sched *s);
void beat_heap_remove(struct beat_heap *h, struct beat_sched *s);
/* s->next changed: restore the heap order. */
void beat_heap_update(struct beat_heap *h, struct beat_sched *s);
static inline struct beat_sched *beat_heap_min(const struct beat_heap *h)
{
    return h->n ? h->v[0] : NULL;
}
void beat_heap_free(struct beat_heap *h);

/* --- fire_redis.c: firing on --queue-backend=redis ----------------------- */

/* One due slot to enqueue. in: id, slot, jitter_ms, job (a reference the
 * call drops), exclusive (skip_if_running), last_job. out: job_id (0 when
 * skipped), created (this call made it), blocked_by (the job that made it
 * skip, or 0). */
struct beat_rslot {
    int64_t id, slot, last_job, job_id, blocked_by;
    json_t *job;
    int32_t jitter_ms;
    bool exclusive, created;
};

struct beat_redis;
/* err: NULL when every slot has its outcome, else why none has. */
typedef void (*beat_redis_fn)(struct beat_redis *r, const char *err);

struct beat_redis {
    struct redis_client rc;
    struct rq_shas shas;
    bool up;
    struct rq_call enq;
    struct redis_cmd *checks; /* one HGET per skip_if_running slot */
    unsigned ncap, nchecks, nenq;
    struct beat_rslot *v;
    unsigned n;
    beat_redis_fn fn;
    char err[200];
    void *data;
};
int beat_redis_init(struct beat_redis *r, struct loop *l, const char *url);
/* Enqueue v[0..n) (one batch at a time); fn runs once with the outcomes in v. */
void beat_redis_enqueue(struct beat_redis *r, struct beat_rslot *v, unsigned n, beat_redis_fn fn);
void beat_redis_close(struct beat_redis *r);
void beat_redis_free(struct beat_redis *r);

/* "2026-03-08T07:00:00Z" into out (at least 21 bytes). */
void beat_rfc3339(int64_t unix_s, char *out, size_t cap);

#endif
