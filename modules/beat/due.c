/*
 * due.c - the due-slot timer: one kernel timer for the heap's earliest
 * slot; when it fires, every slot now due is queued (fire.c) and each
 * schedule moves to its next slot. Also planning a (re)loaded schedule:
 * its missed slots by the misfire policy (plan.c), then the heap.
 */
#include <stdlib.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/beat/beat.h"
#include "proto/rfc3339.h"

/* A slot this late means the loop was not running (a suspended VM, a wall
 * clock stepped forward): re-plan with the misfire policy instead of
 * firing every slot in between. */
#define BEAT_REPLAN_LATE_MS 60000
/* Slots waiting for the queue backend (its store is down): beyond this
 * many they are dropped, and the schedules are re-planned from the
 * database's own record once it answers, the misfire policy deciding, as
 * after beat downtime. */
#define BEAT_PEND_MAX 100000

uint64_t beat_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *misfire_name(uint8_t m)
{
    return m == MISFIRE_SKIP ? "skip" : m == MISFIRE_FIRE_ONCE ? "fire_once" : "fire_all";
}

void beat_due_plan(struct beat *b, struct beat_sched *s, int64_t from, bool log_change)
{
    int64_t now = (int64_t)(beat_wall_ms() / 1000);
    int64_t *catchup = b->due.catchup;
    unsigned n = 0;
    if (s->last > from)
        from = s->last;
    int rc = beat_plan_load(s, from, now, catchup, b->cfg->beat_catchup_max, &n);
    for (unsigned i = 0; i < n; i++) {
        int64_t nx = i + 1 < n ? catchup[i + 1] : (rc ? 0 : s->next);
        beat_fire_queue(b, s, catchup[i], nx, true);
    }
    if (n)
        LOG(LOG_INFO, "beat: catching up missed slots", L_STR("name", s->name),
            L_STR("misfire", misfire_name(s->misfire)), L_INT("firing", n));
    if (!rc)
        beat_heap_push(&b->set.heap, s);
    if (log_change) {
        char when[32] = "never";
        if (!rc)
            rfc3339_format_s(s->next, when, sizeof(when));
        LOG(LOG_INFO, "Schedule changed", L_STR("name", s->name), L_INT("id", s->id),
            L_STR("next_fire", when));
    }
}

void beat_due_replan(struct beat *b)
{
    b->due.replanning = true;
    beat_load_all(b);
}

static void on_due(struct loop *l, struct timer *t)
{
    struct beat *b = container_of(t, struct beat, due.timer);
    uint64_t now = beat_wall_ms();
    struct beat_sched *s;
    while (b->leading && (s = beat_heap_min(&b->set.heap)) && (uint64_t)s->next * 1000 <= now) {
        int64_t slot = s->next, nx;
        if (now - (uint64_t)slot * 1000 > BEAT_REPLAN_LATE_MS) {
            LOG(LOG_WARN,
                "beat: slots are long overdue (clock jump or stalled process); "
                "re-planning with each schedule's misfire policy",
                L_STR("name", s->name), L_INT("late_ms", now - (uint64_t)slot * 1000));
            beat_due_replan(b);
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
    if (beat_fire_waiting(b) > BEAT_PEND_MAX) {
        LOG(LOG_WARN,
            "beat: too many slots waiting for the database; dropping them and "
            "re-planning from the database's record when it answers",
            L_INT("slots", beat_fire_waiting(b)));
        beat_fire_drop(b);
        beat_set_clear(&b->set); /* forget local progress: the database's last_fire decides */
        beat_due_replan(b);
    }
    beat_fire_flush(b);
    beat_due_arm(b);
}

void beat_due_init(struct beat *b)
{
    b->due.catchup = xcalloc(b->cfg->beat_catchup_max, sizeof(*b->due.catchup));
    b->due.timer.fn = on_due;
}

void beat_due_arm(struct beat *b)
{
    struct beat_sched *s = beat_heap_min(&b->set.heap);
    if (!s || !b->leading || b->stopping || b->due.replanning) {
        loop_timer_cancel(b->loop, &b->due.timer);
        return;
    }
    uint64_t now = beat_wall_ms(), at = (uint64_t)s->next * 1000;
    loop_timer_in(b->loop, &b->due.timer, at > now ? at - now : 0);
}

void beat_due_stop(struct beat *b)
{
    loop_timer_cancel(b->loop, &b->due.timer);
    b->due.replanning = false;
}

void beat_due_free(struct beat *b)
{
    free(b->due.catchup);
    b->due.catchup = NULL;
}
