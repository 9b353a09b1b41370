/*
 * tcp_connect.h - an outbound TCP connection made on the ring, with a
 * deadline (IORING_OP_CONNECT linked to IORING_OP_LINK_TIMEOUT).
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_TCP_CONNECT_H
#define TRIREME_KERNEL_TCP_CONNECT_H

#include <sys/socket.h>

#include "kernel/loop.h"

struct tcp_connect;
/* fd >= 0: connected, the callee owns it. Otherwise -errno (-ETIMEDOUT). */
typedef void (*tcp_connect_fn)(struct tcp_connect *tc, int fd);

struct tcp_connect {
    struct op connect_op;
    struct op timeout_op;
    struct __kernel_timespec ts;
    struct loop *loop;
    tcp_connect_fn fn;
    void *data;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    int res;
    int pending; /* CQEs still to come; fn runs when both arrived */
    bool timed_out;
};

/* Start connecting; fn runs exactly once, never before this returns. */
void tcp_connect_start(struct tcp_connect *tc, struct loop *l, const struct sockaddr *addr,
                       socklen_t len, uint64_t timeout_ms, tcp_connect_fn fn);

/* Resolve host:port once (getaddrinfo; blocking: call at start-up, not on
 * a running loop). 0, -EHOSTUNREACH (no such host), -EAGAIN (try later),
 * or another negative errno. */
int tcp_resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *len);

#endif
