/*
 * pg_worker.c - the worker part of the PostgreSQL queue backend: claim,
 * heartbeat, reap, write outcomes, hand back.
 *
 * Per loop: a PostgreSQL pool (commits with synchronous_commit=off: losing
 * a state transition in a crash only re-runs a job, which at-least-once
 * allows) and its LISTEN connection.
 *
 * Claiming: a batch is claimed when slots free up and jobs are known to
 * wait (the last claim came back full), on NOTIFY trireme_jobs, when the
 * next delayed job falls due, and on a fallback poll. Every write is fenced
 * by worker id and attempt (pg_worker_sql.h), so a worker whose lease was
 * taken over never overwrites the rerun. Outcomes go out in one UPDATE per
 * verdict, one such UPDATE in flight at a time: those that finish while it
 * is out wait for its answer and go together in the next (jobs that end a
 * few at a time, as HTTP deliveries do, cost one statement per round trip,
 * not one per loop turn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/pg_array.h"
#include "kernel/xalloc.h"
#include "modules/jobs/retention.h"
#include "modules/queue/pg_worker_sql.h"
#include "modules/worker/core.h"

#define DUE_RECHECK_MIN_MS 50 /* an empty claim, yet a job is due: it is locked elsewhere */
#define PG_WORKER_INFLIGHT 64 /* statements in flight per pool connection */

/* Claims in flight per loop: while one claim's rows are being started, the
 * next is already on its way, so short jobs never wait a round trip. */
#define PG_CLAIMS_INFLIGHT 2

struct pgw;

struct claim {
    struct pg_query q;
    struct pgw *p;
    const char *vals[4];
    char limit[16];
    unsigned asked;
    bool busy;
};

/* The outcomes of one verdict waiting for the flush: the JSON array its
 * statement reads ($1), written as text as they come (no JSON objects per
 * job), and which attempts are in it, to name the ones fenced out. */
struct batch {
    char *text;
    size_t len, cap;
    struct batch_entry {
        int64_t id;
        int attempt;
    } * who;
    unsigned n, ncap;
};

struct pgw {
    struct worker w; /* first */
    struct pg_pool pg;
    bool pg_open;
    struct pg_listener lis_jobs, lis_cancel;
    struct pg_array queues; /* text[] literal of --queues */
    char lease[24];
    bool backlog; /* the last claim came back full: more are waiting */

    struct claim claims[PG_CLAIMS_INFLIGHT];
    unsigned claims_inflight; /* claims sent, not answered */
    unsigned claiming;        /* jobs those claims may bring */
    bool claim_again, in_claim;
    struct pg_query due_q;
    const char *due_vals[1];
    bool due_inflight;
    struct timer poll_timer;

    struct pg_query hb_q;
    const char *hb_vals[3];
    struct pg_array hb_ids;

    struct timer reap_timer;
    struct pg_query reap_q;
    bool reap_inflight;

    struct batch done_ok, done_fail; /* outcomes waiting for the flush */
    bool ok_inflight, fail_inflight; /* their UPDATE is out */
    struct pg_array back_ids;        /* handed back, waiting for the flush */
    struct pg_query back_q;
    const char *back_vals[2];
    bool back_inflight;

    struct retention retention; /* loop 0 only */
    struct retention orphans;   /* loop 0 only: unattached upload files */
};

/* One batch of outcomes on its way. */
struct flush {
    struct pg_query q;
    struct pgw *p;
    struct batch b;
    const char *vals[2];
    bool failures; /* SQL_FAIL: may put jobs back to pending with a backoff */
};

static inline struct pgw *pgw_of(struct worker *w)
{
    return (struct pgw *)w;
}

static void claim_due_check(struct pgw *p)
{
    p->due_inflight = true;
    worker_op_begin(&p->w);
    pg_query_submit(&p->pg, &p->due_q);
}

/* --- outcomes ------------------------------------------------------------ */

static void batch_reserve(struct batch *b, size_t n)
{
    if (b->cap - b->len > n)
        return;
    while (b->cap - b->len <= n)
        b->cap = b->cap ? b->cap * 2 : 1024;
    b->text = xrealloc(b->text, b->cap);
}

/* ,"key":<v> */
static void batch_json(struct batch *b, const char *key, json_t *v)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t need = json_dumpb(v, NULL, 0, flags);
    batch_reserve(b, strlen(key) + 4 + need);
    b->len += (size_t)snprintf(b->text + b->len, b->cap - b->len, ",\"%s\":", key);
    b->len += json_dumpb(v, b->text + b->len, need, flags);
}

