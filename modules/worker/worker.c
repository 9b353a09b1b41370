/*
 * worker.c - the worker role: claim, run, heartbeat, complete, drain.
 *
 * One worker per loop, each with its own PostgreSQL pool (commits with
 * synchronous_commit=off: losing a state transition in a crash only re-runs
 * a job, which at-least-once allows) and its own LISTEN connection.
 *
 * Claiming: a batch is claimed when capacity frees up and jobs are known to
 * wait (the last claim came back full), on NOTIFY trireme_jobs, when the
 * next delayed job falls due, and on a fallback poll. At most one claim is
 * in flight per loop. Completions of one loop turn are written together in
 * one fenced UPDATE.
 */
#include "modules/worker/run.h"
#include "modules/worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/redis.h"
#include "modules/leader/leader.h"
#include "modules/limits/gcra.h"
#include "modules/worker/kind_limits.h"
#include "modules/registry.h"
#include "modules/worker/worker_sql.h"

#define RETRY_BASE_MS      1000
#define RETRY_MAX_MS       (3600 * 1000)
#define DUE_RECHECK_MIN_MS 50 /* an empty claim, yet a job is due: it is locked elsewhere */

/* Claims in flight per loop: while one claim's rows are being started, the
 * next is already on its way, so short jobs never wait a round trip. */
#define WORKER_CLAIMS_INFLIGHT 2

struct claim {
    struct pg_query q;
    struct worker *w;
    const char *vals[4];
    char limit[16];
    unsigned asked;
    bool busy;
};

struct worker {
    struct loop *loop;
    const struct config *cfg;
    struct pg_pool pg;
    struct pg_listener lis_jobs, lis_cancel;
    char id[128];
    char queues[600]; /* text[] literal */
    char lease[24];
    unsigned limit, running;
    struct job_run *runs;
    bool backlog; /* the last claim came back full: more are waiting */

    struct claim claims[WORKER_CLAIMS_INFLIGHT];
    unsigned claims_inflight; /* claims sent, not answered */
    unsigned claiming;        /* jobs those claims may bring */
    bool claim_again, in_claim;
    struct pg_query due_q;
    const char *due_vals[1];
    bool due_inflight;
    struct timer poll_timer;

    struct timer hb_timer;
    struct pg_query hb_q;
    const char *hb_vals[3];
    char *hb_ids;
    bool hb_inflight;
    uint64_t hb_gen;

    struct timer reap_timer;
    struct pg_query reap_q;
    bool reap_inflight;

    struct redis_client redis; /* --kind-limits */
    bool has_redis;

    json_t *done_ok, *done_fail;
    struct timer flush_timer;
    unsigned flushes_inflight;

    bool draining, handing_back, closed;
    struct timer drain_timer;
    struct pg_query back_q;
    const char *back_vals[2];
    char *back_ids;
};

struct flush {
    struct pg_query q;
    struct worker *w;
    json_t *sent;
    char *text;
    const char *vals[2];
    bool ok;
    bool failures; /* SQL_FAIL: may put jobs back to pending with a backoff */
};

/* Statements for the `sql` kind: loaded once by worker_init into
 * server->module_state[MODULE_WORKER], read-only afterwards. */
struct sql_statement {
    char *name, *sql;
};
struct sql_statements {
    struct sql_statement *v;
    unsigned n;
};

/* Process-wide, built by worker_init, read-only afterwards. */
struct worker_shared {
    struct sql_statements sql;
    struct kind_limits limits;
};

static void want_claim(struct worker *w);
static void maybe_finish_drain(struct worker *w);

const struct kind_limits *worker_kind_limits(struct server *s)
{
    const struct worker_shared *sh = s->module_state[MODULE_WORKER];
    return sh && sh->limits.n ? &sh->limits : NULL;
}

struct loop *job_loop(struct job_run *r)
{
    return r->be ? r->be->loop(r) : r->w->loop;
}

struct pg_pool *job_pg(struct job_run *r)
{
    return r->be ? r->be->pg(r) : &r->w->pg;
}

const char *worker_sql_statement(struct job_run *r, const char *name)
{
    const struct worker_shared *sh = job_loop(r)->srv->module_state[MODULE_WORKER];
    const struct sql_statements *st = sh ? &sh->sql : NULL;
    for (unsigned i = 0; st && i < st->n; i++)
        if (!strcmp(st->v[i].name, name))
            return st->v[i].sql;
    return NULL;
}

/* --- completions -------------------------------------------------------- */

