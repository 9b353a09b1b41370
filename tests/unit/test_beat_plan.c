/*
 * test_beat_plan.c - modules/beat/plan.c and set.c: which missed slots each misfire
 * policy fires after downtime, the catch-up window and cap, DST through a
 * real zone, and the schedule heap's order under updates and removals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "modules/beat/plan.h"
#include "modules/schedules/schedules.h"

static struct beat_sched sched(const char *expr, int misfire, int64_t window_s)
{
    struct beat_sched s = {
        .id = 1, .last = INT64_MIN, .misfire = (uint8_t)misfire, .catchup_window_s = window_s};
    char err[CRON_ERR_LEN];
    assert_int_equal(cron_parse(expr, &s.cron, err, sizeof(err)), 0);
    return s;
}

#define T0 1764547200LL /* 2025-12-01T00:00:00Z */

static void skip_fires_nothing_missed(void **state)
{
    struct beat_sched s = sched("@every 1s", MISFIRE_SKIP, 3600);
    int64_t out[100];
    unsigned n = 99;
    assert_int_equal(beat_plan_load(&s, T0, T0 + 10, out, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(s.next, T0 + 11);
}

static void fire_once_fires_the_latest(void **state)
{
    struct beat_sched s = sched("@every 1s", MISFIRE_FIRE_ONCE, 3600);
    int64_t out[100];
    unsigned n;
    assert_int_equal(beat_plan_load(&s, T0, T0 + 10, out, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], T0 + 10);
    assert_int_equal(s.next, T0 + 11);
    assert_int_equal(s.last, T0 + 10);
    /* A cron schedule: the latest matching minute, walked, not jumped. */
    s = sched("*/15 * * * *", MISFIRE_FIRE_ONCE, 3600);
    assert_int_equal(beat_plan_load(&s, T0, T0 + 50 * 60, out, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], T0 + 45 * 60);
    assert_int_equal(s.next, T0 + 60 * 60);
}

static void fire_all_fires_every_missed_slot(void **state)
{
    struct beat_sched s = sched("@every 1s", MISFIRE_FIRE_ALL, 3600);
    int64_t out[100];
    unsigned n;
    assert_int_equal(beat_plan_load(&s, T0, T0 + 10, out, 100, &n), 0);
    assert_int_equal(n, 10);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(out[i], T0 + 1 + i);
    assert_int_equal(s.next, T0 + 11);
}

static void catchup_window_and_cap(void **state)
{
    int64_t out[100];
    unsigned n;
    /* Only slots within 5 s of now count. */
    struct beat_sched s = sched("@every 1s", MISFIRE_FIRE_ALL, 5);
    assert_int_equal(beat_plan_load(&s, T0, T0 + 100, out, 100, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(out[0], T0 + 95);
    assert_int_equal(out[5], T0 + 100);
    /* Window 0: only a slot at `now` itself. */
    s = sched("@every 7s", MISFIRE_FIRE_ONCE, 0);
    assert_int_equal(beat_plan_load(&s, T0, T0 + 100, out, 100, &n), 0);
    assert_int_equal(n, 0);
    /* More missed than the cap: the latest `max`, in order. */
    s = sched("@every 1s", MISFIRE_FIRE_ALL, 3600);
    assert_int_equal(beat_plan_load(&s, T0, T0 + 1000, out, 7, &n), 0);
    assert_int_equal(n, 7);
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(out[i], T0 + 994 + i);
}

static void nothing_missed_when_from_is_now(void **state)
{
    struct beat_sched s = sched("@every 1s", MISFIRE_FIRE_ALL, 3600);
    int64_t out[4];
    unsigned n;
    assert_int_equal(beat_plan_load(&s, T0 + 10, T0 + 10, out, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(s.next, T0 + 11);
    /* from ahead of now (another beat's clock): next is after from. */
    assert_int_equal(beat_plan_load(&s, T0 + 20, T0 + 10, out, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(s.next, T0 + 21);
}

static void never_again(void **state)
{
    /* A schedule with no slot after 9999 has none to plan. */
    struct beat_sched s = sched("0 0 1 1 *", MISFIRE_SKIP, 3600);
    int64_t out[4];
    unsigned n;
    assert_int_equal(beat_plan_load(&s, CRON_TIME_MAX - 10, CRON_TIME_MAX - 5, out, 4, &n), -1);
}

static void dst_zone_catchup(void **state)
{
    /* 02:30 daily in New York, down over the 2026-03-08 spring-forward
     * night: the skipped 02:30 fires at the jump (03:00 EDT = 07:00Z). */
    struct tz *z = malloc(sizeof(*z));
    char err[300];
    assert_int_equal(
        sched_zone_load("/usr/share/zoneinfo", "America/New_York", z, err, sizeof(err)), 0);
    struct beat_sched s = sched("30 2 * * *", MISFIRE_FIRE_ALL, 7 * 86400);
    s.tz = z;
    int64_t from = 1772863200; /* 2026-03-07T06:00:00Z */
    int64_t out[8];
    unsigned n;
    assert_int_equal(beat_plan_load(&s, from, 1772967600 /* 03-08T11:00Z */, out, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 1772868600); /* 03-07 02:30 EST = 07:30Z */
    assert_int_equal(out[1], 1772953200); /* 03-08 03:00 EDT = 07:00Z */
    assert_int_equal(s.next, 1773037800); /* 03-09 02:30 EDT = 06:30Z */
    assert_int_equal(sched_zone_load("/usr/share/zoneinfo", "No/Such_Zone", z, err, sizeof(err)),
                     -1);
    assert_int_equal(sched_zone_load("/usr/share/zoneinfo", "../etc/passwd", z, err, sizeof(err)),
                     -1);
    free(z);
}

static void heap_order(void **state)
{
    struct beat_heap h = {0};
    struct beat_sched s[300];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 300; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        s[i] = (struct beat_sched){.id = i, .next = (int64_t)(x % 500)};
        beat_heap_push(&h, &s[i]);
    }
    for (int i = 0; i < 300; i += 3) { /* move some, remove others */
        s[i].next = (int64_t)((unsigned)i * 7 % 500);
        beat_heap_update(&h, &s[i]);
        beat_heap_remove(&h, &s[i + 1]);
        assert_int_equal(s[i + 1].heap_idx, 0);
    }
    assert_int_equal(h.n, 200);
    int64_t last = -1, last_id = -1;
    while (h.n) {
        struct beat_sched *m = beat_heap_min(&h);
        assert_true(m->next > last || (m->next == last && m->id > last_id));
        last = m->next;
        last_id = m->id;
        beat_heap_remove(&h, m);
    }
    beat_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(skip_fires_nothing_missed),
        cmocka_unit_test(fire_once_fires_the_latest),
        cmocka_unit_test(fire_all_fires_every_missed_slot),
        cmocka_unit_test(catchup_window_and_cap),
        cmocka_unit_test(nothing_missed_when_from_is_now),
        cmocka_unit_test(never_again),
        cmocka_unit_test(dst_zone_catchup),
        cmocka_unit_test(heap_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
