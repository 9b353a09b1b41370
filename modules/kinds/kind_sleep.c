/*
 * kind_sleep.c - `sleep`: {"ms": N, "steps": S, "fail": "reason"}.
 *
 * Waits N ms on a loop timer (never blocking the loop), reporting progress
 * in S steps; then succeeds with {"slept_ms": N}, or fails with "reason"
 * when given (how retries and dead jobs are exercised). Stops early when
 * asked (time limit, cancellation, shutdown).
 */
#include <stdio.h>
#include <string.h>

#include "kernel/loop.h"
#include "kernel/container_of.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind.h"

#define SLEEP_MAX_MS (24 * 3600 * 1000)

struct sleep_state {
    json_int_t ms, steps, done;
};

static int sleep_validate(json_t *p, char *msg, size_t cap)
{
    json_t *ms = json_object_get(p, "ms"), *steps = json_object_get(p, "steps"),
           *fail = json_object_get(p, "fail");
    if (!json_is_object(p) || !json_is_integer(ms) || json_integer_value(ms) < 0 ||
        json_integer_value(ms) > SLEEP_MAX_MS) {
        snprintf(msg, cap, "must be {\"ms\": 0..%d} (optional \"steps\", \"fail\")", SLEEP_MAX_MS);
        return -1;
    }
    if (steps && (!json_is_integer(steps) || json_integer_value(steps) < 1 ||
                  json_integer_value(steps) > 100)) {
        snprintf(msg, cap, "steps must be an integer from 1 to 100");
        return -1;
    }
    if (fail && !json_is_string(fail)) {
        snprintf(msg, cap, "fail must be a string (the error to fail with)");
        return -1;
    }
    return 0;
}

static void finish(struct job_run *r)
{
    json_t *fail = json_object_get(r->payload, "fail");
    struct sleep_state *st = r->ctx;
    json_int_t ms = st->ms;
    free(st);
    r->ctx = NULL;
    if (fail)
        job_finish(r, NULL, json_string_value(fail), false);
    else
        job_finish(r, json_pack("{sI}", "slept_ms", ms), NULL, false);
}

static void on_tick(struct loop *l, struct timer *t)
{
    struct job_run *r = container_of(t, struct job_run, handler_timer);
    struct sleep_state *st = r->ctx;
    if (++st->done >= st->steps) {
        finish(r);
        return;
    }
    char step[48];
    snprintf(step, sizeof(step), "step %lld of %lld", (long long)st->done + 1,
             (long long)st->steps);
    job_progress(r, (int)(st->done * 100 / st->steps), step);
    loop_timer_in(l, t, (uint64_t)(st->ms / st->steps));
}

static void sleep_start(struct job_run *r)
{
    char msg[128];
    if (sleep_validate(r->payload, msg, sizeof(msg))) {
        job_finish(r, NULL, msg, true);
        return;
    }
    struct sleep_state *st = xcalloc(1, sizeof(*st));
    st->ms = json_integer_value(json_object_get(r->payload, "ms"));
    json_t *steps = json_object_get(r->payload, "steps");
    st->steps = steps ? json_integer_value(steps) : 1;
    r->ctx = st;
    r->handler_timer.fn = on_tick;
    loop_timer_in(job_loop(r), &r->handler_timer, (uint64_t)(st->ms / st->steps));
}

static void sleep_stop(struct job_run *r)
{
    loop_timer_cancel(job_loop(r), &r->handler_timer);
    free(r->ctx);
    r->ctx = NULL;
    job_finish(r, NULL, "stopped before the sleep ended (time limit, cancellation or shutdown)",
               false);
}

const struct job_kind kind_sleep = {
    .name = "sleep",
    .summary = "waits {\"ms\": N} on a timer; optional steps (progress) and fail (error)",
    .validate = sleep_validate,
    .start = sleep_start,
    .stop = sleep_stop,
};
