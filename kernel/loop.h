/*
 * loop.h - one io_uring event loop per thread.
 *
 * Every submission carries a pointer to a struct op whose first member is
 * its completion callback; the loop only dispatches completions and runs
 * the timer heap. Ops are embedded in the structs they serve (a connection,
 * a watch, the loop itself), so the hot path never allocates.
 *
 * A loop is owned by exactly one thread: nothing here is locked. Other
 * threads reach a loop only through loop_wake() (an eventfd on the ring).
 */
#ifndef TRIREME_KERNEL_LOOP_H
#define TRIREME_KERNEL_LOOP_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernel/timer.h"

struct loop;
struct op;

/* Completion callback. cqe is only valid during the call. */
typedef void (*op_fn)(struct loop *l, struct op *op, struct io_uring_cqe *cqe);

struct op {
    op_fn fn; /* MUST stay first: the loop casts user_data to this */
};

struct recv_bufs;
struct buf_pool;
struct metrics;
struct server;

struct loop {
    struct io_uring ring;
    unsigned setup_flags; /* IORING_SETUP_* actually in force */
    int id;               /* 0 .. threads-1 */
    struct server *srv;

    uint64_t now_ns; /* CLOCK_MONOTONIC, refreshed once per iteration */
    int64_t wall_s;  /* CLOCK_REALTIME seconds, same refresh */

    struct timer_heap timers;
    struct op timeout_op;        /* the one IORING_OP_TIMEOUT */
    struct op timeout_update_op; /* IORING_TIMEOUT_UPDATE of it */
    struct __kernel_timespec timeout_ts;
    uint64_t timeout_at; /* deadline armed, when timeout_armed */
    bool timeout_armed;
    bool timeout_update_inflight;

    int wake_fd; /* eventfd: other threads ask this loop to look at srv */
    uint64_t wake_val;
    struct op wake_op;
    void (*on_wake)(struct loop *l);

    struct recv_bufs *rbufs; /* provided-buffer ring for recv */
    struct buf_pool *pool;   /* chunks for connection in/out buffers */

    unsigned live;           /* things that keep the loop running (connections, ...) */
    bool stopping;           /* leave when live reaches 0 */
    bool stop_now;           /* leave at the end of this iteration */
    uint64_t rng;            /* xorshift state, for ids and jitter */
    void *modules[8];        /* per-loop module state, indexed by module slot */
    struct metrics *metrics; /* this loop's counters (kernel/metrics.h) */
};

struct loop_config {
    unsigned entries;        /* SQ size */
    unsigned recv_bufs;      /* provided buffers (power of two) */
    unsigned recv_buf_size;  /* bytes per provided buffer */
    unsigned pool_chunk;     /* connection buffer chunk size */
    unsigned pool_max_free;  /* chunks kept for reuse */
    unsigned metrics_series; /* label sets per metrics family (0: the default) */
};

int loop_init(struct loop *l, int id, const struct loop_config *cfg);
void loop_free(struct loop *l);
/* Run until stop_now, or stopping with nothing live. Returns 0 or -errno. */
int loop_run(struct loop *l);

/* An SQE, submitting pending ones first if the SQ is full. Never NULL. */
struct io_uring_sqe *loop_sqe(struct loop *l, struct op *op);

/* Thread-safe: make l run its on_wake hook soon. */
void loop_wake(struct loop *l);

/* Arm or move a timer to now + ms (ms == 0 fires on the next iteration). */
void loop_timer_in(struct loop *l, struct timer *t, uint64_t ms);
void loop_timer_cancel(struct loop *l, struct timer *t);

uint64_t loop_random(struct loop *l);

#endif
