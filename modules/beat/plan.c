/*
 * plan.c - which slots a schedule fires when it is (re)loaded: the misfire
 * policy over the slots missed while no beat ran, within the catch-up
 * window. Pure: no clock, no I/O.
 */
#include <stdbool.h>

#include "modules/beat/plan.h"
#include "proto/calendar.h"

/* Reverse a[lo..hi). */
static void reverse(int64_t *a, unsigned lo, unsigned hi)
{
    while (lo + 1 < hi) {
        int64_t t = a[lo];
        a[lo++] = a[--hi];
        a[hi] = t;
    }
}

/* The latest slot <= now that is > lo, by walking forward (bounded by the
 * catch-up window the caller applied to lo); @every jumps straight to it. */
static bool latest_slot(const struct beat_sched *s, int64_t lo, int64_t now, int64_t *out)
{
    if (s->cron.flags & CRON_EVERY) {
        int64_t t = cal_floor_div(now, s->cron.every) * s->cron.every;
        if (t <= lo)
            return false;
        *out = t;
        return true;
    }
    bool found = false;
    int64_t t = lo, nx;
    while (!cron_next(&s->cron, s->tz, t, 0, &nx) && nx <= now) {
        *out = t = nx;
        found = true;
    }
    return found;
}

int beat_plan_load(struct beat_sched *s, int64_t from, int64_t now, int64_t *out, unsigned max,
                   unsigned *n)
{
    *n = 0;
    int64_t lo = from;
    if (lo < now - s->catchup_window_s - 1)
        lo = now - s->catchup_window_s - 1; /* older slots are past the window */
    if (lo < now && max > 0) {
        if (s->misfire == MISFIRE_FIRE_ONCE) {
            if (latest_slot(s, lo, now, &out[0]))
                *n = 1;
        } else if (s->misfire == MISFIRE_FIRE_ALL) {
            /* Keep the latest `max`: a ring over out[], rotated at the end. */
            unsigned count = 0;
            int64_t t = lo, nx;
            while (!cron_next(&s->cron, s->tz, t, 0, &nx) && nx <= now) {
                out[count % max] = t = nx;
                count++;
            }
            if (count > max) {
                unsigned head = count % max;
                reverse(out, 0, head); /* rotate left by head, in place */
                reverse(out, head, max);
                reverse(out, 0, max);
                count = max;
            }
            *n = count;
        }
    }
    int64_t after = now > from ? now : from;
    if (cron_next(&s->cron, s->tz, after, 0, &s->next))
        return -1;
    if (*n && out[*n - 1] > s->last)
        s->last = out[*n - 1];
    return 0;
}
