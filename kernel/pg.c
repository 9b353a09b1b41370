/*
 * pg.c - libpq on the ring (see pg.h for the contract).
 *
 * Each pipeline connection keeps a FIFO of the queries it sent; results
 * come back in the same order: a query's results, then NULL, then the
 * PIPELINE_SYNC of its own Sync. A query that timed out or was abandoned
 * keeps its FIFO slot (set to NULL) so the order stays right and its late
 * result is dropped.
 *
 * Failures: a connection that breaks fails (or, when retry_safe, re-queues)
 * what it had in flight, logs, and reconnects with exponential backoff and
 * jitter, forever. Queries submitted while no connection is up wait in the
 * pool's queue until one is, or until their own timeout - except
 * fail_fast ones while the pool is known down (pg.h).
 */
#include "kernel/pg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/metrics.h"
#include "kernel/xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum { Q_IDLE, Q_WAITING, Q_SENT, Q_REFUSED, Q_DONE };

static void conn_connect(struct pg_conn *c);
static void pump(struct pg_pool *p);

/* --- in-flight FIFO ------------------------------------------------------
 * Slots in a per-connection ring rather than a list threaded through the
 * queries: a query that timed out may be freed by its owner while its
 * result is still on the way. */

static void sent_push(struct pg_sent *r, struct pg_query *q)
{
    r->v[(r->head + r->n++) % r->cap] = q;
}

static struct pg_query *sent_pop(struct pg_sent *r)
{
    struct pg_query *q = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return q;
}

/* --- completing queries ------------------------------------------------- */

static void finish(struct pg_pool *p, struct pg_query *q, PGresult *res, const char *err)
{
    loop_timer_cancel(p->loop, &q->timer);
    q->state = Q_DONE;
    q->fn(q, res, err);
}

static void on_query_timeout(struct loop *l, struct timer *t)
{
    struct pg_query *q = container_of(t, struct pg_query, timer);
    pg_query_abandon(q->pool, q);
    q->fn(q, NULL, "query timed out");
}

/* A fail_fast query refused while the pool is known down (its own timer
 * carries the refusal to a later loop turn). */
static void on_refused(struct loop *l, struct timer *t)
{
    struct pg_query *q = container_of(t, struct pg_query, timer);
    q->state = Q_DONE;
    q->fn(q, NULL, PG_UNAVAILABLE);
}

/* The pool has just learnt it is down: fail_fast queries stop waiting. */
static void fail_waiting_fast(struct pg_pool *p)
{
    struct list gone;
    list_init(&gone);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &p->queue)
    {
        struct pg_query *q = list_entry(pos, struct pg_query, link);
        if (!q->fail_fast)
            continue;
        list_remove(&q->link);
        p->waiting--;
        list_append(&gone, &q->link);
    }
    /* Callbacks may submit again: they run once the queue is consistent. */
    while (!list_empty(&gone)) {
        struct pg_query *q = list_entry(gone.next, struct pg_query, link);
        list_remove(&q->link);
        finish(p, q, NULL, PG_UNAVAILABLE);
    }
}

enum pg_fault pg_fault_of(PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!st || strlen(st) != 5)
        return PG_FAULT_UNAVAILABLE; /* libpq's own: no server answer */
    /* 22 data exception, 23 integrity constraint violation */
    if (!strncmp(st, "22", 2) || !strncmp(st, "23", 2))
        return PG_FAULT_REJECTED;
    /* 08 connection, 40 rollback (serialization, deadlock), 53 resources,
     * 57 operator intervention (shutdown, cancel), 58 system; 55P03 lock
     * not available; 25006 read-only transaction (a standby after a
     * failover): all pass, the same request may succeed later. */
    static const char *const later[] = {"08", "40", "53", "57", "58"};
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        if (!strncmp(st, later[i], 2))
            return PG_FAULT_UNAVAILABLE;
    if (!strcmp(st, "55P03") || !strcmp(st, "25006"))
        return PG_FAULT_UNAVAILABLE;
    return PG_FAULT_INTERNAL;
}

