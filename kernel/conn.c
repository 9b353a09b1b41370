/*
 * conn.c - stream sockets on the ring (see conn.h for the contract).
 *
 * Lifetime rule: c->ops counts submissions in flight. A completion callback
 * decrements its own op only at its end, so handler code called from it may
 * close the conn and still touch it until it returns; conn_close() always
 * submits a cancel, so the struct is never freed synchronously either. The
 * conn is finished (fd closed, on_close called) when CLOSING and no op is
 * left.
 */
#include "kernel/conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/container_of.h"
#include "kernel/recvbuf.h"
#include "kernel/tls.h"

static void maybe_finish(struct conn *c)
{
    if (!(c->flags & CONN_CLOSING) || c->ops)
        return;
    struct loop *l = c->loop;
    loop_timer_cancel(l, &c->timer);
    buf_release(l->pool, &c->in);
    buf_release(l->pool, &c->out);
    buf_release(l->pool, &c->wire);
    if (c->tls)
        tls_free(c);
    close(c->fd);
    c->fd = -1;
    l->live--;
    c->h->on_close(c, c->err);
}

static void arm_recv(struct conn *c)
{
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->recv_op);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RECVBUF_GROUP;
    c->flags |= CONN_RECV_ARMED;
    c->ops++;
}

static void start_linger(struct conn *c)
{
    /* Our answer is complete: half-close, then read and drop whatever the
     * peer still sends until it closes too or the linger deadline passes. */
    shutdown(c->fd, SHUT_WR);
    c->flags |= CONN_LINGER;
    if (c->flags & CONN_RECV_PAUSED) { /* drain what the peer still sends */
        c->flags &= ~CONN_RECV_PAUSED;
        if (!(c->flags & (CONN_RECV_ARMED | CONN_EOF)))
            arm_recv(c);
    }
    buf_release(c->loop->pool, &c->in);
    if (!(c->flags & CONN_RECV_ARMED) || (c->flags & CONN_EOF)) {
        conn_close(c, 0);
        return;
    }
    conn_deadline(c, CONN_LINGER_MS);
}

static void start_send(struct conn *c)
{
    if (c->flags & (CONN_SENDING | CONN_CLOSING))
        return;
    if (c->tls) {
        /* c->out's plaintext becomes records appended to c->wire. */
        int r = tls_pump(c, false);
        if (r < 0) {
            conn_close(c, r);
            return;
        }
        if (!buf_size(&c->wire))
            return;
    } else if (!buf_size(&c->wire)) {
        if (!buf_size(&c->out))
            return;
        struct buf t = c->wire;
        c->wire = c->out;
        c->out = t;
    }
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->send_op);
    io_uring_prep_send(sqe, c->fd, buf_head(&c->wire), buf_size(&c->wire), MSG_NOSIGNAL);
    c->flags |= CONN_SENDING;
    c->ops++;
}

static void peer_eof(struct conn *c)
{
    /* Over TLS the peer's close_notify comes first, its FIN later. */
    bool again = (c->flags & CONN_EOF) != 0;
    c->flags |= CONN_EOF;
    if (c->flags & (CONN_LINGER | CONN_CLOSING))
        conn_close(c, 0);
    else if (again)
        return;
    else if (c->h->on_eof)
        c->h->on_eof(c);
    else
        conn_close(c, 0);
}

/* A TLS conn after a completion: run the engine both ways, send what it
 * produced, hand new plaintext to the handler. */
static void tls_run(struct conn *c)
{
    int r = tls_pump(c, true);
    if (r < 0) {
        conn_close(c, r);
        return;
    }
    start_send(c);
    if ((r & TLS_SECURE) && c->h->on_secure && !(c->flags & CONN_CLOSING))
        c->h->on_secure(c);
    if ((r & TLS_GOT_DATA) && !(c->flags & CONN_CLOSING))
        c->h->on_read(c);
    if ((r & TLS_PEER_CLOSED) && !(c->flags & CONN_CLOSING))
        peer_eof(c);
}

static void on_recv(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct conn *c = container_of(op, struct conn, recv_op);
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    int res = cqe->res;
    if (!more)
        c->flags &= ~CONN_RECV_ARMED;
    if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        bool deliver = !(c->flags & (CONN_CLOSING | CONN_LINGER));
        bool records = false;
        if (deliver && c->tls) {
            int e = tls_feed(c, recvbuf_ptr(l->rbufs, bid), (size_t)res);
            if (e)
                conn_close(c, e);
            records = !e;
            deliver = false;
        }
        if (deliver && buf_size(&c->in) + (uint32_t)res > CONN_MAX_INPUT) {
            conn_close(c, -EMSGSIZE);
            deliver = false;
        }
        if (deliver && buf_append(l->pool, &c->in, recvbuf_ptr(l->rbufs, bid), (size_t)res)) {
            conn_close(c, -ENOMEM);
            deliver = false;
        }
        recvbuf_put(l->rbufs, bid);
        if (deliver)
            c->h->on_read(c);
        else if (records)
            tls_run(c);
        if (!more && !(c->flags & (CONN_CLOSING | CONN_RECV_PAUSED)))
            arm_recv(c); /* the kernel ended the multishot (buffer ring ran dry) */
    } else if (res == 0) {
        peer_eof(c);
    } else if (res == -ENOBUFS) {
        if (!more && !(c->flags & (CONN_CLOSING | CONN_RECV_PAUSED)))
            arm_recv(c);
    } else if (res < 0 && !more) {
        if (res != -ECANCELED)
            conn_close(c, res);
        else if (!(c->flags & (CONN_CLOSING | CONN_RECV_PAUSED | CONN_EOF)))
            arm_recv(c); /* paused and resumed before the cancel landed */
    }
    if (!more)
        c->ops--;
    maybe_finish(c);
}

