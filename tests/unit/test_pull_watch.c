/*
 * test_pull_watch.c - the due check shared by the pull backends: one
 * question in flight at a time, notifications while it is asked folded into
 * one more, wake-ups only while claims wait, ticks while they wait (and,
 * for a backend that reaps, while they do not), nothing after stop. Real
 * ring and timers; the "store" is this file, answering when told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/container_of.h"
#include "kernel/loop.h"
#include "modules/queue/pull.h"
#include "modules/queue/pull_watch.h"

static const struct loop_config lcfg = {
    .entries = 64, .recv_bufs = 16, .recv_buf_size = 1024, .pool_chunk = 4096, .pool_max_free = 4};

struct rig {
    struct loop l;
    struct pull_watch w;
    unsigned checks, wakes;
    bool answer_at_once; /* the store answers within check(), "nothing due" */
    struct timer end;
};

static void check(struct pull_watch *w)
{
    struct rig *g = container_of(w, struct rig, w);
    g->checks++;
    if (g->answer_at_once)
        pull_watch_answer(w, false);
}

static void wake(void *data)
{
    ((struct rig *)data)->wakes++;
}

static void on_end(struct loop *l, struct timer *t)
{
    (void)t;
    l->stop_now = true;
}

static void rig_up(struct rig *g, uint64_t idle_ms)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(loop_init(&g->l, 0, &lcfg), 0);
    pull_watch_init(&g->w, &g->l, check, wake, g, idle_ms);
}

static void rig_run_for(struct rig *g, uint64_t ms)
{
    g->end.fn = on_end;
    g->l.stop_now = false;
    loop_timer_in(&g->l, &g->end, ms);
    assert_int_equal(loop_run(&g->l), 0);
}

static void rig_down(struct rig *g)
{
    pull_watch_stop(&g->w);
    loop_free(&g->l);
}

static void test_a_notification_while_nobody_waits_asks_nothing(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    pull_watch_poke(&g.w);
    assert_int_equal(g.checks, 0);
    rig_down(&g);
}

static void test_notifications_during_a_check_make_one_more(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    pull_watch_set(&g.w, true);
    pull_watch_poke(&g.w);
    pull_watch_poke(&g.w);
    pull_watch_poke(&g.w);
    assert_int_equal(g.checks, 1); /* one in flight, the other two folded */
    pull_watch_answer(&g.w, false);
    assert_int_equal(g.checks, 2);
    assert_int_equal(g.wakes, 0);
    pull_watch_answer(&g.w, true);
    assert_int_equal(g.checks, 2); /* nothing came meanwhile */
    assert_int_equal(g.wakes, 1);
    rig_down(&g);
}

static void test_a_yes_wakes_only_while_claims_wait(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    pull_watch_set(&g.w, true);
    pull_watch_poke(&g.w);
    pull_watch_set(&g.w, false); /* the claims were answered meanwhile */
    pull_watch_answer(&g.w, true);
    assert_int_equal(g.wakes, 0);
    rig_down(&g);
}

static void test_nothing_is_asked_or_woken_after_stop(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    pull_watch_set(&g.w, true);
    pull_watch_poke(&g.w);
    pull_watch_poke(&g.w);
    pull_watch_stop(&g.w);
    pull_watch_answer(&g.w, true); /* the answer in flight at stop */
    assert_int_equal(g.checks, 1);
    assert_int_equal(g.wakes, 0);
    pull_watch_set(&g.w, true);
    pull_watch_poke(&g.w);
    assert_int_equal(g.checks, 1);
    loop_free(&g.l);
}

static void test_waiting_claims_are_checked_on_a_tick(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    g.answer_at_once = true;
    pull_watch_set(&g.w, true);
    rig_run_for(&g, PULL_RECHECK_MS + 300);
    assert_true(g.checks >= 1); /* no notification came: the tick asked */
    rig_down(&g);
}

static void test_without_idle_checks_nobody_waiting_means_no_ticks(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 0);
    g.answer_at_once = true;
    pull_watch_set(&g.w, true);
    pull_watch_set(&g.w, false);
    rig_run_for(&g, PULL_RECHECK_MS + 300);
    assert_int_equal(g.checks, 0);
    rig_down(&g);
}

static void test_a_reaping_backend_is_checked_while_nobody_waits(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g, 20);
    g.answer_at_once = true;
    rig_run_for(&g, 200);
    assert_true(g.checks >= 2);
    assert_int_equal(g.wakes, 0);
    unsigned idle = g.checks;
    pull_watch_set(&g.w, true); /* waiting claims: the shorter of the two periods */
    pull_watch_set(&g.w, false);
    rig_run_for(&g, 200);
    assert_true(g.checks > idle); /* back to the idle period, not stopped */
    rig_down(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_notification_while_nobody_waits_asks_nothing),
        cmocka_unit_test(test_notifications_during_a_check_make_one_more),
        cmocka_unit_test(test_a_yes_wakes_only_while_claims_wait),
        cmocka_unit_test(test_nothing_is_asked_or_woken_after_stop),
        cmocka_unit_test(test_waiting_claims_are_checked_on_a_tick),
        cmocka_unit_test(test_without_idle_checks_nobody_waiting_means_no_ticks),
        cmocka_unit_test(test_a_reaping_backend_is_checked_while_nobody_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
