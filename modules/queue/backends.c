/*
 * backends.c - the queue backends this binary has, and the choice of one.
 *
 * Each descriptor only gathers the parts its backend's files define; see
 * queue.h.
 */
#include "modules/queue/queue.h"

#include <string.h>

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

static const char *redis_unmet(const struct config *cfg)
{
    return *cfg->redis_url ? NULL : "--queue-backend=redis needs REDIS_URL";
}

const struct queue_backend queue_redis = {
    .name = "redis",
    .needs = QUEUE_NEEDS_REDIS,
    .unmet = redis_unmet,
    .worker = &redis_worker_ops,
    .api = &redis_api_ops,
    .beat = &redis_beat_ops,
    .pull = &redis_pull_ops,
};

/* Every backend built in, and their names for the message that lists them. */
static const struct queue_backend *const backends[] = {&queue_pg, &queue_redis};
#define BACKEND_NAMES "postgres, redis"

const struct queue_backend *queue_backend_named(const char *name)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return NULL;
}

const struct queue_backend *queue_backend_of(const struct config *cfg)
{
    const struct queue_backend *qb = queue_backend_named(cfg->queue_backend);
    return qb ? qb : &queue_pg; /* only before queue_backend_unmet said yes */
}

const char *queue_backend_unmet(const struct config *cfg)
{
    const struct queue_backend *qb = queue_backend_named(cfg->queue_backend);
    if (!qb)
        return "--queue-backend: no such queue backend (" BACKEND_NAMES ")";
    return qb->unmet ? qb->unmet(cfg) : NULL;
}