void pg_query_abandon(struct pg_pool *p, struct pg_query *q)
{
    loop_timer_cancel(p->loop, &q->timer);
    if (q->state == Q_WAITING) {
        list_remove(&q->link);
        p->waiting--;
    } else if (q->state == Q_SENT) {
        for (unsigned i = 0; i < p->nconns; i++) {
            struct pg_sent *r = &p->conns[i].sent;
            for (unsigned k = 0; k < r->n; k++)
                if (r->v[(r->head + k) % r->cap] == q)
                    r->v[(r->head + k) % r->cap] = NULL;
        }
    }
    q->state = Q_DONE;
}

/* --- connection life ---------------------------------------------------- */

static void watch_set(struct pg_conn *c, unsigned events)
{
    if (c->watching)
        fd_watch_set(&c->w, events);
}

static void on_retry(struct loop *l, struct timer *t)
{
    struct pg_conn *c = container_of(t, struct pg_conn, retry);
    if (c->w.stopping) {
        loop_timer_in(l, &c->retry, 10); /* the old watch is still winding down */
        return;
    }
    conn_connect(c);
}

static void conn_fail(struct pg_conn *c, const char *why)
{
    struct pg_pool *p = c->pool;
    bool was_ready = c->state == PG_READY;
    const char *msg = c->pq ? PQerrorMessage(c->pq) : "";
    char detail[256];
    snprintf(detail, sizeof(detail), "%s", msg && *msg ? msg : why);
    for (char *d = detail; *d; d++)
        if (*d == '\n' || *d == '\t')
            *d = ' '; /* libpq's messages are multi-line; a log line is one */
    size_t dl = strlen(detail);
    while (dl && detail[dl - 1] == ' ')
        detail[--dl] = 0;
    if (c->watching) {
        fd_watch_stop(&c->w);
        c->watching = false;
    }
    if (c->pq) {
        PQfinish(c->pq);
        c->pq = NULL;
    }
    c->state = PG_DOWN;
    metrics_count(p->loop->metrics, was_ready ? MC_PG_DISCONNECTS : MC_PG_CONNECT_FAILURES);
    if (was_ready)
        metrics_gauge_add(p->loop->metrics, MG_PG_UP, -1);
    c->sync_next = false;
    c->listen_pending = false;
    if (was_ready && !c->listen) {
        p->ready--;
        if (p->ready == 0 && p->on_state)
            p->on_state(p, false);
    }
    /* Hand back what was in flight: the safe ones are re-sent ahead of
     * newer work, in their original order; the rest fail. They gather on a
     * list of their own first: the callbacks of those that fail may submit,
     * abandon or close. */
    if (!c->listen) {
        struct pg_sent *r = &c->sent;
        struct list again;
        list_init(&again);
        while (r->n) {
            struct pg_query *q = sent_pop(r);
            if (!q)
                continue;
            if (q->retry_safe) {
                q->state = Q_WAITING;
                list_append(&again, &q->link);
                p->waiting++;
            } else {
                finish(p, q, NULL, "database connection lost");
            }
        }
        struct list *at = &p->queue;
        while (!list_empty(&again)) {
            struct pg_query *q = list_entry(again.next, struct pg_query, link);
            list_remove(&q->link);
            if (p->closing) {
                p->waiting--;
                finish(p, q, NULL, "database connection lost");
                continue;
            }
            list_insert(at, &q->link);
            at = &q->link;
        }
    }
    if (p->closing)
        return;
    if (!was_ready && !c->listen && p->on_connect_error)
        p->on_connect_error(p, detail);
    if (!c->listen && !was_ready && p->ready == 0 && !p->down) {
        p->down = true;
        fail_waiting_fast(p);
    }
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay = c->backoff_ms / 2 + loop_random(p->loop) % (c->backoff_ms / 2 + 1);
    LOG(was_ready ? LOG_WARN : LOG_INFO,
        was_ready ? "database connection lost, reconnecting" : "database connection failed",
        L_STR("error", detail), L_INT("retry_in_ms", delay), L_BOOL("listen", c->listen),
        L_INT("loop", p->loop->id));
    loop_timer_in(p->loop, &c->retry, delay);
}

