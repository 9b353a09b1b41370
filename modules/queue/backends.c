/*
 * backends.c - the queue backends this binary has, and the choice of one.
 *
 * Each descriptor only gathers the parts its backend's files define; see
 * queue.h.
 */
#include "modules/queue/queue.h"
#include "modules/queue/queue_api.h"

#include "kernel/config.h"
#include "modules/queue/queue_worker.h"

const struct queue_backend queue_pg = {
    .name = "postgres",
    .needs = QUEUE_NEEDS_PG,

    .worker = &pg_worker_ops,

    .api = &pg_api_ops, /* the API part: modules/queue/pg_api.c */

    .beat = NULL, /* the beat part: modules/queue/pg_beat.c */
};

const struct queue_backend queue_redis = {
    .name = "redis",
    .needs = QUEUE_NEEDS_REDIS,

    .worker = &redis_worker_ops,

    .api = &redis_api_ops, /* the API part: modules/queue/redis_api.c */

    .beat = NULL, /* the beat part: modules/queue/redis_beat.c */
};

const struct queue_backend *queue_backend_of(const struct config *cfg)
{
    return cfg->queue_backend == QUEUE_REDIS ? &queue_redis : &queue_pg;
}
