/*
 * plan.c - which slots a schedule fires, and the heap that orders them.
 *
 * Pure: no clock, no I/O. Beat keeps every loaded schedule in one min-heap
 * by next slot and arms one kernel timer for the heap's minimum, so ten
 * thousand idle schedules cost one timer, not ten thousand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/beat/beat.h"

/* The latest slot <= now that is > lo, by walking forward (bounded by the
 * catch-up window the caller applied to lo); @every jumps straight to it. */
static bool latest_slot(const struct beat_sched *s, int64_t lo, int64_t now, int64_t *out)
{
    if (s->cron.flags & CRON_EVERY) {
        int64_t p = s->cron.every;
        int64_t k = now >= 0 ? now / p : -((-now + p - 1) / p);
        int64_t t = k * p;
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
                int64_t *tmp = malloc(max * sizeof(*tmp));
                if (tmp) {
                    for (unsigned i = 0; i < max; i++)
                        tmp[i] = out[(head + i) % max];
                    memcpy(out, tmp, max * sizeof(*tmp));
                    free(tmp);
                }
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

/* --- heap --------------------------------------------------------------- */

static bool before(const struct beat_sched *a, const struct beat_sched *b)
{
    return a->next < b->next || (a->next == b->next && a->id < b->id);
}

static void put(struct beat_heap *h, uint32_t i, struct beat_sched *s)
{
    h->v[i] = s;
    s->heap_idx = i + 1;
}

static void sift_up(struct beat_heap *h, uint32_t i)
{
    struct beat_sched *s = h->v[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(s, h->v[p]))
            break;
        put(h, i, h->v[p]);
        i = p;
    }
    put(h, i, s);
}

static void sift_down(struct beat_heap *h, uint32_t i)
{
    struct beat_sched *s = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(h->v[c + 1], h->v[c]))
            c++;
        if (!before(h->v[c], s))
            break;
        put(h, i, h->v[c]);
        i = c;
    }
    put(h, i, s);
}

int beat_heap_push(struct beat_heap *h, struct beat_sched *s)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct beat_sched **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    put(h, h->n++, s);
    sift_up(h, h->n - 1);
    return 0;
}

void beat_heap_remove(struct beat_heap *h, struct beat_sched *s)
{
    if (!s->heap_idx)
        return;
    uint32_t i = s->heap_idx - 1;
    s->heap_idx = 0;
    struct beat_sched *last = h->v[--h->n];
    if (i == h->n)
        return;
    put(h, i, last);
    sift_up(h, i);
    sift_down(h, last->heap_idx - 1);
}

void beat_heap_update(struct beat_heap *h, struct beat_sched *s)
{
    if (!s->heap_idx)
        return;
    sift_up(h, s->heap_idx - 1);
    sift_down(h, s->heap_idx - 1);
}

void beat_heap_free(struct beat_heap *h)
{
    free(h->v);
    *h = (struct beat_heap){0};
}

void beat_rfc3339(int64_t unix_s, char *out, size_t cap)
{
    struct civil c;
    tz_seconds_to_civil(unix_s, &c);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.minute,
             c.second);
}
