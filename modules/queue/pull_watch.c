/*
 * pull_watch.c - one "are pull jobs due?" question at a time, asked on a
 * notification and on a tick while claims wait (pull_watch.h).
 */
#include "modules/queue/pull_watch.h"

#include "kernel/container_of.h"
#include "modules/queue/pull.h"

static void ask(struct pull_watch *w)
{
    if (w->stopped)
        return;
    if (w->checking) {
        w->check_again = true;
        return;
    }
    w->checking = true;
    w->check(w);
}

static void on_tick(struct loop *l, struct timer *t)
{
    struct pull_watch *w = container_of(t, struct pull_watch, tick);
    if ((!w->watching && !w->idle_ms) || w->stopped)
        return;
    uint64_t every = w->idle_ms;
    if (w->watching && (!every || every > PULL_RECHECK_MS))
        every = PULL_RECHECK_MS;
    loop_timer_in(l, &w->tick, every);
    ask(w);
}

void pull_watch_init(struct pull_watch *w, struct loop *l, void (*check)(struct pull_watch *w),
                     void (*wake)(void *data), void *wake_data, uint64_t idle_ms)
{
    *w = (struct pull_watch){
        .loop = l,
        .check = check,
        .wake = wake,
        .wake_data = wake_data,
        .idle_ms = idle_ms,
        .tick = {.fn = on_tick},
    };
    if (idle_ms)
        loop_timer_in(l, &w->tick, idle_ms);
}

void pull_watch_set(struct pull_watch *w, bool on)
{
    if (w->watching == on || w->stopped)
        return;
    w->watching = on;
    if (on)
        loop_timer_in(w->loop, &w->tick, PULL_RECHECK_MS);
    else if (w->idle_ms)
        loop_timer_in(w->loop, &w->tick, w->idle_ms);
    else
        loop_timer_cancel(w->loop, &w->tick);
}

void pull_watch_poke(struct pull_watch *w)
{
    if (w->watching)
        ask(w);
}

void pull_watch_answer(struct pull_watch *w, bool due)
{
    w->checking = false;
    if (w->stopped)
        return;
    if (due && w->watching)
        w->wake(w->wake_data);
    if (w->check_again) {
        w->check_again = false;
        ask(w);
    }
}

void pull_watch_stop(struct pull_watch *w)
{
    w->stopped = true;
    w->watching = false;
    loop_timer_cancel(w->loop, &w->tick);
}
