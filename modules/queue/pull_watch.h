/*
 * pull_watch.h - when a web loop's waiting claims should look again.
 *
 * Claims that found nothing wait (long-poll) until jobs may be due. What
 * says so differs by backend (NOTIFY trireme_jobs, PUBLISH trireme:pull),
 * and some jobs fall due with nobody saying so (a delay ending, a lease
 * given back, a retry's backoff ending, a lost notification). So the rule
 * is kept here, once: a notification while claims wait, and a tick every
 * PULL_RECHECK_MS, ask the store whether a pull job is due; one question
 * is in flight at a time, and what came while it was asked asks once more
 * when it is answered. A "yes" wakes the loop's waiting claims, which then
 * claim for real; the check itself takes nothing.
 *
 * The backend supplies the question (check) and answers it with
 * pull_watch_answer. A backend whose check also does upkeep (the Redis one
 * reaps expired leases) sets idle_ms to be asked even while nobody waits.
 */
#ifndef TRIREME_MODULES_QUEUE_PULL_WATCH_H
#define TRIREME_MODULES_QUEUE_PULL_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/loop.h"

struct pull_watch {
    struct loop *loop;
    void (*check)(struct pull_watch *w); /* ask the store; answer with pull_watch_answer */
    void (*wake)(void *data);            /* the loop's waiting claims */
    void *wake_data;
    uint64_t idle_ms; /* 0, or the period of checks while nobody waits */
    bool watching, checking, check_again, stopped;
    struct timer tick;
};

void pull_watch_init(struct pull_watch *w, struct loop *l, void (*check)(struct pull_watch *w),
                     void (*wake)(void *data), void *wake_data, uint64_t idle_ms);
/* Claims wait (on) or none does (off): the queue_pull_ops watch. */
void pull_watch_set(struct pull_watch *w, bool on);
/* The backend heard that jobs may be due (or may have missed it). */
void pull_watch_poke(struct pull_watch *w);
void pull_watch_answer(struct pull_watch *w, bool due);
/* No more checks; an answer still in flight is ignored. */
void pull_watch_stop(struct pull_watch *w);

#endif
