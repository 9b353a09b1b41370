/*
 * listener.h - a listening TCP socket with multishot accept on the ring.
 *
 * Each loop opens its own listener on the same address with SO_REUSEPORT,
 * so the kernel spreads connections across threads and nothing is shared.
 */
#ifndef TRIREME_KERNEL_LISTENER_H
#define TRIREME_KERNEL_LISTENER_H

#include "kernel/loop.h"

struct listener;
typedef void (*listener_fn)(struct listener *ls, int fd);

struct listener {
    struct op accept_op;
    struct op cancel_op;
    struct loop *loop;
    listener_fn on_accept;
    void *data;
    int fd;
    unsigned ops;
    bool armed;
    bool closing;
};

/* Bind host:port (IPv4 or IPv6 literal, or a name resolved once at
 * start-up). Returns 0 or -errno; *errmsg names the failing step. */
int listener_open(struct listener *ls, struct loop *l, const char *host, int port, int backlog,
                  listener_fn fn, const char **errmsg);
/* Stop accepting: cancel the accept and close the socket. */
void listener_close(struct listener *ls);

#endif