static void batch_add(struct batch *b, const struct worker_run *r, const struct worker_outcome *o)
{
    if (b->n == b->ncap) {
        b->ncap = b->ncap ? b->ncap * 2 : 64;
        b->who = xrealloc(b->who, b->ncap * sizeof(*b->who));
    }
    b->who[b->n] = (struct batch_entry){r->job.id, r->job.attempt};
    batch_reserve(b, 96);
    b->len += (size_t)snprintf(b->text + b->len, b->cap - b->len,
                               "%c{\"id\":%lld,\"attempt\":%d,\"token\":%lld", b->n ? ',' : '[',
                               (long long)r->job.id, r->job.attempt, (long long)r->token);
    b->n++;
    if (o->verdict == OUTCOME_OK) {
        if (o->result)
            batch_json(b, "result", o->result);
        else
            batch_json(b, "result", json_null());
    } else {
        json_t *e = json_string(o->error);
        batch_json(b, "error", e ? e : json_string("(the error text is not UTF-8)"));
        json_decref(e);
        batch_reserve(b, 64);
        b->len += (size_t)snprintf(
            b->text + b->len, b->cap - b->len, ",\"permanent\":%s,\"delay_ms\":%llu",
            o->verdict == OUTCOME_PERMANENT ? "true" : "false", (unsigned long long)o->delay_ms);
    }
    batch_reserve(b, 1);
    b->text[b->len++] = '}';
}

static void batch_free(struct batch *b)
{
    free(b->text);
    free(b->who);
}

static void flush_batch(struct pgw *p, struct batch *b, const char *sql);

static void on_flushed(struct pg_query *q, PGresult *res, const char *err)
{
    struct flush *f = container_of(q, struct flush, q);
    struct pgw *p = f->p;
    *(f->failures ? &p->fail_inflight : &p->ok_inflight) = false;
    unsigned sent = f->b.n;
    if (err) {
        LOG(LOG_ERROR,
            "worker: recording job results failed; the jobs will be re-run after their "
            "leases expire",
            L_STR("error", err), L_INT("jobs", sent));
    } else if ((unsigned)PQntuples(res) < sent) {
        /* Fenced out: the job was cancelled, or its lease expired and another
         * worker took it over. The rerun's result stands. */
        int rows = PQntuples(res);
        for (unsigned i = 0; i < sent; i++) {
            bool found = false;
            for (int k = 0; k < rows && !found; k++)
                found = atoll(PQgetvalue(res, k, 0)) == f->b.who[i].id;
            if (!found)
                LOG(LOG_WARN, "completion refused: job no longer held by this worker",
                    L_INT("job_id", f->b.who[i].id), L_INT("attempt", f->b.who[i].attempt),
                    L_STR("worker_id", p->w.id));
        }
    }
    /* A failed attempt returns to pending with a backoff; an idle worker
     * learns when it falls due from the due check after an empty claim,
     * which runs on another connection and may have looked before this
     * write committed. Ask again now that it is written. */
    if (!err && f->failures && PQntuples(res) > 0 && !p->w.draining && !p->due_inflight &&
        !p->claims_inflight)
        claim_due_check(p);
    /* What finished meanwhile goes now, before this operation ends (a
     * drain waits for it). */
    if (f->failures)
        flush_batch(p, &p->done_fail, SQL_FAIL);
    else
        flush_batch(p, &p->done_ok, SQL_COMPLETE);
    batch_free(&f->b);
    free(f);
    worker_op_end(&p->w);
}

static void flush_batch(struct pgw *p, struct batch *b, const char *sql)
{
    bool *out = b == &p->done_fail ? &p->fail_inflight : &p->ok_inflight;
    if (!b->n || *out || p->w.closed)
        return;
    *out = true;
    struct flush *f = xcalloc(1, sizeof(*f));
    f->p = p;
    batch_reserve(b, 2);
    b->text[b->len++] = ']';
    b->text[b->len] = 0;
    f->b = *b;
    *b = (struct batch){0};
    f->vals[0] = f->b.text;
    f->vals[1] = p->w.id;
    f->q = (struct pg_query){.fn = on_flushed,
                             .sql = sql,
                             .nparams = 2,
                             .values = f->vals,
                             .retry_safe = true}; /* fenced and idempotent */
    f->failures = b == &p->done_fail;
    worker_op_begin(&p->w);
    pg_query_submit(&p->pg, &f->q);
}