static void on_flushed(struct pg_query *q, PGresult *res, const char *err)
{
    struct flush *f = (struct flush *)q;
    struct worker *w = f->w;
    w->flushes_inflight--;
    size_t sent = json_array_size(f->sent);
    if (err) {
        LOG(LOG_ERROR,
            "worker: recording job results failed; the jobs will be re-run after their "
            "leases expire",
            L_STR("error", err), L_INT("jobs", sent));
    } else if ((size_t)PQntuples(res) < sent) {
        /* Fenced out: the job was cancelled, or its lease expired and another
         * worker took it over. The rerun's result stands. */
        int rows = PQntuples(res);
        size_t i;
        json_t *j;
        json_array_foreach(f->sent, i, j)
        {
            json_int_t id = json_integer_value(json_object_get(j, "id"));
            bool found = false;
            for (int k = 0; k < rows && !found; k++)
                found = atoll(PQgetvalue(res, k, 0)) == id;
            if (!found)
                LOG(LOG_WARN, "completion refused: job no longer held by this worker",
                    L_INT("job_id", id),
                    L_INT("attempt", json_integer_value(json_object_get(j, "attempt"))),
                    L_STR("worker_id", w->id));
        }
    }
    /* Fix (e2e test_retry_is_picked_up_when_due_even_if_the_failure_commits_late):
     * a failed attempt returns to pending with a backoff, and an idle worker
     * learns when it falls due from the due check it sends after an empty
     * claim. That check runs on another connection and may see the job
     * before this write committed (still running), and then the retry
     * waited for --poll-interval. Ask again now that it is written. */
    if (!err && f->failures && PQntuples(res) > 0 && !w->draining && !w->due_inflight &&
        !w->claims_inflight) {
        w->due_inflight = true;
        pg_query_submit(&w->pg, &w->due_q);
    }
    json_decref(f->sent);
    free(f->text);
    free(f);
    maybe_finish_drain(w);
}

static void flush_list(struct worker *w, json_t **list, const char *sql)
{
    if (!json_array_size(*list))
        return;
    struct flush *f = calloc(1, sizeof(*f));
    f->w = w;
    f->sent = *list;
    *list = json_array();
    f->text = json_dumps(f->sent, JSON_COMPACT);
    f->vals[0] = f->text;
    f->vals[1] = w->id;
    f->q.fn = on_flushed;
    f->q.sql = sql;
    f->q.nparams = 2;
    f->q.values = f->vals;
    f->q.retry_safe = true; /* fenced and idempotent */
    f->failures = list == &w->done_fail;
    w->flushes_inflight++;
    pg_query_submit(&w->pg, &f->q);
}

static void on_flush_timer(struct loop *l, struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, flush_timer));
    flush_list(w, &w->done_ok, SQL_COMPLETE);
    flush_list(w, &w->done_fail, SQL_FAIL);
}

static uint64_t retry_delay_ms(struct worker *w, int attempt)
{
    uint64_t d = RETRY_BASE_MS;
    for (int i = 1; i < attempt && d < RETRY_MAX_MS; i++)
        d *= 2;
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    /* +-25% jitter, so retries of a burst do not arrive as a burst. */
    return d * 3 / 4 + loop_random(w->loop) % (d / 2 + 1);
}

static void free_slot(struct worker *w, struct job_run *r)
{
    if (!r->slot_freed) {
        r->slot_freed = true;
        w->running--;
    }
}

static void run_free(struct worker *w, struct job_run *r)
{
    loop_timer_cancel(w->loop, &r->soft);
    loop_timer_cancel(w->loop, &r->hard);
    loop_timer_cancel(w->loop, &r->handler_timer);
    if (r->prev)
        r->prev->next = r->next;
    else
        w->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    json_decref(r->payload);
    free(r);
}

static void record(struct worker *w, struct job_run *r, json_t *result, const char *error,
                   bool permanent)
{
    json_t *e = json_pack("{sI,si,sI}", "id", (json_int_t)r->id, "attempt", r->attempt, "token",
                          (json_int_t)r->token);
    if (error) {
        json_object_set_new(e, "error", json_string(error));
        json_object_set_new(e, "permanent", json_boolean(permanent));
        json_object_set_new(e, "delay_ms", json_integer((json_int_t)retry_delay_ms(w, r->attempt)));
        json_array_append_new(w->done_fail, e);
    } else {
        json_object_set_new(e, "result", result ? json_incref(result) : json_null());
        json_array_append_new(w->done_ok, e);
    }
    loop_timer_in(w->loop, &w->flush_timer, 0);
}

