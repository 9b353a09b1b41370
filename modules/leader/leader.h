/*
 * leader.h - leader election, shared by roles that must act on one
 * instance only: the worker in --worker-mode=leader (election "worker")
 * and beat (election "beat"). Each election is independent: its own Redis
 * keys or advisory lock, its own row and fencing token in trireme.leaders,
 * so the worker's leader and beat's leader may be different instances.
 *
 * Elections run on loop 0; every loop reads the outcome through these
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

enum { ELECTION_WORKER = 0, ELECTION_BEAT, ELECTION_COUNT };

struct leader_shared {
    atomic_bool leader;
    atomic_llong token; /* of our current term; 0 when not leader */
    atomic_ullong since_unix_ms;
    atomic_int workers_running; /* loops of the role not yet drained */
    char holder[128];           /* this instance's id, constant */
    const char *backend;        /* "redis" or "postgres" */
};

/* Election `which` (ELECTION_*); NULL when this process does not run it. */
struct leader_shared *leader_election_of(struct server *s, int which);
bool leader_election_is(struct server *s, int which);
long long leader_election_token(struct server *s, int which);
/* A loop of the role finished draining: once all have, leadership is
 * released at once (a standby takes over without waiting for the lease). */
void leader_drained(struct server *s, int which);

#endif
