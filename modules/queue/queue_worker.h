/*
 * queue_worker.h - the worker part of a queue backend.
 *
 * The worker core (modules/worker/core.h) owns what is the same on every
 * backend; a backend implements only how jobs arrive and how their fate is
 * written: fetching deliveries (and turning each into a run with
 * worker_run_new/worker_run_start), renewing leases, taking over dead
 * workers' jobs, cancellation notices, and writing outcomes in batches.
 *
 * Contracts:
 *  - The backend's per-loop struct embeds struct worker first
 *    (worker_size), its run embeds struct worker_run first (run_size).
 *  - Every asynchronous operation the backend starts is counted with
 *    worker_op_begin/worker_op_end: the drain ends when no run and no
 *    operation is left, so a new operation never needs its own drain flag.
 *  - record() only buffers; the core calls flush() at the end of the loop
 *    turn (worker_flush_soon) and while draining.
 *  - Leases are renewed on the core's rhythm (a third of --lease, one
 *    renewal in flight, none while handing back): heartbeat() sends one
 *    for the runs it sets hb_gen = w->hb_gen on, and the answer calls
 *    worker_run_lose for each of them not renewed, then
 *    worker_heartbeat_done.
 */
#ifndef TRIREME_MODULES_QUEUE_WORKER_H
#define TRIREME_MODULES_QUEUE_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HANDOFF_SECRET_MAX 64 /* a hand-off token's secret (pull.h's tokens) */

struct config;
struct pg_pool;
struct redis_client;
struct worker;
struct worker_run;

enum worker_verdict {
    OUTCOME_OK,        /* result */
    OUTCOME_FAIL,      /* error; retried after delay_ms while attempts remain */
    OUTCOME_PERMANENT, /* error; no retry (a bad payload, an unknown kind) */
    OUTCOME_DEFER,     /* not run: its kind's rate limit; again in delay_ms, attempt not spent */
    OUTCOME_BACK,      /* not finished at shutdown: straight back, attempt not spent */
    OUTCOME_DROP,      /* lost (cancelled, taken over): spend the delivery, write nothing */
    OUTCOME_HANDOFF,   /* still running, fenced by secret's token for delay_ms (a lease) */
};

struct worker_outcome {
    enum worker_verdict verdict;
    json_t *result;     /* OUTCOME_OK: borrowed, may be NULL */
    const char *error;  /* OUTCOME_FAIL, OUTCOME_PERMANENT */
    uint64_t delay_ms;  /* OUTCOME_FAIL, OUTCOME_DEFER; OUTCOME_HANDOFF: the lease */
    const char *secret; /* OUTCOME_HANDOFF: the token's secret */
};

struct queue_worker_ops {
    size_t worker_size, run_size;
    /* record() takes OUTCOME_HANDOFF (the job callbacks can finish the job). */
    bool can_hand_off;
    /* Why this backend cannot run with cfg (a missing URL), or NULL. */
    const char *(*unmet)(const struct config *cfg);
    /* Connections and timers; fetching starts when they are ready.
     * 0 or -errno; on failure free() still runs and must cope with a
     * half-opened worker (zeroed fields it never set). */
    int (*open)(struct worker *w);
    /* Slots are free: fetch more if the backend's policy allows (sized by
     * worker_fetch_size). Never called while draining. */
    void (*fetch)(struct worker *w);
    /* Buffer the outcome of a run (which is freed right after). */
    void (*record)(struct worker *w, struct worker_run *r, const struct worker_outcome *o);
    /* Write what record() buffered (and starts the backend buffers). */
    void (*flush)(struct worker *w);
    void (*progress)(struct worker *w, struct worker_run *r, int percent, const char *step);
    /* Renew the leases of the runs it marks (see above): true when a
     * renewal went out, false when none had to. NULL: leases never lapse. */
    bool (*heartbeat)(struct worker *w);
    /* Draining began: stop fetching (timers, blocked reads). */
    void (*drain)(struct worker *w);
    /* Drained: close the connections. */
    void (*close)(struct worker *w);
    /* At exit: free what open() allocated. */
    void (*free)(struct worker *w);
    /* Connections the job kinds and --kind-limits may share, or NULL. */
    struct pg_pool *(*pg)(struct worker *w);
    struct redis_client *(*redis)(struct worker *w);
};

extern const struct queue_worker_ops pg_worker_ops;    /* pg_worker.c */
extern const struct queue_worker_ops redis_worker_ops; /* redis_worker.c */

#endif