static void on_handed_back(struct pg_query *q, PGresult *res, const char *err)
{
    struct pgw *p = container_of(q, struct pgw, back_q);
    p->back_inflight = false;
    if (err)
        LOG(LOG_ERROR,
            "worker: handing back unfinished jobs failed; they return when their "
            "leases expire",
            L_STR("error", err));
    else
        LOG(LOG_INFO, "jobs handed back", L_INT("jobs", PQntuples(res)));
    pg_array_begin(&p->back_ids);
    worker_op_end(&p->w);
}

static void pg_flush(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    flush_batch(p, &p->done_ok, SQL_COMPLETE);
    flush_batch(p, &p->done_fail, SQL_FAIL);
    if (p->back_ids.n && !p->back_inflight) {
        p->back_vals[0] = pg_array_end(&p->back_ids);
        p->back_vals[1] = w->id;
        p->back_inflight = true;
        worker_op_begin(w);
        pg_query_submit(&p->pg, &p->back_q);
        /* back_ids stays as sent until on_handed_back; new ones wait. */
    }
}

/* --kind-limits: back to pending until its turn, the attempt not counted. */
struct deferral {
    struct pg_query q;
    struct pgw *p;
    const char *vals[3];
    char id[24], delay[24];
};

static void on_deferred(struct pg_query *q, PGresult *res, const char *err)
{
    struct deferral *d = container_of(q, struct deferral, q);
    if (err)
        LOG(LOG_WARN, "worker: deferring a job for its kind limit failed; its lease returns it",
            L_STR("job_id", d->id), L_STR("error", err));
    worker_op_end(&d->p->w);
    free(d);
}

static void defer(struct pgw *p, int64_t id, uint64_t delay_ms)
{
    struct deferral *d = xcalloc(1, sizeof(*d));
    d->p = p;
    snprintf(d->id, sizeof(d->id), "%lld", (long long)id);
    snprintf(d->delay, sizeof(d->delay), "%llu", (unsigned long long)delay_ms);
    d->vals[0] = d->id;
    d->vals[1] = p->w.id;
    d->vals[2] = d->delay;
    d->q = (struct pg_query){
        .fn = on_deferred, .sql = SQL_DEFER, .nparams = 3, .values = d->vals, .retry_safe = true};
    worker_op_begin(&p->w);
    pg_query_submit(&p->pg, &d->q);
}

/* A 202: the attempt is the endpoint's now (SQL_HAND_OFF). */
struct handoff {
    struct pg_query q;
    struct pgw *p;
    const char *vals[5];
    char id[24], attempt[12], lease[24], secret[HANDOFF_SECRET_MAX + 1];
};

static void on_handed_off(struct pg_query *q, PGresult *res, const char *err)
{
    struct handoff *h = container_of(q, struct handoff, q);
    if (err)
        LOG(LOG_WARN, "worker: handing a job off failed; its lease returns it",
            L_STR("job_id", h->id), L_STR("error", err));
    else if (PQntuples(res) != 1)
        LOG(LOG_WARN, "hand-off refused: job no longer held by this worker",
            L_STR("job_id", h->id));
    worker_op_end(&h->p->w);
    free(h);
}

static void hand_off(struct pgw *p, const struct job_run *j, const char *secret, uint64_t lease_ms)
{
    struct handoff *h = xcalloc(1, sizeof(*h));
    h->p = p;
    snprintf(h->id, sizeof(h->id), "%lld", (long long)j->id);
    snprintf(h->attempt, sizeof(h->attempt), "%d", j->attempt);
    snprintf(h->lease, sizeof(h->lease), "%llu", (unsigned long long)lease_ms);
    snprintf(h->secret, sizeof(h->secret), "%s", secret);
    h->vals[0] = h->id;
    h->vals[1] = p->w.id;
    h->vals[2] = h->attempt;
    h->vals[3] = h->secret;
    h->vals[4] = h->lease;
    h->q = (struct pg_query){.fn = on_handed_off,
                             .sql = SQL_HAND_OFF,
                             .nparams = 5,
                             .values = h->vals,
                             .retry_safe = true};
    worker_op_begin(&p->w);
    pg_query_submit(&p->pg, &h->q);
}

