/*
 * kind_exec_pipes.c - an exec program's descriptors on the ring; see
 * kind_exec_pipes.h.
 */
#include "modules/kinds/kind_exec_pipes.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

void exec_pipes_init(struct exec_pipes *ps, struct loop *l, fd_watch_fn on_ready,
                     void (*on_idle)(struct exec_pipes *ps))
{
    ps->loop = l;
    ps->on_ready = on_ready;
    ps->on_idle = on_idle;
    for (int i = 0; i < EXEC_PIPES_MAX; i++) {
        ps->fd[i] = -1;
        ps->watched[i] = false;
    }
    ps->watching = 0;
}

static void on_stopped(struct fd_watch *w)
{
    struct exec_pipes *ps = w->data;
    int i = (int)(w - ps->w);
    close(ps->fd[i]);
    ps->fd[i] = -1;
    if (!--ps->watching)
        ps->on_idle(ps);
}

void exec_pipes_watch(struct exec_pipes *ps, int i, unsigned events)
{
    ps->w[i].data = ps;
    ps->w[i].on_stopped = on_stopped;
    ps->watched[i] = true;
    ps->watching++;
    fd_watch_start(&ps->w[i], ps->loop, ps->fd[i], events, ps->on_ready);
}

void exec_pipes_unwatch(struct exec_pipes *ps, int i)
{
    if (ps->watched[i]) {
        ps->watched[i] = false; /* a stopped watch stopped again would close fd[i] twice */
        fd_watch_stop(&ps->w[i]);
    } else if (ps->fd[i] >= 0) {
        close(ps->fd[i]);
        ps->fd[i] = -1;
    }
}

bool exec_pipes_read(struct exec_pipes *ps, int i,
                     void (*took)(struct exec_pipes *ps, int i, const char *b, size_t n))
{
    char b[16384];
    for (;;) {
        ssize_t n = read(ps->fd[i], b, sizeof(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        took(ps, i, b, (size_t)n);
    }
}

bool exec_pipes_write(struct exec_pipes *ps, int i, const char *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = write(ps->fd[i], buf + *off, len - *off);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (ps->watched[i])
                fd_watch_set(&ps->w[i], POLLOUT);
            else
                exec_pipes_watch(ps, i, POLLOUT);
            return false;
        }
        break; /* EPIPE */
    }
    return true;
}
