/*
 * backends.c - the queue backends this binary has, and the choice of one.
 *
 * Each descriptor only gathers the parts its backend's files define; see
 * queue.h.
 */
#include "modules/queue/queue.h"

#include "kernel/config.h"
#include "modules/queue/queue_beat.h"

const struct queue_backend queue_pg = {
    .name = "postgres",
    .needs = QUEUE_NEEDS_PG,

    .worker = NULL, /* the worker part: modules/queue/pg_worker.c */

    .api = NULL, /* the API part: modules/queue/pg_api.c */

    .beat = &queue_pg_beat,
};

const struct queue_backend queue_redis = {
    .name = "redis",
    .needs = QUEUE_NEEDS_REDIS,

    .worker = NULL, /* the worker part: modules/queue/redis_worker.c */

    .api = NULL, /* the API part: modules/queue/redis_api.c */

    .beat = &queue_redis_beat,
};

const struct queue_backend *queue_backend_of(const struct config *cfg)
{
    return cfg->queue_backend == QUEUE_REDIS ? &queue_redis : &queue_pg;
}