static void pg_record(struct worker *w, struct worker_run *r, const struct worker_outcome *o)
{
    struct pgw *p = pgw_of(w);
    const struct job_run *j = &r->job;
    switch (o->verdict) {
    case OUTCOME_OK:
        batch_add(&p->done_ok, r, o);
        break;
    case OUTCOME_FAIL:
    case OUTCOME_PERMANENT:
        batch_add(&p->done_fail, r, o);
        break;
    case OUTCOME_DEFER:
        defer(p, j->id, o->delay_ms);
        break;
    case OUTCOME_BACK:
        if (p->back_inflight)
            LOG(LOG_WARN, "worker: a hand-back is in flight; this job returns after its lease",
                L_INT("job_id", j->id));
        else
            pg_array_int(&p->back_ids, j->id);
        break;
    case OUTCOME_DROP:
        break; /* the row already says it is not ours (cancelled or taken over) */
    case OUTCOME_HANDOFF:
        hand_off(p, j, o->secret, o->delay_ms);
        break;
    }
}

static void on_progress(struct pg_query *q, PGresult *res, const char *err)
{
    free(q);
}

static void pg_progress(struct worker *w, struct worker_run *r, int percent, const char *step)
{
    struct progress {
        struct pg_query q; /* first: on_progress frees it */
        const char *vals[5];
        char id[24], pct[8], attempt[12], step[256];
    } *p = xcalloc(1, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%lld", (long long)r->job.id);
    snprintf(p->pct, sizeof(p->pct), "%d", percent);
    snprintf(p->attempt, sizeof(p->attempt), "%d", r->job.attempt);
    if (step)
        snprintf(p->step, sizeof(p->step), "%s", step);
    p->vals[0] = p->id;
    p->vals[1] = p->pct;
    p->vals[2] = step ? p->step : NULL;
    p->vals[3] = w->id;
    p->vals[4] = p->attempt;
    p->q =
        (struct pg_query){.fn = on_progress, .sql = SQL_PROGRESS, .nparams = 5, .values = p->vals};
    pg_query_submit(&pgw_of(w)->pg, &p->q);
}

/* --- claiming ------------------------------------------------------------ */

static void on_due(struct pg_query *q, PGresult *res, const char *err)
{
    struct pgw *p = container_of(q, struct pgw, due_q);
    p->due_inflight = false;
    uint64_t wait = p->w.cfg->poll_interval_ms;
    if (!err && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        uint64_t due = (uint64_t)atoll(PQgetvalue(res, 0, 0));
        /* "Due now" right after a claim that found nothing means the job is
         * locked elsewhere (another worker's claim, a long transaction):
         * look again shortly, never at once, or the loop spins for as long
         * as the lock is held. */
        if (due < DUE_RECHECK_MIN_MS)
            due = DUE_RECHECK_MIN_MS;
        if (due < wait)
            wait = due;
    }
    if (!p->w.draining)
        loop_timer_in(p->w.loop, &p->poll_timer, wait);
    worker_op_end(&p->w);
}

static void start_row(struct pgw *p, PGresult *res, int row)
{
    struct worker_run *r = worker_run_new(&p->w);
    r->job.id = atoll(PQgetvalue(res, row, 0));
    r->job.attempt = atoi(PQgetvalue(res, row, 3));
    r->job.max_attempts = atoi(PQgetvalue(res, row, 4));
    r->job.timeout_ms = PQgetisnull(res, row, 5) ? 0 : (uint64_t)atoll(PQgetvalue(res, row, 5));
    job_set_prev_error(&r->job, PQgetvalue(res, row, 7), (size_t)PQgetlength(res, row, 7));
    r->job.files = true; /* the queue's own database: asking costs one indexed query */
    /* due: now less how long it had been due at the claim (the database's
     * clock: run_at, set at enqueue or when its retry fell due) */
    long long due_us = atoll(PQgetvalue(res, row, 8));
    uint64_t waited_ns = due_us > 0 ? (uint64_t)due_us * 1000 : 0;
    r->due_ns = p->w.loop->now_ns > waited_ns ? p->w.loop->now_ns - waited_ns : 1;
    for (unsigned q = 0; p->w.nqueues > 1 && q < p->w.nqueues; q++) /* the job's queue name */
        if (!strcmp(p->w.queue[q], PQgetvalue(res, row, 6)))
            r->queue_ix = q;
    const char *kind = PQgetvalue(res, row, 1), *payload = PQgetvalue(res, row, 2);
    worker_run_start(&p->w, r, kind, strlen(kind), payload, strlen(payload));
}

static void pg_fetch(struct worker *w);

static void on_claimed(struct pg_query *q, PGresult *res, const char *err)
{
    struct claim *c = container_of(q, struct claim, q);
    struct pgw *p = c->p;
    struct worker *w = &p->w;
    c->busy = false;
    p->claims_inflight--;
    p->claiming -= c->asked;
    if (err) {
        LOG(LOG_WARN, "worker: claiming jobs failed", L_STR("error", err));
        if (!w->draining)
            loop_timer_in(w->loop, &p->poll_timer, w->cfg->poll_interval_ms);
        worker_op_end(w);
        return;
    }
    int rows = PQntuples(res);
    p->backlog = (unsigned)rows == c->asked;
    if (rows)
        LOG(LOG_INFO, "jobs fetched", L_INT("count", rows), L_STR("worker_id", w->id));
    p->in_claim = true;
    for (int i = 0; i < rows; i++)
        start_row(p, res, i);
    p->in_claim = false;
    if (p->backlog || p->claim_again) {
        p->claim_again = false;
        worker_want(w);
    } else if (rows == 0 && !p->due_inflight && !w->draining && !p->claims_inflight) {
        claim_due_check(p); /* idle: sleep until the next delayed job is due (or a NOTIFY) */
    } else if (!w->draining && !p->claims_inflight) {
        /* Caught up: NOTIFY wakes us; the poll covers a lost notification. */
        loop_timer_in(w->loop, &p->poll_timer, w->cfg->poll_interval_ms);
    }
    worker_op_end(w);
}

static void pg_fetch(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    if (p->in_claim)
        return;
    if (p->claims_inflight && (!p->backlog || p->claims_inflight == PG_CLAIMS_INFLIGHT)) {
        p->claim_again = true; /* the answer in flight decides */
        return;
    }
    unsigned want = worker_fetch_size(w, p->claiming);
    if (!want)
        return;
    struct claim *c = &p->claims[p->claims[0].busy ? 1 : 0];
    loop_timer_cancel(w->loop, &p->poll_timer);
    c->asked = want;
    snprintf(c->limit, sizeof(c->limit), "%u", want);
    c->busy = true;
    p->claims_inflight++;
    p->claiming += want;
    worker_op_begin(w);
    pg_query_submit(&p->pg, &c->q);
}

static void on_poll(struct loop *l, struct timer *t)
{
    worker_want(&container_of(t, struct pgw, poll_timer)->w);
}

static void on_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct pgw *p = lis->data;
    if (!payload)
        LOG(LOG_INFO, "worker listening for new jobs", L_STR("channel", "trireme_jobs"),
            L_INT("loop", p->w.loop->id));
    worker_want(&p->w);
}

