/*
 * plan.h - a loaded schedule, which of its slots to fire (plan.c), and the
 * min-heap that orders schedules by next slot (set.c). Pure: no clock,
 * no I/O, so the unit tests drive them directly.
 */
#ifndef TRIREME_MODULES_BEAT_PLAN_H
#define TRIREME_MODULES_BEAT_PLAN_H

#include <jansson.h>
#include <stdint.h>

#include "proto/cron.h"
#include "proto/tzfile.h"

enum beat_misfire { MISFIRE_SKIP = 0, MISFIRE_FIRE_ONCE, MISFIRE_FIRE_ALL };
enum beat_overlap { OVERLAP_ALLOW = 0, OVERLAP_SKIP_IF_RUNNING };

struct beat_sched {
    int64_t id;
    char *name;
    struct cron cron;
    const struct tz *tz;
    int64_t next;      /* next slot to fire, Unix seconds */
    int64_t last;      /* latest slot handed to the queue backend, or INT64_MIN */
    int64_t last_job;  /* the latest job it fired, 0 when none */
    json_t *job;       /* its job template, when the queue backend wants it; else NULL */
    uint32_t heap_idx; /* 1-based slot in the beat heap; 0 when not in it */
    uint8_t misfire, overlap;
    int32_t jitter_ms;
    int64_t catchup_window_s;
};

/*
 * Plan a schedule that is (re)loaded at `now` (Unix seconds), whose slots
 * up to `from` are handled (the later of its last fire and its last
 * definition change). Slots in (from, now] were missed: with skip none is
 * fired, with fire_once the latest, with fire_all every one (at most `max`,
 * the latest ones); only those within catchup_window_s of now count.
 * Writes the slots to fire (ascending) to out[0..*n) and s->next to the
 * first slot after now. Returns 0, or -1 when the schedule never fires
 * again.
 */
int beat_plan_load(struct beat_sched *s, int64_t from, int64_t now, int64_t *out, unsigned max,
                   unsigned *n);

/* A min-heap of schedules by next slot (ties by id). */
struct beat_heap {
    struct beat_sched **v;
    uint32_t n, cap;
};
void beat_heap_push(struct beat_heap *h, struct beat_sched *s);
void beat_heap_remove(struct beat_heap *h, struct beat_sched *s);
/* s->next changed: restore the heap order. */
void beat_heap_update(struct beat_heap *h, struct beat_sched *s);
static inline struct beat_sched *beat_heap_min(const struct beat_heap *h)
{
    return h->n ? h->v[0] : NULL;
}
void beat_heap_free(struct beat_heap *h);

#endif
