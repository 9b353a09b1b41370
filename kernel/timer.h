/*
 * timer.h - a binary min-heap of deadlines, owned by one loop.
 *
 * Timers are embedded in the structs that own them; arming never allocates
 * except when the heap array grows past its high-water mark. The loop keeps
 * one IORING_OP_TIMEOUT armed for the earliest deadline.
 */
#ifndef TRIREME_KERNEL_TIMER_H
#define TRIREME_KERNEL_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct timer;
typedef void (*timer_fn)(struct loop *l, struct timer *t);

struct timer {
    timer_fn fn;
    uint64_t when_ns;
    uint32_t idx; /* 1-based heap slot; 0 when not armed */
};

struct timer_heap {
    struct timer **v;
    uint32_t n, cap;
};

static inline bool timer_armed(const struct timer *t)
{
    return t->idx != 0;
}

/* Arm t (or move it, when armed) to when_ns. */
void timer_heap_add(struct timer_heap *h, struct timer *t, uint64_t when_ns);
void timer_heap_remove(struct timer_heap *h, struct timer *t);
/* The earliest timer, or NULL. */
struct timer *timer_heap_min(const struct timer_heap *h);
void timer_heap_free(struct timer_heap *h);

#endif
