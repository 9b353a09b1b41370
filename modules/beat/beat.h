/*
 * beat.h - the beat role's state and how its files hand work to each
 * other. Private to modules/beat/: other roles share schedules through
 * modules/schedules/, and beat reaches jobs only through the queue
 * backend's beat part (modules/queue/queue_beat.h).
 *
 * Runs on loop 0. Enabled schedules are loaded from trireme.schedules
 * (load.c) into a set by id and one min-heap by next slot (set.c); one
 * kernel timer is armed for the heap's minimum (fire.c), so an idle beat
 * with ten thousand schedules sleeps until the next slot. Due slots wait
 * in a queue and go to the queue backend in batches (fire.c), which keeps
 * one job per slot however many beats run. The election "beat" (--leader)
 * only keeps standbys idle (module.c): correctness rests on the slot's key.
 */
#ifndef TRIREME_MODULES_BEAT_H
#define TRIREME_MODULES_BEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/pg.h"
#include "kernel/timer.h"
#include "modules/beat/plan.h"
#include "modules/jobs/retention.h"
#include "modules/queue/queue_beat.h"
#include "modules/schedules/schedules.h"

struct beat;
struct config;
struct loop;

#define BEAT_ONE_LOADS_MAX 64 /* queued single-row reloads; more: reload everything */

/* --- set.c: the loaded schedules ----------------------------------------- */

struct beat_set {
    struct beat_sched **all; /* sorted by id */
    unsigned n, cap;
    struct beat_heap heap;
    struct sched_zones zones; /* every loaded schedule's zone, by name */
};

struct beat_sched *beat_set_find(const struct beat_set *set, int64_t id);
/* Insert s, replacing (and freeing) a schedule with the same id. s is not
 * in the heap yet. */
void beat_set_put(struct beat_set *set, struct beat_sched *s);
void beat_set_remove(struct beat_set *set, int64_t id);
/* Take every schedule out (the heap empties): *n of them, sorted by id,
 * for the caller to free with beat_sched_free. */
struct beat_sched **beat_set_take(struct beat_set *set, unsigned *n);
void beat_set_clear(struct beat_set *set);
void beat_set_free(struct beat_set *set);
void beat_sched_free(struct beat_sched *s);

/* --- load.c: schedules from PostgreSQL, changes by NOTIFY ---------------- */

struct beat_load {
    bool has_listen; /* a LISTEN connection: NOTIFY reloads; else only polls */
    struct pg_listener lis;
    struct timer poll_timer;
    bool loaded;                         /* a full load ended since this beat leads */
    struct pg_query all_q, one_q, sig_q; /* every enabled schedule; one by id; the signature */
    bool all_inflight, all_again, one_inflight, sig_inflight, sig_poll;
    const char *all_vals[1], *one_vals[1];
    char all_limit[16], one_id[24];
    char signature[160]; /* trireme.schedules_signature() as the latest load saw it */
    int64_t one_ids[BEAT_ONE_LOADS_MAX]; /* changed schedules waiting to be reloaded */
    unsigned n_one;
    int64_t *catchup; /* cfg->beat_catchup_max slots, planning scratch */
};

void beat_load_start(struct beat *b);
/* Load every enabled schedule again (after the one in flight, if any). */
void beat_load_all(struct beat *b);
/* The lead is lost: what was loaded is forgotten. */
void beat_load_forget(struct beat *b);
void beat_load_stop(struct beat *b);

/* --- fire.c: the due-slot timer, and due slots to the queue backend ------ */

struct beat_pend {
    int64_t id, slot, next; /* next: 0 when the schedule never fires again */
    int32_t jitter_ms;
    bool catchup;
};

struct beat_fire {
    const struct queue_beat_ops *ops;
    void *qb;               /* the backend's per-loop state */
    struct beat_pend *pend; /* waiting, oldest first */
    unsigned npend, cappend;
    struct queue_beat_batch batch; /* the batch in flight, over slots[] */
    struct queue_beat_slot *slots; /* cfg->beat_batch of them */
    struct timer retry_timer;
    bool inflight;
    struct timer due_timer; /* for the heap's minimum */
    bool replanning;        /* a full load after a jump in time: timer off until it ends */
};

int beat_fire_open(struct beat *b);
/* Queue one slot of s (with its jitter drawn now). */
void beat_fire_queue(struct beat *b, struct beat_sched *s, int64_t slot, int64_t next,
                     bool catchup);
/* Send what is due: one batch in flight, the rest waits for it. */
void beat_fire_flush(struct beat *b);
/* Drop the slots waiting (the lead is lost, or too many wait). */
void beat_fire_drop(struct beat *b);
/* The heap changed: arm the due timer for its minimum (or disarm it). */
void beat_fire_arm(struct beat *b);
/* The lead is lost or beat stops: the due timer, and a batch waiting to be
 * retried, are not. */
void beat_fire_cancel(struct beat *b);
void beat_fire_close(struct beat *b);
void beat_fire_free(struct beat *b);

/* --- the role -------------------------------------------------------------- */

struct beat {
    struct loop *loop;
    const struct config *cfg;
    struct pg_pool pg; /* one connection: loads, signature checks and fires run in order */
    struct beat_set set;
    struct beat_load load;
    struct beat_fire fire;
    struct retention retention; /* old rows of trireme.schedule_fires, while leading */
    bool leading;               /* elected (or no election): may fire */
    bool stopping, closed;
};

/* module.c: close the connections, once nothing is in flight. */
void beat_close(struct beat *b);

/* fire.c: the wall clock, milliseconds since the Unix epoch. */
uint64_t beat_wall_ms(void);

int beat_file_reconcile(const struct config *cfg); /* file.c */
int beat_cli_schedules(int argc, char **argv);     /* cli.c */

#endif
