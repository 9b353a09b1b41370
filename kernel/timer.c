/*
 * timer.c - the deadline heap behind a loop's single IORING_OP_TIMEOUT.
 */
#include "kernel/timer.h"

#include <stdlib.h>

#include "kernel/xalloc.h"

static void swap(struct timer_heap *h, uint32_t a, uint32_t b)
{
    struct timer *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->idx = a + 1;
    h->v[b]->idx = b + 1;
}

static void up(struct timer_heap *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->v[p]->when_ns <= h->v[i]->when_ns)
            break;
        swap(h, p, i);
        i = p;
    }
}

static void down(struct timer_heap *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l]->when_ns < h->v[m]->when_ns)
            m = l;
        if (r < h->n && h->v[r]->when_ns < h->v[m]->when_ns)
            m = r;
        if (m == i)
            return;
        swap(h, i, m);
        i = m;
    }
}

void timer_heap_add(struct timer_heap *h, struct timer *t, uint64_t when_ns)
{
    if (t->idx) {
        uint64_t old = t->when_ns;
        t->when_ns = when_ns;
        if (when_ns < old)
            up(h, t->idx - 1);
        else
            down(h, t->idx - 1);
        return;
    }
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, cap * sizeof(*h->v));
        h->cap = cap;
    }
    t->when_ns = when_ns;
    h->v[h->n] = t;
    t->idx = ++h->n;
    up(h, h->n - 1);
}

void timer_heap_remove(struct timer_heap *h, struct timer *t)
{
    if (!t->idx)
        return;
    uint32_t i = t->idx - 1;
    t->idx = 0;
    h->n--;
    if (i == h->n)
        return;
    h->v[i] = h->v[h->n];
    h->v[i]->idx = i + 1;
    up(h, i);
    down(h, h->v[i]->idx - 1);
}

struct timer *timer_heap_min(const struct timer_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

void timer_heap_free(struct timer_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
