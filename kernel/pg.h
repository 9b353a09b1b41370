/*
 * pg.h - PostgreSQL on the ring: a per-loop pool of libpq connections in
 * non-blocking pipeline mode, plus LISTEN/NOTIFY.
 *
 * Nothing here blocks the loop: connections are opened with
 * PQconnectStart/PQconnectPoll, and every socket is watched through the
 * kernel's fd_watch. Each query is sent with its own Sync, so it is its own
 * implicit transaction and one failing query never aborts its neighbours,
 * yet many queries are in flight on one connection at once.
 *
 * Connection state is known: a pool is up while one of its connections is
 * ready, and known down once a connection attempt failed with none ready
 * (unknown before the first attempt ends). A query marked fail_fast does
 * not wait for a connection while the pool is known down: it fails with
 * PG_UNAVAILABLE (in a later loop turn, never inside pg_query_submit), and
 * so do fail_fast queries already waiting when the pool learns it is down.
 *
 * Queries are caller-owned structs (no allocation per query here). The
 * parameter arrays and the SQL text MUST stay valid until the callback.
 * Only parameterized statements are sent (PQsendQueryParams, unnamed
 * statements), which also keeps a transaction-mode pooler (PgBouncer)
 * working: no session state lives on pooled connections.
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_PG_H
#define TRIREME_KERNEL_PG_H

#include "kernel/pq.h"
#include <stdbool.h>
#include <stdint.h>

#include "kernel/fdwatch.h"
#include "kernel/list.h"
#include "kernel/loop.h"
#include "kernel/timer.h"

struct pg_query;
struct pg_pool;

/* res: the query's last result, valid only during the call (NULL on error).
 * err: NULL on success, else a message (server error text, "timeout",
 * "connection lost", ...). */
typedef void (*pg_query_fn)(struct pg_query *q, PGresult *res, const char *err);

#define PG_MAX_PARAMS 32

struct pg_query {
    pg_query_fn fn;
    void *data;
    const char *sql;
    int nparams;
    const char *const *values;
    const int *lengths; /* NULL: text params */
    const int *formats;
    int result_format;   /* 0 text, 1 binary */
    uint64_t timeout_ms; /* 0: none */
    bool retry_safe;     /* may be re-sent after a reconnect (idempotent) */
    bool fail_fast;      /* fail at once while the pool is known down */
    /* internal */
    struct pg_pool *pool;
    struct list link; /* on the pool's waiting list */
    struct timer timer;
    PGresult *last;
    uint8_t state;
};

/* Sent queries awaiting results, in order; NULL slots were abandoned. */
struct pg_sent {
    struct pg_query **v;
    unsigned cap, head, n;
};

enum pg_conn_state { PG_DOWN, PG_CONNECTING, PG_READY };

struct pg_conn {
    struct fd_watch w;
    struct timer retry;
    struct pg_pool *pool;
    PGconn *pq;
    struct pg_sent sent;
    unsigned backoff_ms;
    uint8_t state;
    bool listen; /* the LISTEN connection: simple mode, no pipeline */
    bool watching;
    bool sync_next;      /* pipeline connection: the next result is a PIPELINE_SYNC */
    bool listen_pending; /* LISTEN connection: a LISTEN was sent, not yet answered */
    int fd;
};

struct pg_listener {
    struct pg_listener *next;
    const char *channel;
    void (*fn)(struct pg_listener *l, const char *channel, const char *payload);
    void *data;
};

struct pg_pool {
    struct loop *loop;
    const char *conninfo;
    const char *options;         /* libpq `options` (e.g. "-c synchronous_commit=off"), or NULL */
    const char *listen_conninfo; /* NULL: no LISTEN connection */
    struct pg_conn *conns;
    unsigned nconns;
    unsigned max_inflight; /* per connection */
    struct list queue;     /* not yet sent, in order */
    unsigned waiting;      /* on queue */
    struct pg_conn listen;
    struct pg_listener *listeners;
    bool closing;
    void (*on_state)(struct pg_pool *p, bool up); /* optional: first conn up / all down */
    void (*on_connect_error)(struct pg_pool *p, const char *why); /* see pg_pool_config */
    void *data;
    unsigned ready;
    bool down; /* a connection attempt failed and none is ready */
};

struct pg_pool_config {
    const char *conninfo;        /* URI or key=value (DATABASE_URL) */
    const char *listen_conninfo; /* direct URL for LISTEN, or NULL */
    const char *options;         /* server settings for the pool's sessions, or NULL */
    unsigned size;
    unsigned max_inflight;
    /* Optional: an attempt to connect failed (why: libpq's reason, one
     * line), perhaps before pg_pool_init returns; the pool tries again
     * after a backoff, as always. */
    void (*on_connect_error)(struct pg_pool *p, const char *why);
};

/* 0, or pq_load's -errno when libpq cannot be loaded (logged). */
int pg_pool_init(struct pg_pool *p, struct loop *l, const struct pg_pool_config *cfg);
/* Fail everything queued and in flight, close every connection. The socket
 * watches wind down asynchronously: call pg_pool_free once the loop ended. */
void pg_pool_close(struct pg_pool *p);
void pg_pool_free(struct pg_pool *p);
/* Queue q; its callback runs exactly once. */
void pg_query_submit(struct pg_pool *p, struct pg_query *q);
/* Forget q: its callback will not run (a result still on its way is dropped). */
void pg_query_abandon(struct pg_pool *p, struct pg_query *q);
/* Subscribe (LISTEN is sent now or when the connection comes up). */
void pg_listen(struct pg_pool *p, struct pg_listener *l);

/* The error of a fail_fast query refused while the pool is known down. */
#define PG_UNAVAILABLE "database unavailable"

static inline bool pg_pool_up(const struct pg_pool *p)
{
    return p->ready > 0;
}

static inline bool pg_pool_down(const struct pg_pool *p)
{
    return p->down && !p->ready;
}

/* What a failed query's error means for whoever asked for it. */
enum pg_fault {
    PG_FAULT_UNAVAILABLE, /* no answer (connection, timeout) or the server cannot serve now */
    PG_FAULT_REJECTED,    /* the server refused the values (data or integrity error) */
    PG_FAULT_INTERNAL,    /* anything else: a statement or schema problem */
};
/* res: the result a failed query's callback got (NULL: no server answer). */
enum pg_fault pg_fault_of(PGresult *res);

/* Conveniences for callbacks. */
static inline const char *pg_value(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

#endif
