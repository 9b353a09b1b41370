/*
 * listener.c - SO_REUSEPORT listeners with multishot accept.
 */
#include "kernel/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/container_of.h"
#include "kernel/log.h"

static void arm_accept(struct listener *ls)
{
    struct io_uring_sqe *sqe = loop_sqe(ls->loop, &ls->accept_op);
    io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
    ls->armed = true;
    ls->ops++;
}

static void maybe_finish(struct listener *ls)
{
    if (ls->closing && ls->ops == 0 && ls->fd >= 0) {
        close(ls->fd);
        ls->fd = -1;
        ls->loop->live--;
    }
}

static void on_accept(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct listener *ls = container_of(op, struct listener, accept_op);
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (cqe->res >= 0) {
        if (ls->closing)
            close(cqe->res);
        else
            ls->on_accept(ls, cqe->res);
    } else if (cqe->res != -ECANCELED && !ls->closing) {
        /* EMFILE and friends: log and keep listening rather than dying. */
        LOG(LOG_WARN, "accept failed", L_STR("error", strerror(-cqe->res)), L_INT("loop", l->id));
    }
    if (!more) {
        ls->armed = false;
        ls->ops--;
        if (!ls->closing)
            arm_accept(ls);
    }
    maybe_finish(ls);
}

static void on_cancel(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct listener *ls = container_of(op, struct listener, cancel_op);
    ls->ops--;
    maybe_finish(ls);
}

int listener_open(struct listener *ls, struct loop *l, const char *host, int port, int backlog,
                  listener_fn fn, const char **errmsg)
{
    memset(ls, 0, sizeof(*ls));
    ls->fd = -1;
    ls->loop = l;
    ls->on_accept = fn;
    ls->accept_op.fn = on_accept;
    ls->cancel_op.fn = on_cancel;

    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (gai) {
        *errmsg = "resolve host";
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        *errmsg = "socket";
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = -errno;
        close(fd);
        freeaddrinfo(res);
        *errmsg = "bind";
        return e;
    }
    freeaddrinfo(res);
    if (listen(fd, backlog) < 0) {
        int e = -errno;
        close(fd);
        *errmsg = "listen";
        return e;
    }
    ls->fd = fd;
    l->live++;
    arm_accept(ls);
    return 0;
}

void listener_close(struct listener *ls)
{
    if (ls->closing || ls->fd < 0)
        return;
    ls->closing = true;
    struct io_uring_sqe *sqe = loop_sqe(ls->loop, &ls->cancel_op);
    io_uring_prep_cancel(sqe, &ls->accept_op, 0);
    ls->ops++;
}
