/*
 * run.c - what a run does the same on both queue backends; see run.h.
 */
#include "modules/worker/run.h"

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

void job_log_outcome(const struct job_run *r, const char *error, bool permanent, uint64_t now_ns)
{
    uint64_t ms = (now_ns - r->started_ns) / 1000000;
    if (!r->lost) {
        if (error)
            LOG(LOG_WARN, "job failed", L_INT("job_id", r->id), L_STR("kind", r->kind->name),
                L_INT("attempt", r->attempt), L_INT("max_attempts", r->max_attempts),
                L_STR("error", error),
                L_BOOL("will_retry", !permanent && r->attempt < r->max_attempts),
                L_INT("duration_ms", ms));
        else
            LOG(LOG_INFO, "job completed", L_INT("job_id", r->id), L_STR("kind", r->kind->name),
                L_INT("attempt", r->attempt), L_INT("duration_ms", ms));
    } else if (r->cancelled) {
        LOG(LOG_INFO, "job stopped after cancellation", L_INT("job_id", r->id),
            L_INT("duration_ms", ms));
    }
}
