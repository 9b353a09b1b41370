/*
 * server.h - the process: one loop per thread, signals, graceful drain.
 *
 * Thread 0 runs on the main thread and also owns the signalfd and the
 * grace timer. A first SIGTERM/SIGINT sets `draining` and wakes every loop;
 * each loop runs its modules' stop hooks and leaves once nothing on it is
 * live. When the grace period ends first, loops are told to leave at once.
 * A second signal exits the process immediately.
 */
#ifndef TRIREME_KERNEL_SERVER_H
#define TRIREME_KERNEL_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernel/config.h"
#include "kernel/loop.h"
#include "kernel/timer.h"

struct server {
    const struct config *cfg;
    int nloops;
    pthread_barrier_t barrier; /* all loops set up before any serves */
    struct loop *loops;
    pthread_t *threads;
    uint64_t started_mono_ns;
    char roles[128]; /* "web,worker" */
    void *module_state[8]; /* process-wide, set by init hooks, read-only after */

    atomic_bool draining;
    atomic_bool force; /* grace period over: leave now */
    atomic_uint conns; /* open HTTP connections, for --max-connections */
    atomic_int loops_done;
    atomic_int start_failed;
    atomic_int started;

    /* loop 0 only */
    int signal_fd;
    struct op signal_op;
    uint8_t siginfo[128];
    struct timer grace_timer;
    int signals_seen;
    int threads_joined_live;
};

/* Run until drained. Returns the process exit code. */
int server_run(const struct config *cfg);

static inline uint64_t server_uptime_s(const struct server *s, const struct loop *l)
{
    return (l->now_ns - s->started_mono_ns) / 1000000000ull;
}

#endif