static void on_send(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct conn *c = container_of(op, struct conn, send_op);
    c->flags &= ~CONN_SENDING;
    if (cqe->res < 0) {
        conn_close(c, cqe->res == -ECANCELED ? c->err : cqe->res);
    } else if (!(c->flags & CONN_CLOSING)) {
        buf_consume(l->pool, &c->wire, (size_t)cqe->res);
        if (c->tls)
            tls_run(c);
        else
            start_send(c);
        if (!(c->flags & (CONN_SENDING | CONN_CLOSING))) {
            if (c->flags & CONN_CLOSE_AFTER_SEND) {
                if (!(c->flags & CONN_LINGER))
                    start_linger(c);
            } else if (c->h->on_drained) {
                c->h->on_drained(c);
            }
        }
    }
    c->ops--;
    maybe_finish(c);
}

static void on_cancel(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct conn *c = container_of(op, struct conn, cancel_op);
    c->flags &= ~CONN_CANCELING;
    c->ops--;
    maybe_finish(c);
}

static void on_pause(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct conn *c = container_of(op, struct conn, pause_op);
    c->ops--;
    maybe_finish(c);
}

void conn_recv_pause(struct conn *c)
{
    if (c->flags & (CONN_RECV_PAUSED | CONN_CLOSING | CONN_LINGER))
        return;
    c->flags |= CONN_RECV_PAUSED;
    if (c->flags & CONN_RECV_ARMED) {
        struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->pause_op);
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&c->recv_op, 0);
        c->ops++;
    }
}

void conn_recv_resume(struct conn *c)
{
    if (!(c->flags & CONN_RECV_PAUSED))
        return;
    c->flags &= ~CONN_RECV_PAUSED;
    /* Still armed: the cancel has not landed yet; on_recv re-arms then. */
    if (!(c->flags & (CONN_RECV_ARMED | CONN_CLOSING | CONN_EOF)))
        arm_recv(c);
}

static void on_timer(struct loop *l, struct timer *t)
{
    struct conn *c = container_of(t, struct conn, timer);
    if (c->flags & CONN_CLOSING)
        return;
    if (c->flags & CONN_LINGER)
        conn_close(c, 0);
    else if (c->h->on_timeout)
        c->h->on_timeout(c);
    else
        conn_close(c, -ETIMEDOUT);
}

void conn_init(struct conn *c, struct loop *l, int fd, const struct conn_handler *h)
{
    memset(c, 0, sizeof(*c));
    c->recv_op.fn = on_recv;
    c->send_op.fn = on_send;
    c->cancel_op.fn = on_cancel;
    c->pause_op.fn = on_pause;
    c->timer.fn = on_timer;
    c->loop = l;
    c->h = h;
    c->fd = fd;
    l->live++;
}

void conn_start(struct conn *c)
{
    if (!(c->flags & (CONN_RECV_ARMED | CONN_CLOSING)))
        arm_recv(c);
}

char *conn_write_reserve(struct conn *c, size_t n)
{
    return buf_reserve(c->loop->pool, &c->out, n);
}

void conn_write_commit(struct conn *c, size_t n)
{
    buf_commit(&c->out, n);
}

int conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->flags & CONN_CLOSING)
        return -EPIPE;
    return buf_append(c->loop->pool, &c->out, p, n) ? -ENOMEM : 0;
}

void conn_flush(struct conn *c)
{
    start_send(c);
    if (!(c->flags & CONN_SENDING) && (c->flags & CONN_CLOSE_AFTER_SEND) &&
        !(c->flags & (CONN_LINGER | CONN_CLOSING)))
        start_linger(c);
}

void conn_close_after_send(struct conn *c)
{
    if (c->flags & (CONN_CLOSING | CONN_CLOSE_AFTER_SEND))
        return;
    c->flags |= CONN_CLOSE_AFTER_SEND;
    conn_flush(c);
}

void conn_close(struct conn *c, int err)
{
    if (c->flags & CONN_CLOSING)
        return;
    c->flags |= CONN_CLOSING | CONN_CANCELING;
    if (!c->err)
        c->err = err;
    loop_timer_cancel(c->loop, &c->timer);
    buf_release(c->loop->pool, &c->in);
    buf_release(c->loop->pool, &c->out);
    /* c->wire may still be read by an in-flight send: it goes in maybe_finish. */
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->cancel_op);
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    c->ops++;
}

void conn_abandon(struct conn *c)
{
    struct loop *l = c->loop;
    loop_timer_cancel(l, &c->timer);
    buf_release(l->pool, &c->in);
    buf_release(l->pool, &c->out);
    buf_release(l->pool, &c->wire);
    if (c->tls)
        tls_free(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        l->live--;
    }
}

void conn_deadline(struct conn *c, uint64_t ms)
{
    if (ms)
        loop_timer_in(c->loop, &c->timer, ms);
    else
        loop_timer_cancel(c->loop, &c->timer);
}
