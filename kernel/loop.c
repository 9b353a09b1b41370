/*
 * loop.c - the per-thread io_uring loop: submit, wait, dispatch, timers.
 *
 * One iteration: arm the timeout for the earliest timer, submit everything
 * queued and wait for at least one completion, refresh the cached clock,
 * dispatch every completion to its op's callback, run expired timers, flush
 * buffered log lines. Nothing else lives here: what an op is for is known
 * only to its callback.
 */
#include "kernel/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kernel/buf.h"
#include "kernel/log.h"
#include "kernel/metrics.h"
#include "kernel/recvbuf.h"
#include "kernel/xalloc.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void refresh_clock(struct loop *l)
{
    l->now_ns = mono_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    l->wall_s = ts.tv_sec;
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct op *op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    while (!sqe) {
        io_uring_submit(&l->ring);
        sqe = io_uring_get_sqe(&l->ring);
    }
    io_uring_sqe_set_data(sqe, op);
    return sqe;
}

static void on_timeout(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    l->timeout_armed = false;
}

static void on_timeout_update(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    /* -ENOENT: the timeout fired before the update reached it; its own
     * completion clears timeout_armed and the next iteration re-arms. */
    l->timeout_update_inflight = false;
}

static void arm_timeout(struct loop *l)
{
    struct timer *t = timer_heap_min(&l->timers);
    if (!t)
        return;
    if (l->timeout_armed && (t->when_ns >= l->timeout_at || l->timeout_update_inflight))
        return;
    l->timeout_ts.tv_sec = (long long)(t->when_ns / 1000000000ull);
    l->timeout_ts.tv_nsec = (long long)(t->when_ns % 1000000000ull);
    if (!l->timeout_armed) {
        struct io_uring_sqe *sqe = loop_sqe(l, &l->timeout_op);
        io_uring_prep_timeout(sqe, &l->timeout_ts, 0, IORING_TIMEOUT_ABS);
        l->timeout_armed = true;
    } else {
        struct io_uring_sqe *sqe = loop_sqe(l, &l->timeout_update_op);
        io_uring_prep_timeout_update(sqe, &l->timeout_ts, (uint64_t)(uintptr_t)&l->timeout_op,
                                     IORING_TIMEOUT_ABS);
        l->timeout_update_inflight = true;
    }
    l->timeout_at = t->when_ns;
}

static void run_timers(struct loop *l)
{
    struct timer *t;
    while ((t = timer_heap_min(&l->timers)) && t->when_ns <= l->now_ns) {
        timer_heap_remove(&l->timers, t);
        t->fn(l, t);
    }
}

void loop_timer_in(struct loop *l, struct timer *t, uint64_t ms)
{
    timer_heap_add(&l->timers, t, l->now_ns + ms * 1000000ull);
}

void loop_timer_cancel(struct loop *l, struct timer *t)
{
    timer_heap_remove(&l->timers, t);
}

static void arm_wake(struct loop *l)
{
    struct io_uring_sqe *sqe = loop_sqe(l, &l->wake_op);
    io_uring_prep_read(sqe, l->wake_fd, &l->wake_val, sizeof(l->wake_val), 0);
}

static void on_wake(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    if (l->on_wake)
        l->on_wake(l);
    if (!l->stop_now)
        arm_wake(l);
}

void loop_wake(struct loop *l)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(l->wake_fd, &one, sizeof(one));
    while (r < 0 && errno == EINTR);
}

uint64_t loop_random(struct loop *l)
{
    uint64_t x = l->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return l->rng = x;
}

static int ring_setup(struct loop *l, unsigned entries)
{
    /* Newest first; each step drops what an older kernel refuses. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, &l->ring, &p);
        if (ret == 0) {
            l->setup_flags = p.flags;
            return 0;
        }
        if (ret != -EINVAL)
            break;
    }
    return ret;
}

int loop_init(struct loop *l, int id, const struct loop_config *cfg)
{
    memset(l, 0, sizeof(*l));
    l->id = id;
    l->wake_fd = -1;
    int ret = ring_setup(l, cfg->entries);
    if (ret < 0)
        return ret;
    l->timeout_op.fn = on_timeout;
    l->timeout_update_op.fn = on_timeout_update;
    l->wake_op.fn = on_wake;
    l->rng = mono_ns() ^ ((uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull) ^ (uint64_t)getpid();
    if (!l->rng)
        l->rng = 1;
    l->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (l->wake_fd < 0) {
        ret = -errno;
        goto fail;
    }
    l->rbufs = xcalloc(1, sizeof(*l->rbufs));
    l->pool = xcalloc(1, sizeof(*l->pool));
    ret = recvbuf_init(l->rbufs, &l->ring, cfg->recv_bufs, cfg->recv_buf_size);
    if (ret < 0)
        goto fail;
    buf_pool_init(l->pool, cfg->pool_chunk, cfg->pool_max_free);
    l->metrics = metrics_new(cfg->metrics_series);
    refresh_clock(l);
    arm_wake(l);
    return 0;
fail:
    loop_free(l);
    return ret;
}

void loop_free(struct loop *l)
{
    if (l->rbufs) {
        recvbuf_free(l->rbufs, &l->ring);
        free(l->rbufs);
    }
    if (l->pool) {
        buf_pool_free(l->pool);
        free(l->pool);
    }
    if (l->ring.ring_fd > 0)
        io_uring_queue_exit(&l->ring);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    timer_heap_free(&l->timers);
    metrics_free(l->metrics);
    memset(l, 0, sizeof(*l));
    l->wake_fd = -1;
}

int loop_run(struct loop *l)
{
    log_buffered(true);
    while (!l->stop_now && !(l->stopping && l->live == 0)) {
        arm_timeout(l);
        int ret = io_uring_submit_and_wait(&l->ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY && ret != -EAGAIN) {
            LOG(LOG_ERROR, "io_uring_enter failed", L_STR("error", strerror(-ret)),
                L_INT("loop", l->id));
            log_buffered(false);
            return ret;
        }
        refresh_clock(l);
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&l->ring, head, cqe)
        {
            struct op *op = io_uring_cqe_get_data(cqe);
            if (op)
                op->fn(l, op, cqe);
            seen++;
        }
        io_uring_cq_advance(&l->ring, seen);
        run_timers(l);
        log_flush();
    }
    log_buffered(false);
    return 0;
}
