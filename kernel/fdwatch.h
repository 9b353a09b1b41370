/*
 * fdwatch.h - readiness of a socket the loop does not own (libpq's, say).
 *
 * Libraries that do their own read()/write() only need to be told when to
 * try. Readiness is level-triggered: the callback runs whenever the fd is
 * ready for the watched events, again and again until they change or the
 * watch stops. The watched events can change at any time (libpq wants
 * POLLOUT only while it has unflushed output). The callback may call fd_watch_set or
 * fd_watch_stop; after fd_watch_stop it is not called again, and
 * on_stopped (optional) tells when the struct may be freed.
 */
#ifndef TRIREME_KERNEL_FDWATCH_H
#define TRIREME_KERNEL_FDWATCH_H

#include <poll.h>

#include "kernel/loop.h"

struct fd_watch;
typedef void (*fd_watch_fn)(struct fd_watch *w, unsigned revents);

struct fd_watch {
    struct op poll_op;
    struct op ctl_op;
    struct loop *loop;
    fd_watch_fn fn;
    void (*on_stopped)(struct fd_watch *w);
    void *data;
    int fd;
    unsigned events;
    unsigned ops;
    bool armed;
    bool stopping;
};

void fd_watch_start(struct fd_watch *w, struct loop *l, int fd, unsigned events, fd_watch_fn fn);
void fd_watch_set(struct fd_watch *w, unsigned events);
void fd_watch_stop(struct fd_watch *w);

#endif