static void on_cancel_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct pgw *p = lis->data;
    struct worker_run *r = payload ? worker_run_find(&p->w, atoll(payload)) : NULL;
    if (!r)
        return;
    worker_run_lose(&p->w, r, "job cancelled while running, stopping it", true);
    worker_want(&p->w);
}

/* --- heartbeat and reaper ------------------------------------------------ */

static void on_heartbeat(struct pg_query *q, PGresult *res, const char *err)
{
    struct pgw *p = container_of(q, struct pgw, hb_q);
    struct worker *w = &p->w;
    if (err) {
        LOG(LOG_WARN, "worker: lease renewal failed", L_STR("error", err));
        worker_heartbeat_done(w);
        return;
    }
    /* Runs that were in this renewal but not renewed lost their lease. */
    int rows = PQntuples(res);
    struct list *n, *t;
    list_for_each_safe(n, t, &w->runs)
    {
        struct worker_run *r = list_entry(n, struct worker_run, node);
        if (r->lost || r->hb_gen != w->hb_gen)
            continue;
        bool kept = false;
        for (int k = 0; k < rows && !kept; k++)
            kept = atoll(PQgetvalue(res, k, 0)) == r->job.id;
        if (!kept) /* may release r (list_for_each_safe allows it) */
            worker_run_lose(w, r, "job lease lost (cancelled or taken over), stopping it", false);
    }
    worker_heartbeat_done(w);
}