void job_finish(struct job_run *r, json_t *result, const char *error, bool permanent)
{
    if (r->be) {
        r->be->finish(r, result, error, permanent);
        return;
    }
    struct worker *w = r->w;
    if (!r->lost)
        record(w, r, result, error, permanent);
    job_log_outcome(r, error, permanent, w->loop->now_ns);
    json_decref(result);
    free_slot(w, r);
    run_free(w, r);
    want_claim(w);
    maybe_finish_drain(w);
}

static void on_progress(struct pg_query *q, PGresult *res, const char *err)
{
    free(q);
}

void job_progress(struct job_run *r, int percent, const char *step)
{
    if (r->be) {
        r->be->progress(r, percent, step);
        return;
    }
    if (r->lost)
        return;
    struct {
        struct pg_query q;
        const char *vals[5];
        char id[24], pct[8], attempt[12], step[256];
    } *p = calloc(1, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%lld", (long long)r->id);
    snprintf(p->pct, sizeof(p->pct), "%d", percent < 0 ? 0 : percent > 100 ? 100 : percent);
    snprintf(p->attempt, sizeof(p->attempt), "%d", r->attempt);
    if (step)
        snprintf(p->step, sizeof(p->step), "%s", step);
    p->vals[0] = p->id;
    p->vals[1] = p->pct;
    p->vals[2] = step ? p->step : NULL;
    p->vals[3] = r->w->id;
    p->vals[4] = p->attempt;
    p->q.fn = on_progress;
    p->q.sql = SQL_PROGRESS;
    p->q.nparams = 5;
    p->q.values = p->vals;
    pg_query_submit(&r->w->pg, &p->q);
}

/* --- running ------------------------------------------------------------ */

static void on_hard_limit(struct loop *l, struct timer *t)
{
    struct job_run *r = (struct job_run *)((char *)t - offsetof(struct job_run, hard));
    struct worker *w = r->w;
    if (r->lost)
        return;
    char msg[128];
    job_hard_limit_reason(r, msg, sizeof(msg));
    record(w, r, NULL, msg, false);
    r->lost = true; /* whatever it reports later is not written */
    free_slot(w, r);
    want_claim(w);
}

/* --- --kind-limits ------------------------------------------------------ */

struct kind_check {
    struct redis_cmd cmd;
    struct pg_query defer;
    struct job_run *r;
    const char *vals[3];
    char id[24], delay[24];
};

static void on_deferred(struct pg_query *q, PGresult *res, const char *err)
{
    struct kind_check *k = (struct kind_check *)((char *)q - offsetof(struct kind_check, defer));
    if (err)
        LOG(LOG_WARN, "worker: deferring a job for its kind limit failed; its lease returns it",
            L_STR("job_id", k->id), L_STR("error", err));
    free(k);
}

static void on_kind_verdict(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct kind_check *k = (struct kind_check *)c;
    struct job_run *r = k->r;
    struct worker *w = r->w;
    if (r->lost || w->draining) {
        job_finish(r, NULL, "stopped before it started", false);
        free(k);
        return;
    }
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->integer == 1) {
        if (err)
            LOG(LOG_WARN, "kind limit check failed; running the job anyway", L_STR("error", err),
                L_INT("job_id", r->id));
        free(k);
        job_run_start(r, w->loop);
        return;
    }
    /* Over the limit: back to pending until its turn, attempt not counted. */
    long long wait = reply->element[1]->integer;
    snprintf(k->id, sizeof(k->id), "%lld", (long long)r->id);
    snprintf(k->delay, sizeof(k->delay), "%lld", wait < 1 ? 1 : wait);
    k->vals[0] = k->id;
    k->vals[1] = w->id;
    k->vals[2] = k->delay;
    k->defer = (struct pg_query){
        .fn = on_deferred, .sql = SQL_DEFER, .nparams = 3, .values = k->vals, .retry_safe = true};
    LOG(LOG_DEBUG, "job deferred by its kind limit", L_INT("job_id", r->id),
        L_STR("kind", r->kind->name), L_INT("retry_in_ms", wait));
    r->lost = true; /* nothing else is written for this attempt */
    job_finish(r, NULL, NULL, false);
    pg_query_submit(&w->pg, &k->defer);
}

static void check_kind_limit(struct job_run *r, const struct kind_limit *kl)
{
    struct kind_check *k = calloc(1, sizeof(*k));
    k->r = r;
    k->cmd.fn = on_kind_verdict;
    k->cmd.timeout_ms = 1000;
    char bucket[128], interval[32], burst[32];
    snprintf(bucket, sizeof(bucket), "trireme:kindlimit:%s", kl->kind);
    gcra_args(kl->limit, kl->window_ms, interval, burst);
    const char *argv[] = {"EVAL", GCRA_SCRIPT, "1", bucket, interval, burst};
    redis_submitv(&r->w->redis, &k->cmd, 6, argv);
}

