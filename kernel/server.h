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

struct tls_store;

struct server {
    const struct config *cfg;
    int nloops;
    pthread_barrier_t barrier; /* all loops set up before any serves */
    struct loop *loops;
    pthread_t *threads;
    uint64_t started_mono_ns;
    char roles[128];       /* "web,worker" */
    void *module_state[8]; /* process-wide, set by init hooks, read-only after */
    struct tls_store *tls; /* anchors, server chain and key; loaded before any loop runs */

    atomic_bool draining;
    atomic_bool force;   /* grace period over: leave now */
    atomic_uint clients; /* accepted connections still open (server_client_admit) */
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

/* A listener accepted a client connection: count it, unless the process
 * already holds --max-connections of them (then false: refuse it). Every
 * admitted connection is handed back with server_client_gone() once. */
static inline bool server_client_admit(struct server *s)
{
    if (atomic_fetch_add(&s->clients, 1) < s->cfg->max_connections)
        return true;
    atomic_fetch_sub(&s->clients, 1);
    return false;
}

static inline void server_client_gone(struct server *s)
{
    atomic_fetch_sub(&s->clients, 1);
}

/* Run until drained. Returns the process exit code. */
int server_run(const struct config *cfg);

static inline uint64_t server_uptime_s(const struct server *s, const struct loop *l)
{
    return (l->now_ns - s->started_mono_ns) / 1000000000ull;
}

#endif
