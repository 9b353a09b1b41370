/*
 * queue_beat.h - the beat part of a queue backend: turn a batch of due
 * schedule slots into jobs, one job per slot, and record each slot's fire.
 *
 * The guarantee every backend keeps: a slot yields at most one job however
 * many beats fire it, before or after a failover, and a slot's fire record
 * (trireme.schedule_fires, keyed (schedule, slot)) names that job. A batch
 * that failed may be fired again with the same slots: the backend must
 * make that safe (the PostgreSQL backend commits each slot's job with its
 * record; the Redis backend enqueues under a per-slot unique key, then
 * records). Misfire, jitter and the catch-up window are beat's: it hands
 * over the slots to fire. Overlap (skip_if_running) is the backend's: it
 * alone knows whether a schedule's previous job still runs.
 *
 * Beat fires one batch at a time, on its loop, and waits for its answer.
 */
#ifndef TRIREME_MODULES_QUEUE_BEAT_H
#define TRIREME_MODULES_QUEUE_BEAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct config;
struct loop;
struct pg_pool;

#define QUEUE_BEAT_TIMEOUT_MS 10000 /* deadline of one statement or command of a batch */
#define QUEUE_BEAT_RETRY_MS   500   /* pause before a failed batch (or its record) is retried */

/* What became of a slot. */
enum queue_beat_outcome {
    QUEUE_BEAT_NONE = 0, /* not handled by this call: another beat fired it first, or its
                            schedule is disabled or gone */
    QUEUE_BEAT_FIRED,    /* job_id is its job */
    QUEUE_BEAT_SKIPPED,  /* skip_if_running: blocked_by (its previous job) still runs */
};

struct queue_beat_slot {
    /* Beat fills these. */
    int64_t schedule_id;
    int64_t slot;      /* Unix seconds */
    int64_t next;      /* the schedule's slot after it, or 0 when it never fires again */
    int64_t last_job;  /* the schedule's latest job beat saw fired, or 0 */
    json_t *job;       /* the job template (queue, kind, payload, priority, max_attempts,
                          timeout_ms) when the backend wants_job, else NULL; borrowed: a
                          backend that needs it after fire() returns takes a reference */
    int32_t jitter_ms; /* the job runs this long after the slot */
    bool catchup;      /* missed while no beat ran (reason 'catchup'), else 'due' */
    bool exclusive;    /* overlap skip_if_running */
    /* The backend fills these before done runs. */
    uint8_t outcome; /* enum queue_beat_outcome */
    bool created;    /* FIRED: this call made the job (else it existed under the slot's key) */
    int64_t job_id, blocked_by;
};

/* One batch in flight; the caller embeds it and keeps it (and v) until
 * done. The backend may reorder v[0..n). */
struct queue_beat_batch;
/* err NULL: every slot has its outcome. Else nothing is known of any slot
 * (some may have fired: firing them again is safe), and `what` is the
 * backend's sentence for the log ("beat: firing due slots failed, ..."). */
typedef void (*queue_beat_done_fn)(struct queue_beat_batch *b, const char *err, const char *what);
struct queue_beat_batch {
    struct queue_beat_slot *v;
    unsigned n;
    queue_beat_done_fn done;
};

/* The per-loop connections a backend's beat part runs on. */
struct queue_beat_conns {
    struct loop *loop;
    const struct config *cfg;
    struct pg_pool *pg; /* the caller's; beat's statements and the fires run on it in order */
};

struct queue_beat_ops {
    /* Slots carry their schedule's job template (the backend enqueues it
     * itself rather than reading the schedule in its statement); beat then
     * hands over only slots whose schedule it still has loaded (a disabled
     * or deleted one fires nothing). */
    bool wants_job;
    /* Per-loop state (its own connections, buffers), or NULL after logging
     * why. close() stops its connections, once no batch is in flight;
     * free() releases it after the loop ended. */
    void *(*open)(const struct queue_beat_conns *conns);
    void (*close)(void *qb);
    void (*free)(void *qb);
    /* Fire b->v[0..n) (n >= 1); b->done runs exactly once, never from
     * inside this call. */
    void (*fire)(void *qb, struct queue_beat_batch *b);
    /* Beat no longer wants the batch in flight retried (it lost the lead,
     * or it is stopping): a part of it waiting to be retried is dropped
     * (done runs now, with an error); a statement in flight still answers. */
    void (*cancel)(void *qb);
};

extern const struct queue_beat_ops pg_beat_ops;
extern const struct queue_beat_ops redis_beat_ops;

#endif
