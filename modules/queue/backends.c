/*
 * backends.c - the queue backends this binary has, and the choice of one.
 *
 * Each descriptor only gathers the parts its backend's files define; see
 * queue.h.
 */
#include "modules/queue/queue.h"

#include "kernel/config.h"
#include "modules/queue/queue_api.h"
#include "modules/queue/queue_beat.h"
#include "modules/queue/queue_worker.h"
#include "modules/queue/pull.h"

const struct queue_backend queue_pg = {
    .name = "postgres",
    .needs = QUEUE_NEEDS_PG,
    .worker = &pg_worker_ops,
    .api = &pg_api_ops,
    .beat = &pg_beat_ops,
    .pull = &pg_pull_ops,
};

const struct queue_backend queue_redis = {
    .name = "redis",
    .needs = QUEUE_NEEDS_REDIS,
    .worker = &redis_worker_ops,
    .api = &redis_api_ops,
    .beat = &redis_beat_ops,
    .pull = &redis_pull_ops,
};

const struct queue_backend *queue_backend_of(const struct config *cfg)
{
    return cfg->queue_backend == QUEUE_REDIS ? &queue_redis : &queue_pg;
}