static void start_run(struct worker *w, PGresult *res, int row)
{
    const char *kind = PQgetvalue(res, row, 1);
    struct job_run *r = calloc(1, sizeof(*r));
    r->w = w;
    r->id = atoll(PQgetvalue(res, row, 0));
    r->attempt = atoi(PQgetvalue(res, row, 3));
    r->max_attempts = atoi(PQgetvalue(res, row, 4));
    r->timeout_ms = PQgetisnull(res, row, 5) ? w->cfg->job_timeout_ms
                                             : (uint64_t)atoll(PQgetvalue(res, row, 5));
    r->started_ns = w->loop->now_ns;
    r->token = w->cfg->worker_mode_leader ? leader_token(w->loop->srv) : 0;
    job_limits_init(r, on_hard_limit);
    r->next = w->runs;
    if (w->runs)
        w->runs->prev = r;
    w->runs = r;
    w->running++;
    r->kind = job_kind_find(kind, strlen(kind));
    json_error_t je;
    r->payload = json_loads(PQgetvalue(res, row, 2), JSON_DECODE_ANY, &je);
    if (!r->kind) {
        static const struct job_kind unknown = {.name = "unknown"};
        r->kind = &unknown;
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown job kind '%.200s' (not built into this worker)", kind);
        job_finish(r, NULL, msg, true);
        return;
    }
    if (!r->payload) {
        job_finish(r, NULL, "payload is not valid JSON", true);
        return;
    }
    const struct worker_shared *sh = w->loop->srv->module_state[MODULE_WORKER];
    const struct kind_limit *kl = w->has_redis ? kind_limit_find(&sh->limits, r->kind->name) : NULL;
    if (kl) {
        check_kind_limit(r, kl);
        return;
    }
    job_run_start(r, w->loop);
}

/* --- claiming ----------------------------------------------------------- */

static void on_due(struct pg_query *q, PGresult *res, const char *err)
{
    struct worker *w = (struct worker *)((char *)q - offsetof(struct worker, due_q));
    w->due_inflight = false;
    uint64_t wait = w->cfg->poll_interval_ms;
    if (!err && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        uint64_t due = (uint64_t)atoll(PQgetvalue(res, 0, 0));
        /* Fix (e2e test_idle_worker_sleeps): "due now" right after a claim
         * that found nothing means the job is locked elsewhere (another
         * worker's claim, a long transaction): look again shortly, not at
         * once, or the loop spins for as long as the lock is held. */
        if (due < DUE_RECHECK_MIN_MS)
            due = DUE_RECHECK_MIN_MS;
        if (due < wait)
            wait = due;
    }
    if (!w->draining)
        loop_timer_in(w->loop, &w->poll_timer, wait);
    maybe_finish_drain(w);
}

static void on_claimed(struct pg_query *q, PGresult *res, const char *err)
{
    struct claim *c = (struct claim *)q;
    struct worker *w = c->w;
    c->busy = false;
    w->claims_inflight--;
    w->claiming -= c->asked;
    if (err) {
        LOG(LOG_WARN, "worker: claiming jobs failed", L_STR("error", err));
        if (!w->draining)
            loop_timer_in(w->loop, &w->poll_timer, w->cfg->poll_interval_ms);
        maybe_finish_drain(w);
        return;
    }
    int rows = PQntuples(res);
    w->backlog = (unsigned)rows == c->asked;
    if (rows)
        LOG(LOG_INFO, "jobs fetched", L_INT("count", rows), L_STR("worker_id", w->id));
    w->in_claim = true;
    for (int i = 0; i < rows; i++)
        start_run(w, res, i);
    w->in_claim = false;
    if (w->backlog || w->claim_again) {
        w->claim_again = false;
        want_claim(w);
    } else if (rows == 0 && !w->due_inflight && !w->draining && !w->claims_inflight) {
        /* Idle: sleep until the next delayed job is due (or a NOTIFY). */
        w->due_inflight = true;
        pg_query_submit(&w->pg, &w->due_q);
    } else if (!w->draining && !w->claims_inflight) {
        /* Caught up: NOTIFY wakes us; the poll covers a lost notification. */
        loop_timer_in(w->loop, &w->poll_timer, w->cfg->poll_interval_ms);
    }
    maybe_finish_drain(w);
}

