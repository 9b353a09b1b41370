/*
 * leader.h - leader election, shared by roles that must act on one
 * instance only (the worker in --worker-mode=leader; beat later).
 *
 * The election runs on loop 0; every loop reads the outcome through these
 * atomics and is woken (module wake hook) when it changes. Each
 * acquisition gets a fencing token, recorded in trireme.leaders before the
 * new leader acts, so work done under an older token refuses to commit.
 */
#ifndef TRIREME_MODULES_LEADER_H
#define TRIREME_MODULES_LEADER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct server;

struct leader_shared {
    atomic_bool leader;
    atomic_llong token;        /* of our current term; 0 when not leader */
    atomic_ullong since_unix_ms;
    atomic_int workers_running; /* worker loops not yet drained */
    char holder[128];          /* this instance's id, constant */
    const char *backend;       /* "redis" or "postgres" */
};

/* NULL when no election runs in this process. */
struct leader_shared *leader_of(struct server *s);
bool leader_is(struct server *s);
long long leader_token(struct server *s);
/* A worker loop finished draining: once all have, leadership is released
 * at once (a standby takes over without waiting for the lease to expire). */
void leader_worker_drained(struct server *s);

#endif