static void send_listens(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    c->listen_pending = true;
    char sql[1024];
    size_t n = 0;
    for (struct pg_listener *l = p->listeners; l; l = l->next)
        n += (size_t)snprintf(sql + n, n < sizeof(sql) ? sizeof(sql) - n : 0, "LISTEN \"%s\";",
                              l->channel);
    if (!n || n >= sizeof(sql))
        return;
    if (!PQsendQuery(c->pq, sql))
        conn_fail(c, "LISTEN failed");
    else if (PQflush(c->pq) == 1)
        watch_set(c, POLLIN | POLLOUT);
}

static void became_ready(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    PQsetnonblocking(c->pq, 1);
    c->state = PG_READY;
    metrics_count(p->loop->metrics, MC_PG_CONNECTS);
    metrics_gauge_add(p->loop->metrics, MG_PG_UP, 1);
    c->backoff_ms = 0;
    watch_set(c, POLLIN);
    if (c->listen) {
        LOG(LOG_INFO, "database LISTEN connection up", L_INT("loop", p->loop->id));
        /* Listeners hear "subscribed" (payload NULL) once the LISTEN has
         * executed, not when it was sent: anything sent after that call is
         * sure to be heard. (See on_ready_fd.) */
        send_listens(c);
        return;
    }
    if (!PQenterPipelineMode(c->pq)) {
        conn_fail(c, "cannot enter pipeline mode");
        return;
    }
    p->down = false;
    if (p->ready++ == 0) {
        LOG(LOG_INFO, "database connected",
            L_STR("server_version", PQparameterStatus(c->pq, "server_version")),
            L_INT("loop", p->loop->id));
        if (p->on_state)
            p->on_state(p, true);
    }
    pump(p);
}

static void drain_results(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    struct pg_sent *r = &c->sent;
    while ((r->n || c->sync_next) && c->pq && !PQisBusy(c->pq)) {
        PGresult *res = PQgetResult(c->pq);
        if (c->sync_next) {
            if (!res)
                break;
            ExecStatusType st = PQresultStatus(res);
            PQclear(res);
            if (st == PGRES_PIPELINE_SYNC)
                c->sync_next = false;
            continue;
        }
        if (res) {
            if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
                PQclear(res);
                continue;
            }
            struct pg_query *q = r->v[r->head];
            if (q) {
                if (q->last)
                    PQclear(q->last);
                q->last = res;
            } else {
                PQclear(res); /* abandoned: nobody waits for it */
            }
            continue;
        }
        /* NULL: the head query's results are complete; its Sync comes next. */
        struct pg_query *q = sent_pop(r);
        c->sync_next = true;
        if (!q)
            continue;
        PGresult *last = q->last;
        q->last = NULL;
        ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            finish(p, q, last, NULL);
        } else {
            const char *e = last ? PQresultErrorMessage(last) : "no result";
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", *e ? e : PQresStatus(st));
            size_t ml = strlen(msg);
            while (ml && msg[ml - 1] == '\n')
                msg[--ml] = 0;
            finish(p, q, last, msg);
        }
        if (last)
            PQclear(last);
    }
}

static void on_ready_fd(struct fd_watch *w, unsigned revents)
{
    struct pg_conn *c = w->data;
    if (c->state == PG_CONNECTING) {
        PostgresPollingStatusType st = PQconnectPoll(c->pq);
        if (st == PGRES_POLLING_FAILED) {
            conn_fail(c, "connect failed");
            return;
        }
        if (PQsocket(c->pq) != c->fd) {
            /* libpq moved to another socket (next host, SSL fallback):
             * start over on a fresh watch rather than juggling two. */
            conn_fail(c, "connection restarted on another socket");
            return;
        }
        if (st == PGRES_POLLING_OK)
            became_ready(c);
        else
            watch_set(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT);
        return;
    }
    if (c->state != PG_READY)
        return;
    if (revents & POLLOUT) {
        int f = PQflush(c->pq);
        if (f < 0) {
            conn_fail(c, "write failed");
            return;
        }
        watch_set(c, f ? POLLIN | POLLOUT : POLLIN);
    }
    if (revents & (POLLIN | POLLERR | POLLHUP)) {
        if (!PQconsumeInput(c->pq)) {
            conn_fail(c, "read failed");
            return;
        }
        if (c->listen) {
            PGresult *res;
            while (!PQisBusy(c->pq) && (res = PQgetResult(c->pq)))
                PQclear(res);
            if (c->listen_pending && !PQisBusy(c->pq)) {
                /* The LISTEN ran. Notifications may have been missed while
                 * we were down: tell listeners, who re-check their state. */
                c->listen_pending = false;
                for (struct pg_listener *l = c->pool->listeners; l; l = l->next)
                    l->fn(l, l->channel, NULL);
            }
            PGnotify *n;
            while ((n = PQnotifies(c->pq))) {
                for (struct pg_listener *l = c->pool->listeners; l; l = l->next)
                    if (!strcmp(l->channel, n->relname))
                        l->fn(l, n->relname, n->extra ? n->extra : "");
                PQfreemem(n);
            }
        } else {
            drain_results(c);
            pump(c->pool);
        }
        if (c->pq && PQstatus(c->pq) == CONNECTION_BAD)
            conn_fail(c, "connection closed");
    }
}

