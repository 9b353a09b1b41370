/*
 * run_limits.c - a run's time limits, shared by the PostgreSQL worker
 * (worker.c) and the Redis one (queue_redis_run.c); see run_limits.h.
 */
#include "modules/worker/run_limits.h"

#include <stdio.h>

#include "kernel/log.h"
#include "kernel/loop.h"

void job_request_stop(struct job_run *r)
{
    if (r->stop_requested)
        return;
    r->stop_requested = true;
    if (r->kind->stop)
        r->kind->stop(r);
}

static void on_soft_limit(struct loop *l, struct timer *t)
{
    struct job_run *r = (struct job_run *)((char *)t - offsetof(struct job_run, soft));
    LOG(LOG_WARN, "job reached its time limit, asking it to stop", L_INT("job_id", r->id),
        L_INT("timeout_ms", r->timeout_ms));
    loop_timer_in(l, &r->hard, HARD_LIMIT_EXTRA_MS);
    job_request_stop(r);
}

void job_limits_init(struct job_run *r, timer_fn on_hard)
{
    r->soft.fn = on_soft_limit;
    r->hard.fn = on_hard;
}

void job_run_start(struct job_run *r, struct loop *l)
{
    r->started_ns = l->now_ns;
    loop_timer_in(l, &r->soft, r->timeout_ms);
    r->kind->start(r);
}

void job_hard_limit_reason(const struct job_run *r, char *msg, size_t cap)
{
    snprintf(msg, cap, "hard time limit: still running %d ms after its %llu ms limit",
             HARD_LIMIT_EXTRA_MS, (unsigned long long)r->timeout_ms);
    LOG(LOG_ERROR, "job did not stop; failing the attempt and freeing its slot",
        L_INT("job_id", r->id), L_STR("kind", r->kind->name));
}