static void want_claim(struct worker *w)
{
    if (w->draining || w->in_claim)
        return;
    /* Leader mode: standbys stay hot (connected, listening) but fetch nothing. */
    if (w->cfg->worker_mode_leader && !leader_is(w->loop->srv))
        return;
    unsigned busy = w->running + w->claiming;
    unsigned free_slots = w->limit > busy ? w->limit - busy : 0;
    unsigned want = free_slots < w->cfg->batch_size ? free_slots : w->cfg->batch_size;
    /* Refill in chunks, not one job per query, unless nothing is running. */
    unsigned chunk = w->limit / 4 ? w->limit / 4 : 1;
    if (w->claims_inflight && !w->backlog) {
        w->claim_again = true; /* the answer in flight decides */
        return;
    }
    if (w->claims_inflight == WORKER_CLAIMS_INFLIGHT) {
        w->claim_again = true;
        return;
    }
    if (want == 0 || (busy && want < chunk && want < w->cfg->batch_size))
        return;
    struct claim *c = &w->claims[w->claims[0].busy ? 1 : 0];
    loop_timer_cancel(w->loop, &w->poll_timer);
    c->asked = want;
    snprintf(c->limit, sizeof(c->limit), "%u", want);
    c->busy = true;
    w->claims_inflight++;
    w->claiming += want;
    pg_query_submit(&w->pg, &c->q);
}

static void on_poll(struct loop *l, struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, poll_timer));
    want_claim(w);
}

static void on_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct worker *w = lis->data;
    if (!payload) {
        LOG(LOG_INFO, "worker listening for new jobs", L_STR("channel", "trireme_jobs"),
            L_INT("loop", w->loop->id));
    }
    want_claim(w);
}

static void on_cancel_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct worker *w = lis->data;
    if (!payload)
        return;
    long long id = atoll(payload);
    for (struct job_run *r = w->runs; r; r = r->next)
        if (r->id == id && !r->lost) {
            LOG(LOG_INFO, "job cancelled while running, stopping it", L_INT("job_id", id));
            r->cancelled = r->lost = true;
            free_slot(w, r);
            job_request_stop(r);
            want_claim(w);
            return;
        }
}

/* --- heartbeat and reaper ----------------------------------------------- */

/* "{1,2,3}": the ids of the runs still held, stamped with gen when given. */
static char *ids_literal(struct worker *w, uint64_t gen)
{
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    s[n++] = '{';
    for (struct job_run *r = w->runs; r; r = r->next) {
        if (r->lost)
            continue;
        if (cap - n < 32)
            s = realloc(s, cap *= 2);
        n += (size_t)snprintf(s + n, cap - n, "%s%lld", n > 1 ? "," : "", (long long)r->id);
        if (gen)
            r->hb_gen = gen;
    }
    s[n++] = '}';
    s[n] = 0;
    return s;
}

static void on_heartbeat(struct pg_query *q, PGresult *res, const char *err)
{
    struct worker *w = (struct worker *)((char *)q - offsetof(struct worker, hb_q));
    w->hb_inflight = false;
    free(w->hb_ids);
    w->hb_ids = NULL;
    if (err) {
        LOG(LOG_WARN, "worker: lease renewal failed", L_STR("error", err));
        return;
    }
    /* Runs that were in this renewal but not renewed lost their lease. */
    int rows = PQntuples(res);
    for (struct job_run *r = w->runs, *next; r; r = next) {
        next = r->next; /* job_request_stop below may free r */
        if (r->lost || r->hb_gen != w->hb_gen)
            continue;
        bool kept = false;
        for (int k = 0; k < rows && !kept; k++)
            kept = atoll(PQgetvalue(res, k, 0)) == r->id;
        if (!kept) {
            LOG(LOG_WARN, "job lease lost (cancelled or taken over), stopping it",
                L_INT("job_id", r->id));
            r->lost = true;
            free_slot(w, r);
            job_request_stop(r);
        }
    }
    want_claim(w);
    maybe_finish_drain(w);
}

static void on_hb_timer(struct loop *l, struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, hb_timer));
    loop_timer_in(l, &w->hb_timer, w->cfg->lease_ms / 3);
    if (w->hb_inflight || !w->runs || w->handing_back)
        return;
    w->hb_ids = ids_literal(w, ++w->hb_gen);
    if (!strcmp(w->hb_ids, "{}")) {
        free(w->hb_ids);
        w->hb_ids = NULL;
        return;
    }
    w->hb_vals[0] = w->hb_ids;
    w->hb_inflight = true;
    pg_query_submit(&w->pg, &w->hb_q);
}

