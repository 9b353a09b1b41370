/*
 * tcp_connect.c - outbound connects on the ring (see tcp_connect.h).
 *
 * The connect and its linked timeout each post a completion; the callback
 * runs after both, so nothing of this struct is in the kernel's hands when
 * the owner frees or reuses it.
 */
#include "kernel/tcp_connect.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernel/container_of.h"

static void done_one(struct tcp_connect *tc)
{
    if (--tc->pending)
        return;
    int res = tc->res;
    if (res == -ECANCELED && tc->timed_out)
        res = -ETIMEDOUT;
    if (res < 0) {
        close(tc->fd);
        tc->fd = -1;
        tc->fn(tc, res);
        return;
    }
    int one = 1;
    setsockopt(tc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fd = tc->fd;
    tc->fd = -1;
    tc->fn(tc, fd);
}

static void on_connect(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct tcp_connect *tc = container_of(op, struct tcp_connect, connect_op);
    tc->res = cqe->res;
    done_one(tc);
}

static void on_timeout(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct tcp_connect *tc = container_of(op, struct tcp_connect, timeout_op);
    if (cqe->res == -ETIME)
        tc->timed_out = true;
    done_one(tc);
}

void tcp_connect_start(struct tcp_connect *tc, struct loop *l, const struct sockaddr *addr,
                       socklen_t len, uint64_t timeout_ms, tcp_connect_fn fn)
{
    tc->connect_op.fn = on_connect;
    tc->timeout_op.fn = on_timeout;
    tc->loop = l;
    tc->fn = fn;
    tc->timed_out = false;
    memcpy(&tc->addr, addr, len);
    tc->addrlen = len;
    tc->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (tc->fd < 0) {
        /* Still asynchronous for the caller: report from a completion. */
        tc->res = -errno;
        tc->pending = 1;
        struct io_uring_sqe *sqe = loop_sqe(l, &tc->timeout_op);
        io_uring_prep_nop(sqe);
        return;
    }
    tc->pending = 2;
    /* A link must not be split across two submissions. */
    if (io_uring_sq_space_left(&l->ring) < 2)
        io_uring_submit(&l->ring);
    struct io_uring_sqe *sqe = loop_sqe(l, &tc->connect_op);
    io_uring_prep_connect(sqe, tc->fd, (struct sockaddr *)&tc->addr, tc->addrlen);
    sqe->flags |= IOSQE_IO_LINK;
    tc->ts.tv_sec = (long long)(timeout_ms / 1000);
    tc->ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    sqe = loop_sqe(l, &tc->timeout_op);
    io_uring_prep_link_timeout(sqe, &tc->ts, 0);
}

int tcp_resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *len)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int ret = getaddrinfo(host, ps, &hints, &res);
    if (ret == EAI_SYSTEM)
        return errno ? -errno : -EIO;
    if (ret == EAI_AGAIN)
        return -EAGAIN;
    if (ret == EAI_MEMORY)
        return -ENOMEM;
    if (ret)
        return -EHOSTUNREACH; /* no such host, or no address of a usable family */
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
