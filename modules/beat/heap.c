/*
 * heap.c - the loaded schedules in one min-heap by next slot (ties by id).
 *
 * Beat arms one kernel timer for the heap's minimum, so ten thousand idle
 * schedules cost one timer, not ten thousand. Each schedule knows its
 * place (heap_idx), so a change or a removal is O(log n).
 */
#include <stdbool.h>
#include <stdlib.h>

#include "kernel/xalloc.h"
#include "modules/beat/plan.h"

#define HEAP_MIN_CAP 64

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