static bool pg_heartbeat(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    pg_array_begin(&p->hb_ids);
    struct list *n;
    list_for_each(n, &w->runs)
    {
        struct worker_run *r = list_entry(n, struct worker_run, node);
        if (r->lost)
            continue;
        r->hb_gen = w->hb_gen;
        pg_array_int(&p->hb_ids, r->job.id);
    }
    if (!p->hb_ids.n)
        return false;
    p->hb_vals[0] = pg_array_end(&p->hb_ids);
    pg_query_submit(&p->pg, &p->hb_q);
    return true;
}

static void on_reaped(struct pg_query *q, PGresult *res, const char *err)
{
    struct pgw *p = container_of(q, struct pgw, reap_q);
    p->reap_inflight = false;
    if (err) {
        LOG(LOG_WARN, "worker: reaping expired leases failed", L_STR("error", err));
    } else {
        for (int i = 0; i < PQntuples(res); i++)
            LOG(LOG_WARN, "lease expired, job returned to the queue",
                L_STR("job_id", PQgetvalue(res, i, 0)), L_STR("status", PQgetvalue(res, i, 1)));
        if (PQntuples(res))
            worker_want(&p->w);
    }
    worker_op_end(&p->w);
}

static void on_reap_timer(struct loop *l, struct timer *t)
{
    struct pgw *p = container_of(t, struct pgw, reap_timer);
    uint64_t every = p->w.cfg->lease_ms / 2;
    loop_timer_in(l, &p->reap_timer, every / 2 + loop_random(l) % (every / 2 + 1));
    if (p->reap_inflight || p->w.draining)
        return;
    p->reap_inflight = true;
    worker_op_begin(&p->w);
    pg_query_submit(&p->pg, &p->reap_q);
}

/* --- drain --------------------------------------------------------------- */

static void abandon(struct pgw *p, struct pg_query *q, bool *flag)
{
    if (!*flag)
        return;
    pg_query_abandon(&p->pg, q);
    *flag = false;
    worker_op_end(&p->w);
}

/* With no database connection up, the claims, due check, reaper and
 * heartbeat this loop queued have not been sent (a connection that drops
 * fails or re-queues what it sent) and would wait for the database to
 * return: the drain must not wait for them, and forgetting them loses
 * nothing. */
static void pg_drain(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    loop_timer_cancel(w->loop, &p->poll_timer);
    retention_stop(&p->retention);
    retention_stop(&p->orphans);
    if (p->pg.ready)
        return;
    for (int i = 0; i < PG_CLAIMS_INFLIGHT; i++) {
        struct claim *c = &p->claims[i];
        if (c->busy) {
            p->claims_inflight--;
            p->claiming -= c->asked;
            abandon(p, &c->q, &c->busy);
        }
    }
    abandon(p, &p->due_q, &p->due_inflight);
    abandon(p, &p->reap_q, &p->reap_inflight);
    abandon(p, &p->hb_q, &w->hb_inflight);
}

static void pg_close(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    loop_timer_cancel(w->loop, &p->reap_timer);
    loop_timer_cancel(w->loop, &p->poll_timer);
    retention_stop(&p->retention);
    retention_stop(&p->orphans);
    pg_pool_close(&p->pg);
}

static void pg_free(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    retention_stop(&p->retention);
    retention_stop(&p->orphans);
    if (p->pg_open)
        pg_pool_free(&p->pg);
    batch_free(&p->done_ok);
    batch_free(&p->done_fail);
    pg_array_free(&p->queues);
    pg_array_free(&p->hb_ids);
    pg_array_free(&p->back_ids);
}

/* --- set-up -------------------------------------------------------------- */

static const char *pg_unmet(const struct config *cfg)
{
    return *cfg->database_url ? NULL : "it needs DATABASE_URL (PostgreSQL)";
}

