/*
 * kind_exec_pipes.h - the descriptors of one exec program (its pidfd and
 * pipes) watched on the ring, shared by one-shot and pool mode.
 *
 * A watched descriptor is closed only once its watch has stopped: a poll
 * still in flight on the ring must not meet a closed (or reused) fd. The
 * watches live in the owner's struct, so the owner may reuse it (another
 * attempt, a restarted process) only once on_idle says the last watch has
 * stopped; until then each watch keeps the loop alive.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_PIPES_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_PIPES_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel/fdwatch.h"

/* One-shot mode's pidfd, stdin, stdout, stderr and progress; pool mode
 * uses the first four. */
#define EXEC_PIPES_MAX 5

struct exec_pipes {
    struct loop *loop;
    fd_watch_fn on_ready; /* the owner's; a watch's data is this struct */
    void (*on_idle)(struct exec_pipes *ps);
    struct fd_watch w[EXEC_PIPES_MAX];
    int fd[EXEC_PIPES_MAX]; /* -1 once closed */
    bool watched[EXEC_PIPES_MAX];
    unsigned watching; /* watches started and not yet stopped */
};

/* No descriptor, no watch. Only while nothing is watched. */
void exec_pipes_init(struct exec_pipes *ps, struct loop *l, fd_watch_fn on_ready,
                     void (*on_idle)(struct exec_pipes *ps));
/* Watch fd[i] for events; on_ready is told when it is ready. */
void exec_pipes_watch(struct exec_pipes *ps, int i, unsigned events);
/* Done with fd[i]: it is closed at once if unwatched, else once its watch
 * has stopped, which may be before this returns (on_idle included). */
void exec_pipes_unwatch(struct exec_pipes *ps, int i);
/* Read fd[i] until it would block, each piece to took(ps, i, b, n).
 * false at end of file or on an error. */
bool exec_pipes_read(struct exec_pipes *ps, int i,
                     void (*took)(struct exec_pipes *ps, int i, const char *b, size_t n));
/* Write buf[*off, len) to fd[i] without blocking, moving *off. true: done
 * (all written, or the program closed its end, which is its business);
 * false: the pipe is full, and fd[i] is now watched for POLLOUT. */
bool exec_pipes_write(struct exec_pipes *ps, int i, const char *buf, size_t len, size_t *off);

#endif
