/*
 * job.h - a job as a kind sees it, and the calls a kind makes.
 *
 * A job_run is one attempt of one job. A kind receives it in start() and
 * ends it with job_finish(), at once or from any later completion. The
 * worker core (modules/worker/core.c) implements these calls and owns
 * everything else: leases, heartbeats, time limits, fencing, batching.
 * The run is valid until job_finish() returns; the kind's own state
 * (ctx, handler_timer, handler_query) must be released by then.
 */
#ifndef TRIREME_MODULES_KINDS_JOB_H
#define TRIREME_MODULES_KINDS_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernel/pg.h"
#include "kernel/timer.h"

struct loop;
struct job_kind;

/* How much of the previous attempt's error a run is given (prev_error):
 * enough for a kind to recognise its own prefix, e.g. "HTTP 503 ". The
 * backends copy these bytes and never read them: only the kind that wrote
 * the error knows its format. */
#define JOB_PREV_ERROR_HEAD   16
#define JOB_STR_(x)           #x
#define JOB_STR(x)            JOB_STR_(x)
#define JOB_PREV_ERROR_HEAD_S JOB_STR(JOB_PREV_ERROR_HEAD) /* for SQL and Lua text */

struct job_run {
    const struct job_kind *kind;
    int64_t id;
    const char *queue; /* the queue it was taken from (the worker's copy) */
    int attempt, max_attempts;
    char prev_error[JOB_PREV_ERROR_HEAD + 1]; /* its first bytes; "" on a first attempt */
    bool files; /* may have uploaded files (in pg): exec and http kinds fetch them */
    json_t *payload;
    uint64_t timeout_ms;
    struct loop *loop;
    struct pg_pool *pg;            /* NULL: no database configured */
    void *ctx;                     /* the kind's own state */
    struct timer handler_timer;    /* for kinds that need one (sleep) */
    struct pg_query handler_query; /* for kinds that query (sql) */
};

/* End the attempt. result: stolen reference or NULL. error: NULL on
 * success. permanent: do not retry (a bad payload). */
void job_finish(struct job_run *r, json_t *result, const char *error, bool permanent);
/* End the attempt as failed and retried, but no sooner than not_before_ms
 * from now (an HTTP Retry-After): the job's backoff when that is later. */
void job_retry_after(struct job_run *r, const char *error, uint64_t not_before_ms);
/* Whether this backend can hand a running attempt over (job_hand_off). */
bool job_can_hand_off(struct job_run *r);
/* End the attempt here, not the job: the job stays running under a lease
 * of lease_ms, fenced by the token "<attempt>.<secret>" (modules/queue/
 * pull.h), and whoever holds the token finishes it through the job
 * callbacks; if nobody does before the lease ends, it is retried like any
 * lost lease. The slot is freed. Only when job_can_hand_off(). */
void job_hand_off(struct job_run *r, const char *secret, uint64_t lease_ms);
/* Record progress (0..100) and the current step (or NULL). */
void job_progress(struct job_run *r, int percent, const char *step);
/* The `sql` kind's statement named in --sql-jobs, or NULL. */
const char *job_sql_statement(struct job_run *r, const char *name);

/* For the backends: the first bytes of the previous attempt's error (n
 * bytes at s; n 0: a first attempt). */
static inline void job_set_prev_error(struct job_run *r, const char *s, size_t n)
{
    if (n > JOB_PREV_ERROR_HEAD)
        n = JOB_PREV_ERROR_HEAD;
    if (n)
        memcpy(r->prev_error, s, n);
    r->prev_error[n] = '\0';
}

static inline struct loop *job_loop(struct job_run *r)
{
    return r->loop;
}

static inline struct pg_pool *job_pg(struct job_run *r)
{
    return r->pg;
}

#endif
