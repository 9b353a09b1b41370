/*
 * set.c - the schedules beat has loaded: by id in a sorted array (found by
 * binary search, when a NOTIFY names one or an outcome comes back), and
 * while they have a next slot, in one min-heap by it (ties by id). Beat
 * arms one kernel timer for the heap's minimum, so ten thousand idle
 * schedules cost one timer; each schedule knows its place (heap_idx), so
 * a change or a removal is O(log n).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"
#include "modules/beat/beat.h"

#define HEAP_MIN_CAP 64
#define SET_MIN_CAP  64

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

void beat_heap_push(struct beat_heap *h, struct beat_sched *s)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    put(h, h->n++, s);
    sift_up(h, h->n - 1);
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

static unsigned find_pos(const struct beat_set *set, int64_t id)
{
    unsigned lo = 0, hi = set->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (set->all[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct beat_sched *beat_set_find(const struct beat_set *set, int64_t id)
{
    unsigned i = find_pos(set, id);
    return i < set->n && set->all[i]->id == id ? set->all[i] : NULL;
}

void beat_sched_free(struct beat_sched *s)
{
    if (s) {
        json_decref(s->job);
        free(s->name);
        free(s);
    }
}

void beat_set_put(struct beat_set *set, struct beat_sched *s)
{
    unsigned i = find_pos(set, s->id);
    if (i < set->n && set->all[i]->id == s->id) {
        beat_heap_remove(&set->heap, set->all[i]);
        beat_sched_free(set->all[i]);
        set->all[i] = s;
        return;
    }
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : SET_MIN_CAP;
        set->all = xrealloc(set->all, set->cap * sizeof(*set->all));
    }
    memmove(&set->all[i + 1], &set->all[i], (set->n - i) * sizeof(*set->all));
    set->all[i] = s;
    set->n++;
}

void beat_set_remove(struct beat_set *set, int64_t id)
{
    unsigned i = find_pos(set, id);
    if (i >= set->n || set->all[i]->id != id)
        return;
    beat_heap_remove(&set->heap, set->all[i]);
    beat_sched_free(set->all[i]);
    memmove(&set->all[i], &set->all[i + 1], (set->n - i - 1) * sizeof(*set->all));
    set->n--;
}

struct beat_sched **beat_set_take(struct beat_set *set, unsigned *n)
{
    struct beat_sched **all = set->all;
    *n = set->n;
    for (unsigned i = 0; i < set->n; i++)
        all[i]->heap_idx = 0;
    set->all = NULL;
    set->n = set->cap = 0;
    set->heap.n = 0;
    return all;
}

void beat_set_clear(struct beat_set *set)
{
    for (unsigned i = 0; i < set->n; i++)
        beat_sched_free(set->all[i]);
    set->n = 0;
    set->heap.n = 0;
}

void beat_set_free(struct beat_set *set)
{
    beat_set_clear(set);
    free(set->all);
    beat_heap_free(&set->heap);
    sched_zones_free(&set->zones);
    *set = (struct beat_set){0};
}