static int pg_open(struct worker *w)
{
    struct pgw *p = pgw_of(w);
    const struct config *cfg = w->cfg;
    struct loop *l = w->loop;
    pg_array_begin(&p->queues);
    for (unsigned q = 0; q < w->nqueues; q++)
        pg_array_text(&p->queues, w->queue[q], strlen(w->queue[q]));
    const char *queues = pg_array_end(&p->queues);
    snprintf(p->lease, sizeof(p->lease), "%llu", (unsigned long long)cfg->lease_ms);
    pg_array_begin(&p->back_ids);
    p->poll_timer.fn = on_poll;
    p->reap_timer.fn = on_reap_timer;
    for (int i = 0; i < PG_CLAIMS_INFLIGHT; i++) {
        struct claim *c = &p->claims[i];
        c->p = p;
        c->vals[0] = queues;
        c->vals[1] = c->limit;
        c->vals[2] = w->id;
        c->vals[3] = p->lease;
        c->q =
            (struct pg_query){.fn = on_claimed, .sql = SQL_CLAIM, .nparams = 4, .values = c->vals};
    }
    p->due_vals[0] = queues;
    p->due_q = (struct pg_query){
        .fn = on_due, .sql = SQL_NEXT_DUE, .nparams = 1, .values = p->due_vals, .retry_safe = true};
    p->hb_vals[1] = w->id;
    p->hb_vals[2] = p->lease;
    p->hb_q = (struct pg_query){.fn = on_heartbeat,
                                .sql = SQL_HEARTBEAT,
                                .nparams = 3,
                                .values = p->hb_vals,
                                .retry_safe = true};
    p->reap_q = (struct pg_query){.fn = on_reaped, .sql = SQL_REAP, .nparams = 0};
    p->back_q = (struct pg_query){.fn = on_handed_back,
                                  .sql = SQL_HAND_BACK,
                                  .nparams = 2,
                                  .values = p->back_vals,
                                  .retry_safe = true};

    /* LISTEN needs a session: the direct URL when DATABASE_URL is a pooler. */
    const char *listen_url = *cfg->database_direct_url    ? cfg->database_direct_url
                             : cfg->pg_pooler_transaction ? NULL
                                                          : cfg->database_url;
    struct pg_pool_config pc = {
        .conninfo = cfg->database_url,
        .listen_conninfo = listen_url,
        /* A pooler may refuse startup options; there every commit is durable. */
        .options = cfg->pg_pooler_transaction ? NULL : "-c synchronous_commit=off",
        .size = cfg->pg_pool,
        .max_inflight = PG_WORKER_INFLIGHT,
    };
    int rc = pg_pool_init(&p->pg, l, &pc);
    if (rc < 0)
        return rc;
    p->pg_open = true;
    p->lis_jobs = (struct pg_listener){.channel = "trireme_jobs", .fn = on_notify, .data = p};
    p->lis_cancel =
        (struct pg_listener){.channel = "trireme_cancel", .fn = on_cancel_notify, .data = p};
    if (listen_url) {
        pg_listen(&p->pg, &p->lis_jobs);
        pg_listen(&p->pg, &p->lis_cancel);
    } else if (l->id == 0) {
        LOG(LOG_WARN,
            "worker: no direct database URL for LISTEN behind a transaction pooler; "
            "polling every --poll-interval instead (set DATABASE_DIRECT_URL)",
            L_INT("poll_interval_ms", cfg->poll_interval_ms));
    }
    loop_timer_in(l, &p->reap_timer, 1000 + loop_random(l) % 1000);
    if (l->id == 0) {
        retention_start(&p->retention, l, &p->pg, RETENTION_JOBS);
        retention_start(&p->orphans, l, &p->pg, RETENTION_ORPHANS);
    }
    LOG(LOG_INFO, "worker started", L_STR("worker_id", w->id), L_STR("queues", cfg->queues),
        L_INT("concurrency", w->limit), L_INT("batch_size", cfg->batch_size),
        L_INT("lease_ms", cfg->lease_ms));
    /* The first claim goes out from the loop, once the core has finished
     * setting up (its kind-limit connection). */
    loop_timer_in(l, &p->poll_timer, 0);
    return 0;
}

static struct pg_pool *pg_conn(struct worker *w)
{
    return &pgw_of(w)->pg;
}

const struct queue_worker_ops pg_worker_ops = {
    .worker_size = sizeof(struct pgw),
    .run_size = sizeof(struct worker_run),
    .can_hand_off = true,
    .unmet = pg_unmet,
    .open = pg_open,
    .fetch = pg_fetch,
    .record = pg_record,
    .flush = pg_flush,
    .progress = pg_progress,
    .heartbeat = pg_heartbeat,
    .drain = pg_drain,
    .close = pg_close,
    .free = pg_free,
    .pg = pg_conn,
    .redis = NULL,
};
