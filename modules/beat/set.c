/*
 * set.c - the schedules beat has loaded, by id: a sorted array (found by
 * binary search, when a NOTIFY names one or an outcome comes back), each
 * schedule also in the heap by next slot while it has one.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"
#include "modules/beat/beat.h"

#define SET_MIN_CAP 64

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