/* libpq prints server notices (and FATAL lines of a dying session) to
 * stderr by itself; route them into our log so every line keeps its format. */
static void on_notice(void *arg, const char *message)
{
    struct pg_conn *c = arg;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", message);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t n = strlen(msg);
    while (n && msg[n - 1] == ' ')
        msg[--n] = 0;
    LOG(LOG_WARN, "database notice", L_STR("message", msg), L_BOOL("listen", c->listen),
        L_INT("loop", c->pool->loop->id));
}

static void conn_connect(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    const char *info = c->listen ? p->listen_conninfo : p->conninfo;
    if (p->options && !c->listen) {
        /* expand_dbname: the conninfo (URI or key=value) is parsed as usual
         * and `options` is added on top of it. */
        const char *const keys[] = {"dbname", "options", NULL};
        const char *const vals[] = {info, p->options, NULL};
        c->pq = PQconnectStartParams(keys, vals, 1);
    } else {
        c->pq = PQconnectStart(info);
    }
    if (!c->pq || PQstatus(c->pq) == CONNECTION_BAD) {
        conn_fail(c, "invalid connection string or out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pq, on_notice, c);
    c->fd = PQsocket(c->pq);
    if (c->fd < 0) {
        conn_fail(c, "no socket");
        return;
    }
    c->state = PG_CONNECTING;
    c->w.data = c;
    /* libpq: behave as if PQconnectPoll had asked to wait for writability. */
    fd_watch_start(&c->w, p->loop, c->fd, POLLOUT, on_ready_fd);
    c->watching = true;
}

/* --- sending ------------------------------------------------------------ */

static struct pg_conn *pick(struct pg_pool *p)
{
    struct pg_conn *best = NULL;
    for (unsigned i = 0; i < p->nconns; i++) {
        struct pg_conn *c = &p->conns[i];
        if (c->state != PG_READY || c->sent.n >= c->sent.cap)
            continue;
        if (!best || c->sent.n < best->sent.n)
            best = c;
    }
    return best;
}

static void pump(struct pg_pool *p)
{
    struct pg_conn *flush[64];
    unsigned nflush = 0;
    while (!list_empty(&p->queue)) {
        struct pg_conn *c = pick(p);
        if (!c)
            break;
        struct pg_query *q = list_entry(p->queue.next, struct pg_query, link);
        list_remove(&q->link);
        p->waiting--;
        if (!PQsendQueryParams(c->pq, q->sql, q->nparams, NULL, q->values, q->lengths, q->formats,
                               q->result_format) ||
            !PQpipelineSync(c->pq)) {
            /* Put it back first, so conn_fail hands it on with the rest. */
            q->state = Q_SENT;
            sent_push(&c->sent, q);
            conn_fail(c, "send failed");
            continue;
        }
        q->state = Q_SENT;
        sent_push(&c->sent, q);
        unsigned k;
        for (k = 0; k < nflush && flush[k] != c; k++)
            ;
        if (k == nflush && nflush < 64)
            flush[nflush++] = c;
    }
    for (unsigned k = 0; k < nflush; k++) {
        struct pg_conn *c = flush[k];
        if (c->state != PG_READY)
            continue;
        int f = PQflush(c->pq);
        if (f < 0)
            conn_fail(c, "write failed");
        else
            watch_set(c, f ? POLLIN | POLLOUT : POLLIN);
    }
}

void pg_query_submit(struct pg_pool *p, struct pg_query *q)
{
    q->state = Q_WAITING;
    q->last = NULL;
    q->pool = p;
    if (p->closing) {
        q->state = Q_DONE;
        q->fn(q, NULL, "database pool is closing");
        return;
    }
    if (q->fail_fast && pg_pool_down(p)) {
        q->state = Q_REFUSED;
        q->timer.fn = on_refused;
        loop_timer_in(p->loop, &q->timer, 0);
        return;
    }
    if (q->timeout_ms) {
        q->timer.fn = on_query_timeout;
        loop_timer_in(p->loop, &q->timer, q->timeout_ms);
    }
    list_append(&p->queue, &q->link);
    p->waiting++;
    pump(p);
}

void pg_listen(struct pg_pool *p, struct pg_listener *l)
{
    l->next = p->listeners;
    p->listeners = l;
    if (p->listen.state == PG_READY)
        send_listens(&p->listen);
}

/* --- pool ----------------------------------------------------------------- */

static void conn_setup(struct pg_conn *c, struct pg_pool *p, unsigned cap, bool listen)
{
    memset(c, 0, sizeof(*c));
    c->pool = p;
    c->listen = listen;
    c->fd = -1;
    c->retry.fn = on_retry;
    c->sent.cap = cap;
    c->sent.v = xcalloc(cap, sizeof(*c->sent.v));
}

int pg_pool_init(struct pg_pool *p, struct loop *l, const struct pg_pool_config *cfg)
{
    memset(p, 0, sizeof(*p));
    list_init(&p->queue);
    const char *why;
    int ret = pq_load(&why);
    if (ret < 0) {
        LOG(LOG_ERROR, "database support unavailable", L_STR("error", why));
        return ret;
    }
    p->loop = l;
    p->conninfo = cfg->conninfo;
    p->listen_conninfo = cfg->listen_conninfo;
    p->options = cfg->options;
    p->nconns = cfg->size ? cfg->size : 1;
    p->max_inflight = cfg->max_inflight ? cfg->max_inflight : 64;
    p->on_connect_error = cfg->on_connect_error;
    p->conns = xcalloc(p->nconns, sizeof(*p->conns));
    for (unsigned i = 0; i < p->nconns; i++)
        conn_setup(&p->conns[i], p, p->max_inflight, false);
    conn_setup(&p->listen, p, 1, true);
    for (unsigned i = 0; i < p->nconns; i++)
        conn_connect(&p->conns[i]);
    if (p->listen_conninfo)
        conn_connect(&p->listen);
    return 0;
}

void pg_pool_close(struct pg_pool *p)
{
    if (p->closing)
        return;
    p->closing = true;
    while (!list_empty(&p->queue)) {
        struct pg_query *q = list_entry(p->queue.next, struct pg_query, link);
        list_remove(&q->link);
        p->waiting--;
        finish(p, q, NULL, "database pool is closing");
    }
    for (unsigned i = 0; i <= p->nconns; i++) {
        struct pg_conn *c = i < p->nconns ? &p->conns[i] : &p->listen;
        loop_timer_cancel(p->loop, &c->retry);
        if (c->state != PG_DOWN || c->pq)
            conn_fail(c, "closing");
    }
}

void pg_pool_free(struct pg_pool *p)
{
    /* After a forced exit (grace over) connections may still be open. */
    for (unsigned i = 0; i <= p->nconns && p->conns; i++) {
        struct pg_conn *c = i < p->nconns ? &p->conns[i] : &p->listen;
        if (c->pq) {
            PQfinish(c->pq);
            c->pq = NULL;
        }
    }
    for (unsigned i = 0; i < p->nconns; i++)
        free(p->conns[i].sent.v);
    free(p->listen.sent.v);
    free(p->conns);
    memset(p, 0, sizeof(*p));
}
