/*
 * fire.c - due slots to the queue backend. One kernel timer waits for the
 * heap's earliest slot; when it fires, every slot now due is queued and
 * each schedule moves to its next slot. Queued slots go to the backend's
 * beat part (modules/queue/queue_beat.h) one batch (--beat-batch) at a
 * time; each slot's outcome is logged ("Sending due task", "Skipping due
 * task").
 *
 * A batch that failed goes back to the front of the queue and is fired
 * again after QUEUE_BEAT_RETRY_MS: the backend keeps a slot to one job
 * even when the first attempt committed and only its answer was lost.
 * Later slots wait behind it, so a schedule's slots are handed over in
 * order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/metrics.h"
#include "kernel/xalloc.h"
#include "modules/beat/beat.h"
#include "modules/queue/queue.h"
#include "proto/rfc3339.h"

/* A slot this late means the loop was not running (a suspended VM, a wall
 * clock stepped forward): re-plan with the misfire policy instead of
 * firing every slot in between. */
#define BEAT_REPLAN_LATE_MS 60000
/* Slots waiting for the queue backend (its store is down): beyond this
 * many they are dropped, and the schedules are re-planned from the
 * database's own record once it answers, as after beat downtime. */
#define BEAT_PEND_MAX 100000
#define PEND_MIN_CAP  256

static void pend_reserve(struct beat_fire *f, unsigned more)
{
    if (f->npend + more <= f->cappend)
        return;
    while (f->npend + more > f->cappend)
        f->cappend = f->cappend ? f->cappend * 2 : PEND_MIN_CAP;
    f->pend = xrealloc(f->pend, f->cappend * sizeof(*f->pend));
}

static void on_retry(struct loop *l, struct timer *t)
{
    beat_fire_flush(container_of(t, struct beat, fire.retry_timer));
}

uint64_t beat_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Forget local progress: a full load re-plans every schedule from the
 * database's record, and the timer stays off until it ends. */
static void replan(struct beat *b)
{
    b->fire.replanning = true;
    beat_load_all(b);
}

static void on_due(struct loop *l, struct timer *t)
{
    struct beat *b = container_of(t, struct beat, fire.due_timer);
    uint64_t now = beat_wall_ms();
    struct beat_sched *s;
    while (b->leading && (s = beat_heap_min(&b->set.heap)) && (uint64_t)s->next * 1000 <= now) {
        int64_t slot = s->next, nx;
        if (now - (uint64_t)slot * 1000 > BEAT_REPLAN_LATE_MS) {
            LOG(LOG_WARN,
                "beat: slots are long overdue (clock jump or stalled process); "
                "re-planning with each schedule's misfire policy",
                L_STR("name", s->name), L_INT("late_ms", now - (uint64_t)slot * 1000));
            replan(b);
            break;
        }
        if (cron_next(&s->cron, s->tz, slot, 0, &nx)) {
            beat_heap_remove(&b->set.heap, s);
            nx = 0;
        } else {
            s->next = nx;
            beat_heap_update(&b->set.heap, s);
        }
        beat_fire_queue(b, s, slot, nx, false);
    }
    if (b->fire.npend > BEAT_PEND_MAX) {
        LOG(LOG_WARN,
            "beat: too many slots waiting for the database; dropping them and "
            "re-planning from the database's record when it answers",
            L_INT("slots", b->fire.npend));
        beat_fire_drop(b);
        beat_set_clear(&b->set); /* the database's last_fire decides */
        replan(b);
    }
    beat_fire_flush(b);
    beat_fire_arm(b);
}

void beat_fire_arm(struct beat *b)
{
    struct beat_sched *s = beat_heap_min(&b->set.heap);
    if (!s || !b->leading || b->stopping || b->fire.replanning) {
        loop_timer_cancel(b->loop, &b->fire.due_timer);
        return;
    }
    uint64_t now = beat_wall_ms(), at = (uint64_t)s->next * 1000;
    loop_timer_in(b->loop, &b->fire.due_timer, at > now ? at - now : 0);
}

int beat_fire_open(struct beat *b)
{
    struct beat_fire *f = &b->fire;
    f->ops = queue_backend_of(b->cfg)->beat;
    struct queue_beat_conns conns = {.loop = b->loop, .cfg = b->cfg, .pg = &b->pg};
    f->qb = f->ops->open(&conns);
    if (!f->qb)
        return -1;
    f->slots = xcalloc(b->cfg->beat_batch, sizeof(*f->slots));
    f->retry_timer.fn = on_retry;
    f->due_timer.fn = on_due;
    return 0;
}

void beat_fire_queue(struct beat *b, struct beat_sched *s, int64_t slot, int64_t next, bool catchup)
{
    struct beat_fire *f = &b->fire;
    int32_t jitter =
        s->jitter_ms ? (int32_t)(loop_random(b->loop) % ((uint64_t)s->jitter_ms + 1)) : 0;
    pend_reserve(f, 1);
    f->pend[f->npend++] = (struct beat_pend){
        .id = s->id, .slot = slot, .next = next, .jitter_ms = jitter, .catchup = catchup};
    if (slot > s->last)
        s->last = slot;
}