static void on_reaped(struct pg_query *q, PGresult *res, const char *err)
{
    struct worker *w = (struct worker *)((char *)q - offsetof(struct worker, reap_q));
    w->reap_inflight = false;
    maybe_finish_drain(w);
    if (err) {
        LOG(LOG_WARN, "worker: reaping expired leases failed", L_STR("error", err));
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        LOG(LOG_WARN, "lease expired, job returned to the queue",
            L_STR("job_id", PQgetvalue(res, i, 0)), L_STR("status", PQgetvalue(res, i, 1)));
    if (PQntuples(res))
        want_claim(w);
}

static void on_reap_timer(struct loop *l, struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, reap_timer));
    uint64_t every = w->cfg->lease_ms / 2;
    loop_timer_in(l, &w->reap_timer, every / 2 + loop_random(l) % (every / 2 + 1));
    if (w->reap_inflight || w->draining)
        return;
    w->reap_inflight = true;
    pg_query_submit(&w->pg, &w->reap_q);
}

/* --- drain -------------------------------------------------------------- */

static void close_worker(struct worker *w)
{
    if (w->closed)
        return;
    w->closed = true;
    loop_timer_cancel(w->loop, &w->hb_timer);
    loop_timer_cancel(w->loop, &w->reap_timer);
    loop_timer_cancel(w->loop, &w->poll_timer);
    loop_timer_cancel(w->loop, &w->drain_timer);
    loop_timer_cancel(w->loop, &w->flush_timer);
    pg_pool_close(&w->pg);
    if (w->has_redis)
        redis_client_close(&w->redis);
    leader_worker_drained(w->loop->srv);
}

static void maybe_finish_drain(struct worker *w)
{
    if (!w->draining || w->closed || w->handing_back)
        return;
    if (w->running || w->claims_inflight || w->due_inflight || w->hb_inflight || w->reap_inflight)
        return;
    if (json_array_size(w->done_ok) || json_array_size(w->done_fail)) {
        on_flush_timer(w->loop, &w->flush_timer);
        return;
    }
    if (w->flushes_inflight)
        return;
    LOG(LOG_INFO, "worker drained", L_INT("loop", w->loop->id));
    close_worker(w);
}

static void on_handed_back(struct pg_query *q, PGresult *res, const char *err)
{
    struct worker *w = (struct worker *)((char *)q - offsetof(struct worker, back_q));
    if (err)
        LOG(LOG_ERROR,
            "worker: handing back unfinished jobs failed; they return when their "
            "leases expire",
            L_STR("error", err));
    else
        LOG(LOG_WARN, "grace period ending: unfinished jobs handed back to the queue",
            L_INT("jobs", PQntuples(res)));
    free(w->back_ids);
    w->back_ids = NULL;
    w->handing_back = false;
    /* Completions recorded before the hand-back still go out. */
    w->running = 0;
    maybe_finish_drain(w);
}

static void on_drain_deadline(struct loop *l, struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, drain_timer));
    if (w->closed || !w->running)
        return;
    w->back_ids = ids_literal(w, 0);
    w->handing_back = true; /* before stopping runs: the drain must wait for it */
    /* job_request_stop may finish (and free) the run: step with a saved next. */
    for (struct job_run *r = w->runs, *next; r; r = next) {
        next = r->next;
        if (!r->lost) {
            r->lost = true;
            job_request_stop(r);
        }
    }
    w->back_vals[0] = w->back_ids;
    w->back_vals[1] = w->id;
    pg_query_submit(&w->pg, &w->back_q);
}

/* Fix (e2e test_worker_drains_promptly_without_database): with no database
 * connection up, the claims, due check, reaper and heartbeat this loop has
 * queued wait in the pool until the database returns, and the drain waited
 * for them: an idle worker sat out the whole --grace on SIGTERM. With no
 * connection up none of them has been sent (a connection that drops fails
 * or re-queues what it had sent), so forgetting them loses nothing. */
static void abandon_unsent(struct worker *w)
{
    if (w->pg.ready)
        return;
    for (int i = 0; i < WORKER_CLAIMS_INFLIGHT; i++) {
        struct claim *c = &w->claims[i];
        if (c->busy) {
            pg_query_abandon(&w->pg, &c->q);
            c->busy = false;
            w->claims_inflight--;
            w->claiming -= c->asked;
        }
    }
    if (w->due_inflight) {
        pg_query_abandon(&w->pg, &w->due_q);
        w->due_inflight = false;
    }
    if (w->reap_inflight) {
        pg_query_abandon(&w->pg, &w->reap_q);
        w->reap_inflight = false;
    }
    if (w->hb_inflight) {
        pg_query_abandon(&w->pg, &w->hb_q);
        w->hb_inflight = false;
        free(w->hb_ids);
        w->hb_ids = NULL;
    }
}

