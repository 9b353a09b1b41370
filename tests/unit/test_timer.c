/*
 * test_timer.c - the deadline heap: order, re-arming, removal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kernel/timer.h"

static void check_heap(const struct timer_heap *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i]->idx, i + 1);
        if (i)
            assert_true(h->v[(i - 1) / 2]->when_ns <= h->v[i]->when_ns);
    }
}

static void pops_in_deadline_order(void **state)
{
    struct timer_heap h = {0};
    struct timer t[200] = {{0}};
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        timer_heap_add(&h, &t[i], x % 1000);
    }
    check_heap(&h);
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        struct timer *m = timer_heap_min(&h);
        assert_non_null(m);
        assert_true(m->when_ns >= last);
        last = m->when_ns;
        timer_heap_remove(&h, m);
        assert_false(timer_armed(m));
        check_heap(&h);
    }
    assert_null(timer_heap_min(&h));
    timer_heap_free(&h);
}

static void rearm_moves_in_place(void **state)
{
    struct timer_heap h = {0};
    struct timer a = {0}, b = {0}, c = {0};
    timer_heap_add(&h, &a, 10);
    timer_heap_add(&h, &b, 20);
    timer_heap_add(&h, &c, 30);
    timer_heap_add(&h, &c, 5); /* earlier */
    assert_ptr_equal(timer_heap_min(&h), &c);
    assert_int_equal(h.n, 3);
    timer_heap_add(&h, &c, 50); /* later */
    assert_ptr_equal(timer_heap_min(&h), &a);
    check_heap(&h);
    timer_heap_free(&h);
}

static void remove_middle_and_unarmed(void **state)
{
    struct timer_heap h = {0};
    struct timer t[10] = {{0}};
    for (int i = 0; i < 10; i++)
        timer_heap_add(&h, &t[i], (uint64_t)(100 - i));
    timer_heap_remove(&h, &t[4]);
    timer_heap_remove(&h, &t[4]); /* twice: no-op */
    struct timer never = {0};
    timer_heap_remove(&h, &never);
    assert_int_equal(h.n, 9);
    check_heap(&h);
    assert_ptr_equal(timer_heap_min(&h), &t[9]);
    timer_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pops_in_deadline_order),
        cmocka_unit_test(rearm_moves_in_place),
        cmocka_unit_test(remove_middle_and_unarmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
