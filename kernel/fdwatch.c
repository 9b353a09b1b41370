/*
 * fdwatch.c - readiness of foreign fds, level-triggered.
 *
 * Each arm is a one-shot IORING_OP_POLL_ADD, re-armed after the callback.
 * A multishot poll would save that SQE but only reports new wake-ups: when
 * libpq says "wait until writable" about a socket that already is, a
 * multishot poll stays silent forever. A one-shot poll reports the current
 * state, which is the contract libpq (and any library with its own I/O)
 * expects. Changing the mask while armed removes the poll and adds a new
 * one; both ops are ordered on the ring.
 */
#include "kernel/fdwatch.h"

#include <errno.h>
#include <string.h>

#include "kernel/container_of.h"

static void arm(struct fd_watch *w)
{
    struct io_uring_sqe *sqe = loop_sqe(w->loop, &w->poll_op);
    io_uring_prep_poll_add(sqe, w->fd, w->events);
    w->armed = true;
    w->ops++;
}

static void finish(struct fd_watch *w)
{
    if (w->stopping && w->ops == 0) {
        w->stopping = false;
        w->loop->live--;
        if (w->on_stopped)
            w->on_stopped(w);
    }
}

static void on_poll(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct fd_watch *w = container_of(op, struct fd_watch, poll_op);
    w->armed = false;
    w->ops--;
    if (!w->stopping) {
        /* Held through the callback: a stop from inside it finishes (and
         * on_stopped runs) only after this function is done with w. */
        w->ops++;
        if (cqe->res > 0)
            w->fn(w, (unsigned)cqe->res);
        else if (cqe->res < 0 && cqe->res != -ECANCELED)
            w->fn(w, POLLERR);
        w->ops--;
        if (!w->armed && !w->stopping && w->ops == 0)
            arm(w);
    }
    finish(w);
}

static void on_ctl(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct fd_watch *w = container_of(op, struct fd_watch, ctl_op);
    w->ops--;
    if (!w->stopping && !w->armed && w->ops == 0)
        arm(w);
    finish(w);
}

void fd_watch_start(struct fd_watch *w, struct loop *l, int fd, unsigned events, fd_watch_fn fn)
{
    void *data = w->data;
    void (*stopped)(struct fd_watch *) = w->on_stopped;
    memset(w, 0, sizeof(*w));
    w->data = data;
    w->on_stopped = stopped;
    w->poll_op.fn = on_poll;
    w->ctl_op.fn = on_ctl;
    w->loop = l;
    w->fn = fn;
    w->fd = fd;
    w->events = events;
    l->live++;
    arm(w);
}

static void remove_poll(struct fd_watch *w)
{
    struct io_uring_sqe *sqe = loop_sqe(w->loop, &w->ctl_op);
    io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&w->poll_op);
    w->ops++;
}

void fd_watch_set(struct fd_watch *w, unsigned events)
{
    if (w->stopping || events == w->events)
        return;
    w->events = events;
    if (w->armed)
        remove_poll(w); /* on_ctl re-arms with the new mask once both ops are done */
    else if (w->ops == 0)
        arm(w);
}

void fd_watch_stop(struct fd_watch *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (w->armed)
        remove_poll(w);
    finish(w);
}
