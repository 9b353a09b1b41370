/*
 * core.h - the worker core: the part of the worker role that is the same
 * on every queue backend (modules/queue/queue_worker.h says what a backend
 * adds).
 *
 * Per loop: a pool of runs (grown to the peak, then reused), the
 * slots they hold, their soft and hard time limits, --kind-limits checks,
 * the retry backoff, cancellation and lease-loss bookkeeping, and the
 * drain, which ends when no run and no backend operation is left.
 *
 * Slots: a run holds one from worker_run_new until it finishes, or until
 * it is lost (cancelled, lease taken over, hard limit passed, handed back):
 * a lost run may still be stopping, but its outcome is no longer written,
 * so it no longer counts against --concurrency.
 *
 * Batches beyond the free slots: a job that finishes within its own start
 * (noop, an unknown kind, a bad payload) never holds a slot, so while the
 * last job started did and nothing runs or waits, a fetch asks for a whole
 * --batch-size instead of the free slots (a noop burn-down is not capped by
 * a --concurrency sized for slow jobs). Should such a batch bring slow
 * jobs, those that find no slot are parked: claimed and leased, but not
 * started and their time limit not counting, until a slot frees (in claim
 * order); a drain hands them straight back. So at most --concurrency jobs
 * run, and at most --batch-size wait per loop.
 */
#ifndef TRIREME_MODULES_WORKER_CORE_H
#define TRIREME_MODULES_WORKER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/list.h"
#include "kernel/redis.h"
#include "kernel/timer.h"
#include "modules/jobs/job_input.h"
#include "modules/jobs/retention.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind_limits.h"
#include "modules/queue/queue_worker.h"

#define WORKER_MAX_QUEUES     32
#define WORKER_RETRY_BASE_MS  1000          /* first retry's delay, doubled per attempt */
#define WORKER_RETRY_MAX_MS   (3600 * 1000) /* the backoff's ceiling */
#define WORKER_HARD_EXTRA_MS  5000 /* after the soft limit, before the slot is taken back */
#define WORKER_LIMIT_CHECK_MS 1000 /* a --kind-limits verdict's deadline */

struct worker;

struct worker_run {
    struct job_run job; /* first: what the kinds see */
    struct list node;   /* on worker.runs */
    struct list wait;   /* on worker.parked while it waits for a slot */
    struct worker *w;
    struct timer soft, hard;
    struct redis_cmd limit_cmd; /* the --kind-limits check */
    uint64_t started_ns;
    uint64_t due_ns;   /* loop clock when the job fell due (0: unknown); the backend sets it */
    long long token;   /* the leader token it was fetched under (0: compete mode) */
    uint64_t hb_gen;   /* the lease renewal that last included it */
    unsigned queue_ix; /* index into worker.queue */
    bool stop_requested, slot_freed, lost, cancelled;
    bool parked;   /* fetched beyond the free slots: waits, unstarted, for one */
    bool released; /* finished and back in the pool (read right after a start) */
};

struct worker {
    struct loop *loop;
    const struct config *cfg;
    const struct queue_worker_ops *ops;
    char id[128]; /* host:pid:loop:random, the fence of every write */
    char queue[WORKER_MAX_QUEUES][JOB_NAME_MAX + 1];
    unsigned nqueues;
    unsigned limit;   /* this loop's share of --concurrency */
    unsigned running; /* runs holding a slot */
    unsigned nparked; /* runs on parked */
    struct list runs, spare, parked;
    bool last_instant; /* the last job started finished within its start */
    unsigned inflight; /* the backend's operations in flight */
    const struct kind_limits *limits;
    struct redis_client *limits_redis, own_redis;
    bool has_own_redis;
    struct timer flush_timer, drain_timer, unpark_timer, hb_timer;
    uint64_t hb_gen; /* the lease renewal in flight, or the last one */
    bool hb_inflight;
    struct retention effects; /* the sql kind's once-rows; loop 0 with a database */
    bool opened, draining, handing_back, closed;
};

static inline struct worker_run *worker_run_of(struct job_run *j)
{
    return container_of(j, struct worker_run, job);
}

/* A blank run (the backend's run_size bytes, zeroed) holding a slot, or
 * parked when none is free (it takes one when it starts): the backend
 * fills id, attempt, max_attempts, timeout_ms (0: the default), queue_ix
 * and its own fields, then calls worker_run_start. */
struct worker_run *worker_run_new(struct worker *w);
/* Find the kind, parse the payload, check the kind's limit, start it (a
 * parked run: once it has a slot). A run that cannot start finishes at
 * once (unknown kind, bad payload). */
void worker_run_start(struct worker *w, struct worker_run *r, const char *kind, size_t kind_len,
                      const char *payload, size_t payload_len);
/* The run was cancelled or its lease lost: log why, write nothing more for
 * it, free its slot and ask the kind to stop. May free r. */
void worker_run_lose(struct worker *w, struct worker_run *r, const char *why, bool cancelled);
/* The running run with this id, or NULL. */
struct worker_run *worker_run_find(struct worker *w, int64_t id);

/* Jobs to ask for: the free slots, or a whole batch while jobs finish
 * within their start (see above); 0 when none are free, or when so few are
 * that a fetch would cost a round trip per job (refill in chunks).
 * pending: jobs already asked for and not yet delivered. */
unsigned worker_fetch_size(const struct worker *w, unsigned pending);
/* Slots free now (for take-overs, which come in whatever size). */
unsigned worker_free_slots(const struct worker *w, unsigned pending);
/* Fetch if the worker wants jobs (not draining, leader when it must be). */
void worker_want(struct worker *w);
bool worker_may_fetch(const struct worker *w);

void worker_op_begin(struct worker *w);
void worker_op_end(struct worker *w);
/* The renewal ops->heartbeat sent was answered (runs it lost already lost). */
void worker_heartbeat_done(struct worker *w);
/* Call ops->flush at the end of this loop turn. */
void worker_flush_soon(struct worker *w);

/* The worker of one loop on backend ops (the module's start hook, and the
 * unit tests with a fake backend) into *out. limits: --kind-limits, or
 * NULL. 0, or -errno (after a log line) when it cannot start. */
int worker_open(struct loop *l, const struct queue_worker_ops *ops,
                const struct kind_limits *limits, struct worker **out);
/* Stop fetching; finish what runs within --grace, then hand the rest back. */
void worker_drain(struct worker *w);
/* At exit, drained or not. */
void worker_free(struct worker *w);

#endif
