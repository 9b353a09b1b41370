/*
 * queue.h - the queue interface: everything the roles ask of a job store.
 *
 * A backend is one const struct queue_backend (BearSSL/nginx style: a
 * table of functions and nothing else), defined in modules/queue/
 * backends.c from the parts its files implement. It is chosen once, at
 * start, by --queue-backend (queue_backend_of); no role tests which one it
 * has. Four parts, each a table of its own:
 *
 *   worker  (queue_worker.h)  fetching deliveries, renewing their leases,
 *           writing outcomes in batches, handing back on drain. The worker
 *           core (modules/worker/core.h) owns everything that is the same
 *           on every backend: runs, slots, time limits, kind limits, retry
 *           delays, cancellation bookkeeping and the drain.
 *   api     (queue_api.h)     enqueue one job or a batch, get, list,
 *           cancel, retry: the web API's /v1/jobs, on a loop's connections.
 *   beat    (queue_beat.h)    enqueue due schedule slots, one job per slot.
 *   pull    (pull.h)          claims and callbacks of external pull workers
 *           (optional); when waiting claims look again is pull_watch.h's.
 *
 * Adding a backend: write its parts against these headers and add its
 * descriptor to backends.c; --queue-backend then takes its name.
 */
#ifndef TRIREME_MODULES_QUEUE_H
#define TRIREME_MODULES_QUEUE_H

#include <stdbool.h>

struct config;
struct queue_worker_ops;
struct queue_api_ops;
struct queue_beat_ops;
struct queue_pull_ops;

/* What a backend needs up for its jobs: /readyz reports 503 without it. */
enum {
    QUEUE_NEEDS_PG = 1 << 0,
    QUEUE_NEEDS_REDIS = 1 << 1,
};

struct queue_backend {
    const char *name; /* as --queue-backend spells it */
    unsigned needs;   /* QUEUE_NEEDS_* */
    /* Why jobs cannot live here with cfg at all (a missing URL), or NULL;
     * the start stops on it. Roles say on their own what they lack. */
    const char *(*unmet)(const struct config *cfg);
    const struct queue_worker_ops *worker;
    const struct queue_api_ops *api;
    const struct queue_beat_ops *beat;
    const struct queue_pull_ops *pull; /* pull.h; NULL: no external pull workers */
};

extern const struct queue_backend queue_pg;
extern const struct queue_backend queue_redis;

/* The backend --queue-backend names (queue_backend_unmet checked it). */
const struct queue_backend *queue_backend_of(const struct config *cfg);
/* The backend of this name, or NULL. */
const struct queue_backend *queue_backend_named(const char *name);
/* Why cfg names no backend, or one that cannot hold jobs; NULL when it can. */
const char *queue_backend_unmet(const struct config *cfg);

#endif