static void worker_stop(struct loop *l)
{
    if (l->srv->cfg->queue_backend == QUEUE_REDIS) {
        queue_redis_stop(l);
        return;
    }
    struct worker *w = l->modules[MODULE_WORKER];
    if (!w || w->draining)
        return;
    w->draining = true;
    loop_timer_cancel(l, &w->poll_timer);
    abandon_unsent(w);
    LOG(LOG_INFO, "worker draining: no new jobs, waiting for running ones",
        L_INT("running", w->running), L_INT("loop", l->id));
    /* Hand back what is still running shortly before the grace period ends,
     * while there is still time to say so to the database. */
    uint64_t grace = w->cfg->grace_ms, margin = grace / 10 < 1000 ? grace / 10 : 1000;
    loop_timer_in(l, &w->drain_timer, grace - margin);
    maybe_finish_drain(w);
}

/* --- set-up ------------------------------------------------------------- */

static void queues_literal(const char *csv, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '{';
    for (const char *p = csv; *p;) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t l = len;
        while (l && *s == ' ')
            s++, l--;
        while (l && s[l - 1] == ' ')
            l--;
        if (l && n + l + 4 < cap) {
            if (n > 1)
                out[n++] = ',';
            out[n++] = '"';
            for (size_t i = 0; i < l; i++) {
                if (s[i] == '"' || s[i] == '\\')
                    out[n++] = '\\';
                out[n++] = s[i];
            }
            out[n++] = '"';
        }
        p += len + (p[len] ? 1 : 0);
    }
    out[n++] = '}';
    out[n] = 0;
}

static int load_sql_statements(const char *path, struct sql_statements *st)
{
    if (!*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        LOG(LOG_ERROR, "worker: cannot read --sql-jobs file", L_STR("path", path),
            L_STR("error", strerror(errno)));
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            LOG(LOG_ERROR, "worker: --sql-jobs line is not `name: SQL`", L_STR("path", path),
                L_INT("line", lineno));
            fclose(f);
            return -1;
        }
        *colon = 0;
        char *sql = colon + 1;
        while (*sql == ' ')
            sql++;
        st->v = realloc(st->v, (st->n + 1) * sizeof(*st->v));
        st->v[st->n].name = strdup(line);
        st->v[st->n].sql = strdup(sql);
        st->n++;
    }
    fclose(f);
    LOG(LOG_INFO, "worker: named SQL statements loaded", L_STR("path", path),
        L_INT("count", st->n));
    return 0;
}

static const char *worker_unmet(const struct config *cfg)
{
    if (cfg->queue_backend == QUEUE_REDIS)
        return *cfg->redis_url ? NULL : "--queue-backend=redis needs REDIS_URL";
    return *cfg->database_url ? NULL : "it needs DATABASE_URL (PostgreSQL)";
}

static int worker_init(struct server *s)
{
    struct worker_shared *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return -1;
    s->module_state[MODULE_WORKER] = sh;
    char msg[200];
    if (kind_limits_parse(s->cfg->kind_limits, &sh->limits, msg, sizeof(msg))) {
        LOG(LOG_ERROR, "--kind-limits is not valid", L_STR("error", msg));
        return -1;
    }
    return load_sql_statements(s->cfg->sql_jobs, &sh->sql);
}

