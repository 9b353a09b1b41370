/*
 * test_beat_fires.c - modules/queue/beat_fires.c: a batch of due slots in
 * the order the recording statements answer, and its columns as
 * PostgreSQL array literals (0 as NULL where a column is nullable).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "modules/queue/beat_fires.h"

static void sorted_by_schedule_then_slot_outcomes_cleared(void **state)
{
    struct queue_beat_slot v[] = {
        {.schedule_id = 7, .slot = 30, .outcome = QUEUE_BEAT_FIRED, .job_id = 9},
        {.schedule_id = 2, .slot = 50, .created = true},
        {.schedule_id = 7, .slot = 10, .blocked_by = 4},
        {.schedule_id = 2, .slot = 40, .outcome = QUEUE_BEAT_SKIPPED},
    };
    beat_fires_sort(v, 4);
    const int64_t want[4][2] = {{2, 40}, {2, 50}, {7, 10}, {7, 30}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(v[i].schedule_id, want[i][0]);
        assert_int_equal(v[i].slot, want[i][1]);
        assert_int_equal(v[i].outcome, QUEUE_BEAT_NONE);
        assert_false(v[i].created);
        assert_int_equal(v[i].job_id, 0);
        assert_int_equal(v[i].blocked_by, 0);
    }
}

static void columns_as_array_literals(void **state)
{
    struct queue_beat_slot v[] = {
        {.schedule_id = 1,
         .slot = 1764547200,
         .next = 1764547260,
         .jitter_ms = 250,
         .job_id = 12,
         .catchup = true},
        {.schedule_id = 9223372036854775807LL,
         .slot = -5,
         .next = 0,
         .jitter_ms = 0,
         .blocked_by = 12},
    };
    static const enum beat_fires_col cols[] = {BF_IDS,     BF_SLOTS,   BF_JITTER, BF_JOB_IDS,
                                               BF_BLOCKED, BF_REASONS, BF_NEXT};
    struct beat_fires f = {0};
    beat_fires_params(&f, v, 2, cols, 7);
    assert_string_equal(f.vals[0], "{1,9223372036854775807}");
    assert_string_equal(f.vals[1], "{1764547200,-5}");
    assert_string_equal(f.vals[2], "{250,0}");
    assert_string_equal(f.vals[3], "{12,NULL}");
    assert_string_equal(f.vals[4], "{NULL,12}");
    assert_string_equal(f.vals[5], "{catchup,due}");
    assert_string_equal(f.vals[6], "{1764547260,NULL}");
    /* The buffer is kept and refilled: a later, larger batch. */
    struct queue_beat_slot many[300];
    for (int i = 0; i < 300; i++)
        many[i] = (struct queue_beat_slot){
            .schedule_id = -9223372036854775807LL - 1, .slot = i, .next = i + 1};
    static const enum beat_fires_col two[] = {BF_IDS, BF_NEXT};
    beat_fires_params(&f, many, 300, two, 2);
    assert_int_equal(f.vals[0][0], '{');
    assert_string_equal(f.vals[0] + 1 + 299 * 21, "-9223372036854775808}");
    assert_string_equal(f.vals[1] + strlen(f.vals[1]) - 5, ",300}");
    beat_fires_params(&f, v, 0, cols, 7);
    for (int c = 0; c < 7; c++)
        assert_string_equal(f.vals[c], "{}");
    beat_fires_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sorted_by_schedule_then_slot_outcomes_cleared),
        cmocka_unit_test(columns_as_array_literals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
