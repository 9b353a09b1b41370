/*
 * worker.h - the worker role and the API job handlers use.
 *
 * A job_run is one attempt of one job on this worker. Handlers receive it
 * in kind->start() and end it with job_finish(), synchronously or from any
 * later completion. Everything else (leases, heartbeats, time limits,
 * fencing, batching completions) is the worker's business.
 */
#ifndef TRIREME_MODULES_WORKER_H
#define TRIREME_MODULES_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernel/pg.h"
#include "kernel/timer.h"
#include "modules/worker/kind.h"

struct server;
struct kind_limits;

struct worker;
struct job_run;

/* Where a run's outcome goes: the queue backend that fed it. NULL in a
 * job_run means PostgreSQL (worker.c); --queue-backend=redis sets
 * queue_redis.c's. Kinds never look at it: they call job_finish() etc. */
struct job_backend {
    void (*finish)(struct job_run *r, json_t *result, const char *error, bool permanent);
    void (*progress)(struct job_run *r, int percent, const char *step);
    struct loop *(*loop)(struct job_run *r);
    struct pg_pool *(*pg)(struct job_run *r); /* NULL: no database */
};

struct job_run {
    struct job_run *prev, *next; /* the worker's running list */
    struct worker *w;
    const struct job_kind *kind;
    int64_t id;
    int attempt, max_attempts;
    json_t *payload;
    uint64_t started_ns;
    uint64_t timeout_ms;
    struct timer soft, hard;
    bool stop_requested; /* soft limit, cancellation or shutdown */
    bool slot_freed;     /* hard limit passed: counted out of concurrency */
    bool lost;           /* lease lost or cancelled: completion will not be written */
    bool cancelled;
    uint64_t hb_gen;     /* the heartbeat that last included this run */
    long long token;     /* leader fencing token it was claimed under (0: compete mode) */
    void *ctx;           /* the handler's own state */
    struct timer handler_timer; /* for handlers that need one (sleep) */
    struct pg_query handler_query; /* for handlers that query (sql) */
    const struct job_backend *be;  /* NULL: the PostgreSQL backend */
    void *owner;                   /* the backend's per-loop state */
    char ref[48];                  /* the backend's name of this delivery (a Stream entry id) */
    unsigned queue_ix;             /* index into the worker's queues */
    bool recorded;                 /* Redis: its start is written (MARK or START) */
};

/* End the attempt. result: stolen reference or NULL. error: NULL on
 * success. permanent: do not retry (bad payload). */
void job_finish(struct job_run *r, json_t *result, const char *error, bool permanent);
/* Record progress (0..100) and the current step (or NULL). */
void job_progress(struct job_run *r, int percent, const char *step);
struct loop *job_loop(struct job_run *r);
struct pg_pool *job_pg(struct job_run *r); /* NULL: no database configured */
/* The `sql` kind's named statement, or NULL. */
const char *worker_sql_statement(struct job_run *r, const char *name);

/* --kind-limits as parsed at start, or NULL when none are set. */
const struct kind_limits *worker_kind_limits(struct server *s);

/* modules/worker/queue_redis.c: the worker role on --queue-backend=redis. */
int queue_redis_start(struct loop *l);
void queue_redis_stop(struct loop *l);
void queue_redis_wake(struct loop *l);
void queue_redis_cleanup(struct server *s);

#endif