static int worker_start(struct loop *l)
{
    struct server *s = l->srv;
    const struct config *cfg = s->cfg;
    if (cfg->queue_backend == QUEUE_REDIS)
        return queue_redis_start(l);
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    l->modules[MODULE_WORKER] = w;
    w->loop = l;
    w->cfg = cfg;
    unsigned loops = (unsigned)s->nloops;
    w->limit = cfg->concurrency / loops + (cfg->concurrency % loops > (unsigned)l->id);
    if (!w->limit)
        w->limit = 1;
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%d:%d:%08llx", host, getpid(), l->id,
             (unsigned long long)(loop_random(l) & 0xffffffffu));
    queues_literal(cfg->queues, w->queues, sizeof(w->queues));
    snprintf(w->lease, sizeof(w->lease), "%llu", (unsigned long long)cfg->lease_ms);
    w->done_ok = json_array();
    w->done_fail = json_array();
    w->flush_timer.fn = on_flush_timer;
    w->poll_timer.fn = on_poll;
    w->hb_timer.fn = on_hb_timer;
    w->reap_timer.fn = on_reap_timer;
    w->drain_timer.fn = on_drain_deadline;

    for (int i = 0; i < WORKER_CLAIMS_INFLIGHT; i++) {
        struct claim *c = &w->claims[i];
        c->w = w;
        c->vals[0] = w->queues;
        c->vals[1] = c->limit;
        c->vals[2] = w->id;
        c->vals[3] = w->lease;
        c->q =
            (struct pg_query){.fn = on_claimed, .sql = SQL_CLAIM, .nparams = 4, .values = c->vals};
    }
    w->due_vals[0] = w->queues;
    w->due_q = (struct pg_query){
        .fn = on_due, .sql = SQL_NEXT_DUE, .nparams = 1, .values = w->due_vals, .retry_safe = true};
    w->hb_vals[1] = w->id;
    w->hb_vals[2] = w->lease;
    w->hb_q = (struct pg_query){.fn = on_heartbeat,
                                .sql = SQL_HEARTBEAT,
                                .nparams = 3,
                                .values = w->hb_vals,
                                .retry_safe = true};
    w->reap_q = (struct pg_query){.fn = on_reaped, .sql = SQL_REAP, .nparams = 0};
    w->back_q = (struct pg_query){.fn = on_handed_back,
                                  .sql = SQL_HAND_BACK,
                                  .nparams = 2,
                                  .values = w->back_vals,
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
        .max_inflight = 64,
    };
    if (pg_pool_init(&w->pg, l, &pc) < 0)
        return -ENOMEM;
    w->lis_jobs = (struct pg_listener){.channel = "trireme_jobs", .fn = on_notify, .data = w};
    w->lis_cancel =
        (struct pg_listener){.channel = "trireme_cancel", .fn = on_cancel_notify, .data = w};
    if (listen_url) {
        pg_listen(&w->pg, &w->lis_jobs);
        pg_listen(&w->pg, &w->lis_cancel);
    } else if (l->id == 0) {
        LOG(LOG_WARN,
            "worker: no direct database URL for LISTEN behind a transaction pooler; "
            "polling every --poll-interval instead (set DATABASE_DIRECT_URL)",
            L_INT("poll_interval_ms", cfg->poll_interval_ms));
    }
    const struct worker_shared *sh = s->module_state[MODULE_WORKER];
    if (sh->limits.n) {
        struct redis_url u;
        const char *err;
        redis_url_parse(cfg->redis_url, &u, &err); /* validated at config load */
        if (redis_client_init(&w->redis, l, &u, REDIS_COMMANDS, "worker") < 0)
            return -1;
        w->has_redis = true;
    }
    loop_timer_in(l, &w->hb_timer, cfg->lease_ms / 3);
    loop_timer_in(l, &w->reap_timer, 1000 + loop_random(l) % 1000);
    LOG(LOG_INFO, "worker started", L_STR("worker_id", w->id), L_STR("queues", cfg->queues),
        L_INT("concurrency", w->limit), L_INT("batch_size", cfg->batch_size),
        L_INT("lease_ms", cfg->lease_ms));
    want_claim(w);
    return 0;
}

static void worker_wake(struct loop *l)
{
    if (l->srv->cfg->queue_backend == QUEUE_REDIS) {
        queue_redis_wake(l);
        return;
    }
    struct worker *w = l->modules[MODULE_WORKER];
    if (w && w->cfg->worker_mode_leader)
        want_claim(w); /* leadership may have changed */
}

static void worker_cleanup(struct server *s)
{
    if (s->cfg->queue_backend == QUEUE_REDIS)
        queue_redis_cleanup(s);
    for (int i = 0; s->cfg->queue_backend != QUEUE_REDIS && i < s->nloops; i++) {
        struct worker *w = s->loops[i].modules[MODULE_WORKER];
        if (!w)
            continue;
        while (w->runs)
            run_free(w, w->runs);
        pg_pool_free(&w->pg);
        if (w->has_redis)
            redis_client_free(&w->redis);
        json_decref(w->done_ok);
        json_decref(w->done_fail);
        free(w->hb_ids);
        free(w->back_ids);
        free(w);
        s->loops[i].modules[MODULE_WORKER] = NULL;
    }
    struct worker_shared *sh = s->module_state[MODULE_WORKER];
    for (unsigned i = 0; sh && i < sh->sql.n; i++) {
        free(sh->sql.v[i].name);
        free(sh->sql.v[i].sql);
    }
    if (sh)
        free(sh->sql.v);
    free(sh);
    s->module_state[MODULE_WORKER] = NULL;
}

const struct module worker_module = {
    .name = "worker",
    .summary = "runs jobs from PostgreSQL (FOR UPDATE SKIP LOCKED) or Redis Streams: leases, "
               "retries, time limits",
    .is_role = true,
    .unmet = worker_unmet,
    .init = worker_init,
    .start = worker_start,
    .stop = worker_stop,
    .wake = worker_wake,
    .cleanup = worker_cleanup,
};