/* The batch failed: its slots go back to the front of the queue. */
static void requeue(struct beat *b, const char *err, const char *what)
{
    struct beat_fire *f = &b->fire;
    unsigned n = f->batch.n;
    if (b->stopping || !b->leading)
        return;
    LOG(LOG_WARN, what, L_STR("error", err), L_INT("slots", n));
    pend_reserve(f, n);
    memmove(f->pend + n, f->pend, f->npend * sizeof(*f->pend));
    for (unsigned i = 0; i < n; i++) {
        const struct queue_beat_slot *s = &f->batch.v[i];
        f->pend[i] = (struct beat_pend){.id = s->schedule_id,
                                        .slot = s->slot,
                                        .next = s->next,
                                        .jitter_ms = s->jitter_ms,
                                        .catchup = s->catchup};
    }
    f->npend += n;
    loop_timer_in(b->loop, &f->retry_timer, QUEUE_BEAT_RETRY_MS);
}

/* Counted per loop, merged at scrape (GET /metrics). Lateness: from the
 * slot's time to its job's write (jitter delays the job's run, not the
 * write), on-time slots only (a catch-up slot is late by design). */
static void count_outcome(struct beat *b, const struct queue_beat_slot *v)
{
    struct metrics *m = b->loop->metrics;
    if (!m)
        return;
    if (v->outcome != QUEUE_BEAT_FIRED) {
        metrics_count(m, MC_BEAT_SKIPPED);
        return;
    }
    metrics_count(m, MC_BEAT_FIRED);
    uint64_t now = beat_wall_ms(), at = (uint64_t)v->slot * 1000;
    if (!v->catchup)
        metrics_observe(&m->beat_lateness, &metrics_buckets_beat,
                        now > at ? (now - at) * 1000000 : 0);
}

static void log_outcome(struct beat *b, const struct queue_beat_slot *v)
{
    struct beat_sched *s = beat_set_find(&b->set, v->schedule_id);
    char when[32], id[24], msg[SCHED_NAME_MAX + 40];
    count_outcome(b, v);
    rfc3339_format_s(v->slot, when, sizeof(when));
    if (v->outcome == QUEUE_BEAT_FIRED) {
        if (s && v->job_id > s->last_job)
            s->last_job = v->job_id;
        snprintf(id, sizeof(id), "%lld", (long long)v->job_id);
        snprintf(msg, sizeof(msg), "Sending due task %s", s ? s->name : "?");
        LOG(LOG_INFO, msg, L_STR("slot", when), L_STR("job", id),
            L_INT("schedule_id", v->schedule_id));
    } else {
        id[0] = 0;
        if (v->blocked_by > 0)
            snprintf(id, sizeof(id), "%lld", (long long)v->blocked_by);
        snprintf(msg, sizeof(msg), "Skipping due task %s", s ? s->name : "?");
        LOG(LOG_INFO, msg, L_STR("slot", when),
            L_STR("reason", "previous job still pending or running"), L_STR("running_job", id),
            L_INT("schedule_id", v->schedule_id));
    }
}

static void on_done(struct queue_beat_batch *batch, const char *err, const char *what)
{
    struct beat *b = container_of(batch, struct beat, fire.batch);
    b->fire.inflight = false;
    if (err) {
        requeue(b, err, what);
    } else {
        for (unsigned i = 0; i < batch->n; i++)
            if (batch->v[i].outcome != QUEUE_BEAT_NONE)
                log_outcome(b, &batch->v[i]);
    }
    if (b->stopping) {
        beat_close(b);
        return;
    }
    if (!err)
        beat_fire_flush(b);
}

/* The next batch from the queue into slots[]; how many. A backend that
 * enqueues the job template itself gets only slots whose schedule is
 * still loaded (a disabled or deleted one fires nothing). */
static unsigned take_batch(struct beat *b)
{
    struct beat_fire *f = &b->fire;
    unsigned take = f->npend < b->cfg->beat_batch ? f->npend : b->cfg->beat_batch, n = 0;
    for (unsigned i = 0; i < take; i++) {
        const struct beat_pend *p = &f->pend[i];
        const struct beat_sched *s = beat_set_find(&b->set, p->id);
        if (f->ops->wants_job && !(s && s->job))
            continue;
        f->slots[n++] = (struct queue_beat_slot){
            .schedule_id = p->id,
            .slot = p->slot,
            .next = p->next,
            .last_job = s ? s->last_job : 0,
            .job = f->ops->wants_job ? s->job : NULL,
            .jitter_ms = p->jitter_ms,
            .catchup = p->catchup,
            .exclusive = s && s->overlap == OVERLAP_SKIP_IF_RUNNING,
        };
    }
    memmove(f->pend, f->pend + take, (f->npend - take) * sizeof(*f->pend));
    f->npend -= take;
    return n;
}

void beat_fire_flush(struct beat *b)
{
    struct beat_fire *f = &b->fire;
    if (f->inflight || b->stopping || timer_armed(&f->retry_timer))
        return;
    while (f->npend) {
        unsigned n = take_batch(b);
        if (!n)
            continue;
        f->batch = (struct queue_beat_batch){.v = f->slots, .n = n, .done = on_done};
        f->inflight = true;
        f->ops->fire(f->qb, &f->batch);
        return;
    }
}

void beat_fire_drop(struct beat *b)
{
    b->fire.npend = 0;
}

void beat_fire_cancel(struct beat *b)
{
    loop_timer_cancel(b->loop, &b->fire.due_timer);
    b->fire.replanning = false;
    loop_timer_cancel(b->loop, &b->fire.retry_timer);
    if (b->fire.inflight)
        b->fire.ops->cancel(b->fire.qb);
}

void beat_fire_close(struct beat *b)
{
    if (b->fire.qb)
        b->fire.ops->close(b->fire.qb);
}

void beat_fire_free(struct beat *b)
{
    struct beat_fire *f = &b->fire;
    if (f->qb)
        f->ops->free(f->qb);
    free(f->pend);
    free(f->slots);
    *f = (struct beat_fire){0};
}
