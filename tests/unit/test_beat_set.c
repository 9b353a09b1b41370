/*
 * test_beat_set.c - modules/beat/set.c: beat's loaded schedules by id
 * (found by binary search, replaced in place, removed from the heap with
 * them) and taken out whole for a full reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kernel/xalloc.h"
#include "modules/beat/beat.h"

static struct beat_sched *sched(int64_t id, int64_t next)
{
    struct beat_sched *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->next = next;
    s->name = xstrdup("s");
    return s;
}

static void put_find_replace_remove(void **state)
{
    struct beat_set set = {0};
    /* 200 ids in a scrambled order, each in the heap. */
    for (int64_t i = 0; i < 200; i++) {
        int64_t id = (i * 73) % 200 + 1;
        struct beat_sched *s = sched(id, 1000 - id);
        beat_set_put(&set, s);
        beat_heap_push(&set.heap, s);
    }
    assert_int_equal(set.n, 200);
    for (unsigned i = 0; i + 1 < set.n; i++)
        assert_true(set.all[i]->id < set.all[i + 1]->id);
    assert_null(beat_set_find(&set, 0));
    assert_null(beat_set_find(&set, 201));
    assert_int_equal(beat_set_find(&set, 77)->id, 77);
    assert_int_equal(beat_heap_min(&set.heap)->id, 200);

    /* Replacing takes the old one out of the heap; the new one is not in it. */
    struct beat_sched *r = sched(200, 5);
    beat_set_put(&set, r);
    assert_int_equal(set.n, 200);
    assert_ptr_equal(beat_set_find(&set, 200), r);
    assert_int_equal(beat_heap_min(&set.heap)->id, 199);
    assert_int_equal(set.heap.n, 199);

    beat_set_remove(&set, 199);
    beat_set_remove(&set, 199); /* absent: nothing */
    assert_null(beat_set_find(&set, 199));
    assert_int_equal(set.n, 199);
    assert_int_equal(beat_heap_min(&set.heap)->id, 198);

    unsigned n;
    struct beat_sched **all = beat_set_take(&set, &n);
    assert_int_equal(n, 199);
    assert_int_equal(set.n, 0);
    assert_int_equal(set.heap.n, 0);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(all[i]->heap_idx, 0);
        beat_sched_free(all[i]);
    }
    free(all);
    assert_null(beat_set_find(&set, 5));
    beat_set_put(&set, sched(5, 1));
    assert_non_null(beat_set_find(&set, 5));
    beat_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(put_find_replace_remove)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
