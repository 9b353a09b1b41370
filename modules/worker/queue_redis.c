/*
 * queue_redis.c - the worker role on --queue-backend=redis.
 *
 * Jobs arrive through a Stream per queue read by the consumer group
 * "trireme" (scripts and keys: modules/rqueue/rqueue_lua.c). Per loop:
 *
 *   blk   XREADGROUP ... BLOCK on a connection of its own (a blocking
 *         command holds its connection); one read in flight, the next sent
 *         as soon as the last answered while slots are free.
 *   cmd   every script: START for each batch read (one EVALSHA marks them
 *         all running), COMPLETE for the outcomes of a loop turn, HEARTBEAT
 *         (XCLAIM to ourselves renews the leases of running entries),
 *         PROMOTE (due delayed and retried jobs onto their streams, on a
 *         timer), XAUTOCLAIM of entries idle past --lease (dead consumers).
 *   sub   SUBSCRIBE trireme:cancel: a cancelled running job stops at once.
 *
 * Runs use the same job kinds as the PostgreSQL backend through
 * struct job_backend; time limits, retries with backoff, fencing (worker id,
 * attempt and entry are checked by the completion script) and the drain
 * (hand back what still runs shortly before --grace ends) work the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/jobs/job_input.h"
#include "modules/leader/leader.h"
#include "modules/limits/gcra.h"
#include "modules/registry.h"
#include "modules/rqueue/rqueue.h"
#include "modules/worker/kind_limits.h"
#include "modules/worker/worker.h"

#define RQ_MAX_QUEUES       32
#define HARD_LIMIT_EXTRA_MS 5000 /* after the soft limit, before the slot is taken back */
#define RETRY_BASE_MS       1000
#define RETRY_MAX_MS        (3600 * 1000)
#define BLOCK_EXTRA_MS      5000 /* a blocked read's deadline beyond its BLOCK time */
#define FETCH_RETRY_MS      250  /* after a failed read, before the next */
#define PROMOTE_MAX         1000 /* delayed jobs moved per queue and call */

struct rqw;

struct start_entry {
    long long id;
    unsigned qix;
    char entry[48];
};

/* One START script: the deliveries it asked to start. */
struct start_call {
    struct rq_call c; /* first */
    struct rqw *w;
    struct start_entry *v;
    unsigned n;
    bool claimed; /* from XAUTOCLAIM: a dead consumer's */
};

struct claim_cmd {
    struct redis_cmd cmd; /* first */
    struct rqw *w;
    unsigned qix;
};

struct rqw {
    struct loop *loop;
    const struct config *cfg;
    struct redis_client cmd, blk, sub;
    struct pg_pool pg; /* the sql kind's, when DATABASE_URL is set */
    bool has_pg;
    struct rq_shas shas;
    char id[128];
    char lease[24], ttl[24];
    char qname[RQ_MAX_QUEUES][JOB_NAME_MAX + 1];
    char qkey[RQ_MAX_QUEUES][JOB_NAME_MAX + 16];
    unsigned nq;
    unsigned limit, running, starting;
    struct job_run *runs;

    /* reading */
    struct redis_cmd group_cmd[RQ_MAX_QUEUES];
    unsigned groups_pending;
    bool groups_ready;
    struct redis_cmd id_cmd, read_cmd;
    long long blk_id; /* CLIENT ID of the blocking connection, for CLIENT UNBLOCK */
    bool id_inflight, reading;
    struct timer fetch_timer;
    unsigned starts_inflight;

    struct claim_cmd claim[RQ_MAX_QUEUES];
    unsigned claims_inflight;
    struct timer claim_timer;

    struct rq_call promote;
    bool promote_inflight;
    struct timer promote_timer;

    struct rq_call hb;
    bool hb_inflight;
    uint64_t hb_gen;
    struct timer hb_timer;

    struct redis_cmd subscribe;

    /* outcomes waiting for the next COMPLETE: 7 arguments each */
    struct rq_args done;
    unsigned ndone;
    struct timer flush_timer;
    unsigned flushes_inflight, marks_inflight;

    bool has_limits;
    bool draining, handing_back, closed;
    struct timer drain_timer;
    struct redis_cmd unblock_cmd;
    bool unblock_inflight;
};

static void want_fetch(struct rqw *w);
static void maybe_finish_drain(struct rqw *w);

static struct rqw *of(struct job_run *r)
{
    return r->owner;
}

/* --- outcomes ----------------------------------------------------------- */

static void lose(struct rqw *w, struct job_run *r, const char *why, bool cancelled);

static void on_marked(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->marks_inflight--;
    if (err) {
        /* Not written: the heartbeat writes the start of what still runs,
         * a completion writes start and outcome together. */
        LOG(LOG_WARN, "worker: recording job starts failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            long long id = atoll(reply->element[i]->str ? reply->element[i]->str : "0");
            for (struct job_run *r = w->runs; r; r = r->next)
                if (r->id == id && !r->lost) {
                    lose(w, r, "job cancelled or re-delivered before it started, stopping it",
                         true);
                    break;
                }
        }
    }
    free(c);
    want_fetch(w);
    maybe_finish_drain(w);
}

/* Starts of fresh deliveries still running at the end of their turn. */
static void mark_started(struct rqw *w)
{
    struct rq_args body = {0};
    unsigned n = 0;
    for (struct job_run *r = w->runs; r; r = r->next) {
        if (r->recorded || r->lost)
            continue;
        r->recorded = true;
        rq_args_addll(&body, r->id);
        rq_args_adds(&body, r->ref);
        rq_args_addll(&body, r->attempt);
        n++;
    }
    if (!n)
        return;
    struct rq_call *c = calloc(1, sizeof(*c));
    c->data = w;
    rq_args_adds(&c->args, w->id);
    rq_args_addll(&c->args, n);
    const char **v = malloc((size_t)body.n * sizeof(*v));
    size_t *l = malloc((size_t)body.n * sizeof(*l));
    rq_args_vectors(&body, v, l);
    for (int i = 0; i < body.n; i++)
        rq_args_add(&c->args, v[i], l[i]);
    free(v);
    free(l);
    rq_args_free(&body);
    c->cmd.retry_safe = true; /* idempotent */
    w->marks_inflight++;
    rq_eval(&w->cmd, c, &w->shas, RQ_MARK, on_marked);
}

static void on_completed(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->flushes_inflight--;
    if (err) {
        LOG(LOG_ERROR,
            "worker: recording job results in Redis failed; the jobs will be re-run "
            "after their leases expire",
            L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        /* Fenced out: cancelled, or its lease expired and another worker
         * took it over. The rerun's result stands. */
        for (size_t i = 0; i < reply->elements; i++)
            LOG(LOG_WARN, "completion refused: job no longer held by this worker",
                L_STR("job_id", reply->element[i]->str ? reply->element[i]->str : "?"),
                L_STR("worker_id", w->id));
    }
    free(c);
    maybe_finish_drain(w);
}

static void flush_done(struct rqw *w)
{
    if (!w->ndone)
        return;
    struct rq_call *c = calloc(1, sizeof(*c));
    c->data = w;
    rq_args_adds(&c->args, w->id);
    rq_args_adds(&c->args, w->ttl);
    rq_args_addll(&c->args, w->ndone);
    const char **v = malloc((size_t)w->done.n * sizeof(*v));
    size_t *l = malloc((size_t)w->done.n * sizeof(*l));
    rq_args_vectors(&w->done, v, l);
    for (int i = 0; i < w->done.n; i++)
        rq_args_add(&c->args, v[i], l[i]);
    free(v);
    free(l);
    rq_args_free(&w->done);
    w->ndone = 0;
    c->cmd.retry_safe = true; /* fenced: a second run of it refuses what the first did */
    w->flushes_inflight++;
    rq_eval(&w->cmd, c, &w->shas, RQ_COMPLETE, on_completed);
}

/* End of a loop turn: starts first, then outcomes, on one connection, so
 * Redis applies them in that order. */
static void on_flush_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, flush_timer));
    mark_started(w);
    flush_done(w);
}

static uint64_t retry_delay_ms(struct rqw *w, int attempt)
{
    uint64_t d = RETRY_BASE_MS;
    for (int i = 1; i < attempt && d < RETRY_MAX_MS; i++)
        d *= 2;
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    return d * 3 / 4 + loop_random(w->loop) % (d / 2 + 1); /* +-25% jitter */
}

static void record(struct rqw *w, struct job_run *r, const char *how, const char *data, size_t len,
                   uint64_t delay_ms)
{
    rq_args_addll(&w->done, r->id);
    rq_args_adds(&w->done, w->qname[r->queue_ix]);
    rq_args_adds(&w->done, r->ref);
    rq_args_addll(&w->done, r->attempt);
    rq_args_adds(&w->done, how);
    rq_args_add(&w->done, data, len);
    rq_args_addll(&w->done, (long long)delay_ms);
    w->ndone++;
    if (!w->handing_back)
        loop_timer_in(w->loop, &w->flush_timer, 0);
}

static void record_outcome(struct rqw *w, struct job_run *r, json_t *result, const char *error,
                           bool permanent)
{
    if (error) {
        record(w, r, permanent ? "perm" : "fail", error, strlen(error),
               retry_delay_ms(w, r->attempt));
        return;
    }
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    record(w, r, "ok", text ? text : "null", text ? strlen(text) : 4, 0);
    free(text);
}

static void free_slot(struct rqw *w, struct job_run *r)
{
    if (!r->slot_freed) {
        r->slot_freed = true;
        w->running--;
    }
}

static void run_free(struct rqw *w, struct job_run *r)
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

static void rq_finish(struct job_run *r, json_t *result, const char *error, bool permanent)
{
    struct rqw *w = of(r);
    uint64_t ms = (w->loop->now_ns - r->started_ns) / 1000000;
    if (!r->lost) {
        record_outcome(w, r, result, error, permanent);
        if (error)
            LOG(LOG_WARN, "job failed", L_INT("job_id", r->id), L_STR("kind", r->kind->name),
                L_INT("attempt", r->attempt), L_INT("max_attempts", r->max_attempts),
                L_STR("error", error),
                L_BOOL("will_retry", !permanent && r->attempt < r->max_attempts),
                L_INT("duration_ms", ms));
        else
            LOG(LOG_INFO, "job completed", L_INT("job_id", r->id), L_STR("kind", r->kind->name),
                L_INT("attempt", r->attempt), L_INT("duration_ms", ms));
    } else if (r->cancelled) {
        LOG(LOG_INFO, "job stopped after cancellation", L_INT("job_id", r->id),
            L_INT("duration_ms", ms));
    }
    json_decref(result);
    free_slot(w, r);
    run_free(w, r);
    want_fetch(w);
    maybe_finish_drain(w);
}

static void on_progress_set(struct rq_call *c, redisReply *reply, const char *err)
{
    free(c);
}

static void rq_progress(struct job_run *r, int percent, const char *step)
{
    if (r->lost)
        return;
    struct rqw *w = of(r);
    struct rq_call *c = calloc(1, sizeof(*c));
    rq_args_addll(&c->args, r->id);
    rq_args_adds(&c->args, w->id);
    rq_args_addll(&c->args, r->attempt);
    rq_args_addll(&c->args, percent < 0 ? 0 : percent > 100 ? 100 : percent);
    rq_args_add(&c->args, step ? step : "", step ? strnlen(step, 255) : 0);
    rq_eval(&w->cmd, c, &w->shas, RQ_PROGRESS, on_progress_set);
}

static struct loop *rq_loop(struct job_run *r)
{
    return of(r)->loop;
}

static struct pg_pool *rq_pg(struct job_run *r)
{
    return of(r)->has_pg ? &of(r)->pg : NULL;
}

static const struct job_backend redis_backend = {
    .finish = rq_finish,
    .progress = rq_progress,
    .loop = rq_loop,
    .pg = rq_pg,
};

/* --- running ------------------------------------------------------------ */

static void request_stop(struct job_run *r)
{
    if (r->stop_requested)
        return;
    r->stop_requested = true;
    if (r->kind->stop)
        r->kind->stop(r);
}

static void on_soft_limit(struct loop *l, struct timer *t)
{
    struct job_run *r = (struct job_run *)((char *)t - offsetof(struct job_run, soft));
    LOG(LOG_WARN, "job reached its time limit, asking it to stop", L_INT("job_id", r->id),
        L_INT("timeout_ms", r->timeout_ms));
    loop_timer_in(l, &r->hard, HARD_LIMIT_EXTRA_MS);
    request_stop(r);
}

static void on_hard_limit(struct loop *l, struct timer *t)
{
    struct job_run *r = (struct job_run *)((char *)t - offsetof(struct job_run, hard));
    struct rqw *w = of(r);
    if (r->lost)
        return;
    char msg[128];
    snprintf(msg, sizeof(msg), "hard time limit: still running %d ms after its %llu ms limit",
             HARD_LIMIT_EXTRA_MS, (unsigned long long)r->timeout_ms);
    LOG(LOG_ERROR, "job did not stop; failing the attempt and freeing its slot",
        L_INT("job_id", r->id), L_STR("kind", r->kind->name));
    record_outcome(w, r, NULL, msg, false);
    r->lost = true; /* whatever it reports later is not written */
    free_slot(w, r);
    want_fetch(w);
}

static void run_start(struct job_run *r)
{
    r->started_ns = of(r)->loop->now_ns;
    loop_timer_in(of(r)->loop, &r->soft, r->timeout_ms);
    r->kind->start(r);
}

/* --kind-limits: the shared GCRA script; over the limit the job waits in
 * the delayed set without spending an attempt. */
struct kind_check {
    struct redis_cmd cmd;
    struct job_run *r;
};

static void on_kind_verdict(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct kind_check *k = (struct kind_check *)c;
    struct job_run *r = k->r;
    struct rqw *w = of(r);
    free(k);
    if (r->lost || w->draining) {
        if (!r->lost) {
            record(w, r, "back", "", 0, 0);
            r->lost = true;
        }
        rq_finish(r, NULL, NULL, false);
        return;
    }
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->integer == 1) {
        if (err)
            LOG(LOG_WARN, "kind limit check failed; running the job anyway", L_STR("error", err),
                L_INT("job_id", r->id));
        run_start(r);
        return;
    }
    long long wait = reply->element[1]->integer;
    LOG(LOG_DEBUG, "job deferred by its kind limit", L_INT("job_id", r->id),
        L_STR("kind", r->kind->name), L_INT("retry_in_ms", wait));
    record(w, r, "defer", "", 0, (uint64_t)(wait < 1 ? 1 : wait));
    r->lost = true; /* nothing else is written for this attempt */
    rq_finish(r, NULL, NULL, false);
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
    redis_submitv(&of(r)->cmd, &k->cmd, 6, argv);
}

/* One delivery to run: from a fresh entry's fields, or START's answer. */
struct delivery {
    long long id;
    unsigned qix;
    const char *entry;
    const char *kind, *payload, *timeout;
    size_t kind_len, payload_len, timeout_len;
    int attempt, max_attempts;
    bool recorded;
};

static void run_new(struct rqw *w, const struct delivery *d)
{
    struct job_run *r = calloc(1, sizeof(*r));
    r->be = &redis_backend;
    r->owner = w;
    r->id = d->id;
    r->queue_ix = d->qix;
    r->recorded = d->recorded;
    snprintf(r->ref, sizeof(r->ref), "%s", d->entry);
    r->attempt = d->attempt;
    r->max_attempts = d->max_attempts;
    char tmo[24] = "";
    if (d->timeout_len && d->timeout_len < sizeof(tmo))
        memcpy(tmo, d->timeout, d->timeout_len);
    r->timeout_ms = *tmo ? (uint64_t)strtoull(tmo, NULL, 10) : w->cfg->job_timeout_ms;
    if (!r->timeout_ms)
        r->timeout_ms = w->cfg->job_timeout_ms;
    r->started_ns = w->loop->now_ns;
    r->token = w->cfg->worker_mode_leader ? leader_token(w->loop->srv) : 0;
    r->soft.fn = on_soft_limit;
    r->hard.fn = on_hard_limit;
    r->next = w->runs;
    if (w->runs)
        w->runs->prev = r;
    w->runs = r;
    w->running++;
    r->kind = job_kind_find(d->kind ? d->kind : "", d->kind ? d->kind_len : 0);
    json_error_t je;
    r->payload = d->payload ? json_loadb(d->payload, d->payload_len, JSON_DECODE_ANY, &je) : NULL;
    if (!r->kind) {
        static const struct job_kind unknown = {.name = "unknown"};
        r->kind = &unknown;
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown job kind '%.*s' (not built into this worker)",
                 d->kind ? (int)(d->kind_len > 200 ? 200 : d->kind_len) : 0,
                 d->kind ? d->kind : "");
        rq_finish(r, NULL, msg, true);
        return;
    }
    if (!r->payload) {
        rq_finish(r, NULL, "payload is not valid JSON", true);
        return;
    }
    const struct kind_limits *kls = w->has_limits ? worker_kind_limits(w->loop->srv) : NULL;
    const struct kind_limit *kl = kls ? kind_limit_find(kls, r->kind->name) : NULL;
    if (kl) {
        check_kind_limit(r, kl);
        return;
    }
    run_start(r);
}

static void start_one(struct rqw *w, const struct start_entry *se, redisReply **f)
{
    struct delivery d = {
        .id = se->id,
        .qix = se->qix,
        .entry = se->entry,
        .kind = f[1]->type == REDIS_REPLY_STRING ? f[1]->str : NULL,
        .kind_len = f[1]->type == REDIS_REPLY_STRING ? f[1]->len : 0,
        .payload = f[2]->type == REDIS_REPLY_STRING ? f[2]->str : NULL,
        .payload_len = f[2]->type == REDIS_REPLY_STRING ? f[2]->len : 0,
        .timeout = f[5]->type == REDIS_REPLY_STRING ? f[5]->str : NULL,
        .timeout_len = f[5]->type == REDIS_REPLY_STRING ? f[5]->len : 0,
        .attempt = (int)f[3]->integer,
        .max_attempts = (int)f[4]->integer,
        .recorded = true,
    };
    run_new(w, &d);
}

/* A fresh entry (XREADGROUP >): its fields say how to run it. */
static void run_fresh(struct rqw *w, unsigned qix, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return; /* deleted meanwhile: nothing to run */
    const redisReply *f = e->element[1];
    struct delivery d = {.qix = qix, .entry = e->element[0]->str};
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (k->len == 2 && !strcmp(k->str, "id")) {
            d.id = atoll(v->str);
            continue;
        }
        if (k->len != 1)
            continue;
        switch (k->str[0]) {
        case 'k':
            d.kind = v->str, d.kind_len = v->len;
            break;
        case 'p':
            d.payload = v->str, d.payload_len = v->len;
            break;
        case 'a':
            d.attempt = atoi(v->str) + 1;
            break;
        case 'm':
            d.max_attempts = atoi(v->str);
            break;
        case 't':
            d.timeout = v->str, d.timeout_len = v->len;
            break;
        }
    }
    if (d.id <= 0)
        return;
    if (d.max_attempts < 1)
        d.max_attempts = 1;
    run_new(w, &d);
}

static void on_started(struct rq_call *c, redisReply *reply, const char *err)
{
    struct start_call *s = (struct start_call *)c;
    struct rqw *w = s->w;
    w->starting -= s->n;
    w->starts_inflight--;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 6) {
        /* Unknown whether they started: the entries stay in this consumer's
         * pending list and come back after --lease through XAUTOCLAIM. */
        LOG(LOG_WARN, "worker: starting jobs failed; they return after their lease",
            L_STR("error", err ? err : "unexpected reply"), L_INT("jobs", s->n));
    } else {
        size_t started = reply->elements / 6;
        if (started)
            LOG(LOG_WARN, "lease expired, jobs taken over from a stopped worker",
                L_INT("count", started), L_STR("worker_id", w->id));
        unsigned k = 0;
        for (size_t i = 0; i < started; i++) {
            redisReply **f = reply->element + i * 6;
            long long id = f[0]->type == REDIS_REPLY_STRING ? atoll(f[0]->str) : f[0]->integer;
            while (k < s->n && s->v[k].id != id)
                k++;
            if (k == s->n)
                break; /* the script answers in request order; never here */
            start_one(w, &s->v[k++], f);
        }
    }
    free(s->v);
    free(s);
    want_fetch(w);
    maybe_finish_drain(w);
}

/* Entries of one stream (an XREADGROUP or XAUTOCLAIM answer) into a START
 * call. Returns how many were added. */
static unsigned add_entries(struct start_call *s, unsigned qix, const redisReply *entries)
{
    unsigned added = 0;
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue; /* an entry deleted meanwhile: nothing to run */
        const redisReply *f = e->element[1];
        long long id = 0;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && !strcmp(f->element[k]->str, "id") &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                id = atoll(f->element[k + 1]->str);
        if (id <= 0)
            continue;
        struct start_entry *se = &s->v[s->n++];
        se->qix = qix;
        snprintf(se->entry, sizeof(se->entry), "%s", e->element[0]->str);
        se->id = id;
        rq_args_adds(&s->c.args, s->w->qname[qix]);
        rq_args_adds(&s->c.args, se->entry);
        rq_args_addll(&s->c.args, se->id);
        added++;
    }
    return added;
}

static struct start_call *start_new(struct rqw *w, size_t cap, bool claimed)
{
    struct start_call *s = calloc(1, sizeof(*s));
    s->w = w;
    s->claimed = claimed;
    s->v = calloc(cap ? cap : 1, sizeof(*s->v));
    s->c.data = w;
    rq_args_adds(&s->c.args, w->id);
    rq_args_adds(&s->c.args, w->ttl);
    rq_args_adds(&s->c.args, "0"); /* the count, set in start_send */
    return s;
}

static void start_send(struct rqw *w, struct start_call *s)
{
    if (!s->n) {
        rq_args_free(&s->c.args);
        free(s->v);
        free(s);
        return;
    }
    /* Replace the count placeholder (argument 2): rebuild the vector. */
    struct rq_args a = {0};
    const char **v = malloc((size_t)s->c.args.n * sizeof(*v));
    size_t *l = malloc((size_t)s->c.args.n * sizeof(*l));
    rq_args_vectors(&s->c.args, v, l);
    for (int i = 0; i < s->c.args.n; i++) {
        if (i == 2)
            rq_args_addll(&a, s->n);
        else
            rq_args_add(&a, v[i], l[i]);
    }
    free(v);
    free(l);
    rq_args_free(&s->c.args);
    s->c.args = a;
    w->starting += s->n;
    w->starts_inflight++;
    rq_eval(&w->cmd, &s->c, &w->shas, RQ_START, on_started);
}

/* --- reading ------------------------------------------------------------ */

static void ensure_groups(struct rqw *w);

static int queue_of(struct rqw *w, const char *key)
{
    for (unsigned i = 0; i < w->nq; i++)
        if (!strcmp(w->qkey[i], key))
            return (int)i;
    return -1;
}

static void on_read(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, read_cmd));
    w->reading = false;
    if (w->closed)
        return;
    if (err) {
        if (!strncmp(err, "NOGROUP", 7)) {
            /* The stream or its group is gone (a Redis without persistence
             * restarted, or a FLUSH): make them again. */
            LOG(LOG_WARN, "worker: consumer group missing, creating it again", L_STR("error", err));
            w->groups_ready = false;
            ensure_groups(w);
        } else if (!w->draining) {
            LOG(LOG_WARN, "worker: reading the job streams failed", L_STR("error", err));
            loop_timer_in(w->loop, &w->fetch_timer, FETCH_RETRY_MS);
        }
        maybe_finish_drain(w);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        size_t total = 0;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *s = reply->element[i];
            if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
                total += s->element[1]->elements;
        }
        if (total)
            LOG(LOG_INFO, "jobs fetched", L_INT("count", total), L_STR("worker_id", w->id));
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *s = reply->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
                s->element[0]->type != REDIS_REPLY_STRING ||
                s->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            int q = queue_of(w, s->element[0]->str);
            for (size_t k = 0; q >= 0 && k < s->element[1]->elements; k++)
                run_fresh(w, (unsigned)q, s->element[1]->element[k]);
        }
        /* Starts still running are recorded at the end of this turn. */
        loop_timer_in(w->loop, &w->flush_timer, 0);
    }
    want_fetch(w);
    maybe_finish_drain(w);
}

static void on_client_id(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, id_cmd));
    w->id_inflight = false;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER)
        w->blk_id = reply->integer;
}

static void want_fetch(struct rqw *w)
{
    if (w->draining || w->closed || w->reading || !w->groups_ready)
        return;
    /* Leader mode: standbys stay connected but fetch nothing. */
    if (w->cfg->worker_mode_leader && !leader_is(w->loop->srv))
        return;
    unsigned busy = w->running + w->starting;
    unsigned free_slots = w->limit > busy ? w->limit - busy : 0;
    unsigned want = free_slots < w->cfg->batch_size ? free_slots : w->cfg->batch_size;
    unsigned chunk = w->limit / 4 ? w->limit / 4 : 1;
    if (want == 0 || (busy && want < chunk && want < w->cfg->batch_size))
        return;
    loop_timer_cancel(w->loop, &w->fetch_timer);
    if (!w->blk_id && !w->id_inflight) {
        w->id_inflight = true;
        w->id_cmd = (struct redis_cmd){.fn = on_client_id};
        redis_submitv(&w->blk, &w->id_cmd, 2, (const char *[]){"CLIENT", "ID"});
    }
    /* COUNT is per stream: share the free slots among the queues. */
    unsigned per = want / w->nq ? want / w->nq : 1;
    char count[16], block[24];
    snprintf(count, sizeof(count), "%u", per);
    snprintf(block, sizeof(block), "%llu", (unsigned long long)w->cfg->poll_interval_ms);
    const char *argv[8 + 2 * RQ_MAX_QUEUES];
    int n = 0;
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = RQ_GROUP;
    argv[n++] = w->id;
    argv[n++] = "COUNT";
    argv[n++] = count;
    argv[n++] = "BLOCK";
    argv[n++] = block;
    argv[n++] = "STREAMS";
    for (unsigned i = 0; i < w->nq; i++)
        argv[n++] = w->qkey[i];
    for (unsigned i = 0; i < w->nq; i++)
        argv[n++] = ">";
    w->reading = true;
    w->read_cmd =
        (struct redis_cmd){.fn = on_read, .timeout_ms = w->cfg->poll_interval_ms + BLOCK_EXTRA_MS};
    redis_submitv(&w->blk, &w->read_cmd, n, argv);
}

static void on_blk_state(struct redis_client *cl, bool up)
{
    struct rqw *w = cl->data;
    if (!up)
        w->blk_id = 0; /* a new connection has a new id */
}

static void on_group(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    if (err && strncmp(err, "BUSYGROUP", 9)) {
        LOG(LOG_WARN, "worker: creating a consumer group failed; trying again",
            L_STR("error", err));
        w->groups_pending = 0; /* the others answer into a new round */
        loop_timer_in(w->loop, &w->fetch_timer, FETCH_RETRY_MS * 4);
        return;
    }
    if (w->groups_pending && !--w->groups_pending) {
        w->groups_ready = true;
        LOG(LOG_INFO, "worker listening for new jobs", L_STR("backend", "redis"),
            L_STR("queues", w->cfg->queues), L_INT("loop", w->loop->id));
        want_fetch(w);
    }
}

/* XGROUP CREATE ... 0 MKSTREAM per queue: from the start of the stream, so
 * jobs enqueued before any worker existed are read too. */
static void ensure_groups(struct rqw *w)
{
    if (w->groups_pending || w->closed)
        return;
    w->groups_pending = w->nq;
    for (unsigned i = 0; i < w->nq; i++) {
        w->group_cmd[i] = (struct redis_cmd){.fn = on_group, .data = w, .retry_safe = true};
        const char *argv[] = {"XGROUP", "CREATE", w->qkey[i], RQ_GROUP, "0", "MKSTREAM"};
        redis_submitv(&w->cmd, &w->group_cmd[i], 6, argv);
    }
}

static void on_fetch_timer_or_groups(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, fetch_timer));
    if (!w->groups_ready)
        ensure_groups(w);
    else
        want_fetch(w);
}

/* --- dead consumers, delayed jobs, leases, cancellation ----------------- */

static void on_autoclaimed(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct claim_cmd *cc = (struct claim_cmd *)c;
    struct rqw *w = cc->w;
    w->claims_inflight--;
    if (err) {
        if (strncmp(err, "NOGROUP", 7))
            LOG(LOG_WARN, "worker: XAUTOCLAIM failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 && !w->draining) {
        const redisReply *entries = reply->element[1];
        struct start_call *s = start_new(w, entries->elements, true);
        add_entries(s, cc->qix, entries);
        start_send(w, s);
    }
    maybe_finish_drain(w);
}

static void on_claim_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, claim_timer));
    uint64_t every = w->cfg->lease_ms / 2;
    loop_timer_in(l, t, every / 2 + loop_random(l) % (every / 2 + 1));
    if (w->draining || w->claims_inflight || !w->groups_ready)
        return;
    if (w->cfg->worker_mode_leader && !leader_is(w->loop->srv))
        return;
    unsigned busy = w->running + w->starting;
    unsigned free_slots = w->limit > busy ? w->limit - busy : 0;
    if (!free_slots)
        return;
    unsigned per = free_slots / w->nq ? free_slots / w->nq : 1;
    if (per > w->cfg->batch_size)
        per = w->cfg->batch_size;
    char count[16];
    snprintf(count, sizeof(count), "%u", per);
    for (unsigned i = 0; i < w->nq; i++) {
        struct claim_cmd *cc = &w->claim[i];
        cc->w = w;
        cc->qix = i;
        cc->cmd = (struct redis_cmd){.fn = on_autoclaimed};
        const char *argv[] = {"XAUTOCLAIM", w->qkey[i], RQ_GROUP, w->id,
                              w->lease,     "0-0",      "COUNT",  count};
        w->claims_inflight++;
        redis_submitv(&w->cmd, &cc->cmd, 8, argv);
    }
}

static void on_promoted(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->promote_inflight = false;
    uint64_t next = w->cfg->promote_interval_ms;
    if (err) {
        LOG(LOG_WARN, "worker: promoting delayed jobs failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        long long due = reply->element[1]->integer;
        if (due >= 0 && (uint64_t)due < next)
            next = due ? (uint64_t)due : 1;
    }
    if (!w->draining && !w->closed)
        loop_timer_in(w->loop, &w->promote_timer, next);
    maybe_finish_drain(w);
}

static void on_promote_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, promote_timer));
    if (w->promote_inflight || w->draining)
        return;
    memset(&w->promote, 0, sizeof(w->promote));
    w->promote.data = w;
    rq_args_addll(&w->promote.args, PROMOTE_MAX);
    for (unsigned i = 0; i < w->nq; i++)
        rq_args_adds(&w->promote.args, w->qname[i]);
    w->promote_inflight = true;
    rq_eval(&w->cmd, &w->promote, &w->shas, RQ_PROMOTE, on_promoted);
}

static void lose(struct rqw *w, struct job_run *r, const char *why, bool cancelled)
{
    LOG(LOG_WARN, why, L_INT("job_id", r->id));
    r->lost = true;
    r->cancelled = cancelled;
    free_slot(w, r);
    request_stop(r); /* may free r */
}

static void on_heartbeat(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->hb_inflight = false;
    if (err) {
        LOG(LOG_WARN, "worker: lease renewal failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            long long id = atoll(reply->element[i]->str ? reply->element[i]->str : "0");
            for (struct job_run *r = w->runs; r; r = r->next)
                if (r->id == id && !r->lost && r->hb_gen == w->hb_gen) {
                    lose(w, r, "job lease lost (cancelled or taken over), stopping it", false);
                    break;
                }
        }
    }
    want_fetch(w);
    maybe_finish_drain(w);
}

static void on_hb_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, hb_timer));
    loop_timer_in(l, t, w->cfg->lease_ms / 3);
    if (w->hb_inflight || !w->runs || w->handing_back)
        return;
    memset(&w->hb, 0, sizeof(w->hb));
    w->hb.data = w;
    rq_args_adds(&w->hb.args, w->id);
    rq_args_adds(&w->hb.args, "0");
    unsigned n = 0;
    w->hb_gen++;
    struct rq_args body = {0};
    for (struct job_run *r = w->runs; r; r = r->next) {
        if (r->lost || !r->recorded)
            continue;
        r->hb_gen = w->hb_gen;
        rq_args_addll(&body, r->id);
        rq_args_adds(&body, w->qname[r->queue_ix]);
        rq_args_adds(&body, r->ref);
        rq_args_addll(&body, r->attempt);
        n++;
    }
    if (!n) {
        rq_args_free(&w->hb.args);
        rq_args_free(&body);
        return;
    }
    rq_args_free(&w->hb.args);
    rq_args_adds(&w->hb.args, w->id);
    rq_args_addll(&w->hb.args, n);
    const char **v = malloc((size_t)body.n * sizeof(*v));
    size_t *len = malloc((size_t)body.n * sizeof(*len));
    rq_args_vectors(&body, v, len);
    for (int i = 0; i < body.n; i++)
        rq_args_add(&w->hb.args, v[i], len[i]);
    free(v);
    free(len);
    rq_args_free(&body);
    w->hb_inflight = true;
    rq_eval(&w->cmd, &w->hb, &w->shas, RQ_HEARTBEAT, on_heartbeat);
}

static void on_sub_push(struct redis_client *cl, redisReply *r)
{
    struct rqw *w = cl->data;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[0]->str ||
        strcmp(r->element[0]->str, "message") || !r->element[2]->str)
        return;
    long long id = atoll(r->element[2]->str);
    for (struct job_run *run = w->runs; run; run = run->next)
        if (run->id == id && !run->lost) {
            LOG(LOG_INFO, "job cancelled while running, stopping it", L_INT("job_id", id));
            run->cancelled = run->lost = true;
            free_slot(w, run);
            request_stop(run);
            want_fetch(w);
            return;
        }
}

static void on_subscribed(struct redis_cmd *c, redisReply *r, const char *err)
{
}

static void on_sub_state(struct redis_client *cl, bool up)
{
    struct rqw *w = cl->data;
    if (!up)
        return;
    w->subscribe = (struct redis_cmd){.fn = on_subscribed};
    redis_submitv(&w->sub, &w->subscribe, 2, (const char *[]){"SUBSCRIBE", RQ_PREFIX "cancel"});
}

/* --- drain -------------------------------------------------------------- */

static void close_worker(struct rqw *w)
{
    if (w->closed)
        return;
    w->closed = true;
    loop_timer_cancel(w->loop, &w->hb_timer);
    loop_timer_cancel(w->loop, &w->claim_timer);
    loop_timer_cancel(w->loop, &w->promote_timer);
    loop_timer_cancel(w->loop, &w->fetch_timer);
    loop_timer_cancel(w->loop, &w->drain_timer);
    loop_timer_cancel(w->loop, &w->flush_timer);
    redis_client_close(&w->blk);
    redis_client_close(&w->sub);
    redis_client_close(&w->cmd);
    if (w->has_pg)
        pg_pool_close(&w->pg);
    leader_worker_drained(w->loop->srv);
}

static void maybe_finish_drain(struct rqw *w)
{
    if (!w->draining || w->closed)
        return;
    if (w->running || w->reading || w->starts_inflight || w->claims_inflight ||
        w->promote_inflight || w->hb_inflight || w->unblock_inflight || w->marks_inflight)
        return;
    if (w->ndone) {
        w->handing_back = false;
        flush_done(w);
        return;
    }
    if (w->flushes_inflight)
        return;
    LOG(LOG_INFO, "worker drained", L_INT("loop", w->loop->id));
    close_worker(w);
}

static void on_drain_deadline(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, drain_timer));
    if (w->closed || !w->running)
        return;
    /* Hand back what still runs, in one COMPLETE, while there is time to
     * say so: the next worker starts them now, not after --lease. */
    w->handing_back = true;
    unsigned n = 0;
    for (struct job_run *r = w->runs, *next; r; r = next) {
        next = r->next; /* request_stop may free r */
        if (r->lost)
            continue;
        record(w, r, "back", "", 0, 0);
        n++;
        r->lost = true;
        request_stop(r);
    }
    LOG(LOG_WARN, "grace period ending: unfinished jobs handed back to the queue",
        L_INT("jobs", n));
    w->running = 0; /* what the kinds still report is not written */
    w->handing_back = false;
    flush_done(w);
    maybe_finish_drain(w);
}

static void on_unblocked(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, unblock_cmd));
    w->unblock_inflight = false;
    maybe_finish_drain(w);
}

void queue_redis_stop(struct loop *l)
{
    struct rqw *w = l->modules[MODULE_WORKER];
    if (!w || w->draining)
        return;
    w->draining = true;
    loop_timer_cancel(l, &w->fetch_timer);
    loop_timer_cancel(l, &w->promote_timer);
    LOG(LOG_INFO, "worker draining: no new jobs, waiting for running ones",
        L_INT("running", w->running), L_INT("loop", l->id));
    /* A read blocked in Redis would hold the drain for up to its BLOCK
     * time: wake it (it answers nil, having delivered nothing). */
    if (w->reading && w->blk_id) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", w->blk_id);
        w->unblock_inflight = true;
        w->unblock_cmd = (struct redis_cmd){.fn = on_unblocked, .timeout_ms = 1000};
        redis_submitv(&w->cmd, &w->unblock_cmd, 3, (const char *[]){"CLIENT", "UNBLOCK", id});
    }
    uint64_t grace = w->cfg->grace_ms, margin = grace / 10 < 1000 ? grace / 10 : 1000;
    loop_timer_in(l, &w->drain_timer, grace - margin);
    maybe_finish_drain(w);
}

/* --- set-up ------------------------------------------------------------- */

static void parse_queues(struct rqw *w, const char *csv)
{
    for (const char *p = csv; *p && w->nq < RQ_MAX_QUEUES;) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t n = len;
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (n && n <= JOB_NAME_MAX) {
            memcpy(w->qname[w->nq], s, n);
            w->qname[w->nq][n] = 0;
            snprintf(w->qkey[w->nq], sizeof(w->qkey[0]), RQ_PREFIX "q:%s", w->qname[w->nq]);
            w->nq++;
        }
        p += len + (p[len] ? 1 : 0);
    }
}

int queue_redis_start(struct loop *l)
{
    struct server *s = l->srv;
    const struct config *cfg = s->cfg;
    struct rqw *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
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
    snprintf(w->lease, sizeof(w->lease), "%llu", (unsigned long long)cfg->lease_ms);
    snprintf(w->ttl, sizeof(w->ttl), "%llu", (unsigned long long)cfg->result_ttl_ms);
    parse_queues(w, cfg->queues);
    if (!w->nq) {
        LOG(LOG_ERROR, "worker: --queues names no queue", L_STR("queues", cfg->queues));
        return -1;
    }
    rq_shas_init(&w->shas);
    w->flush_timer.fn = on_flush_timer;
    w->fetch_timer.fn = on_fetch_timer_or_groups;
    w->claim_timer.fn = on_claim_timer;
    w->promote_timer.fn = on_promote_timer;
    w->hb_timer.fn = on_hb_timer;
    w->drain_timer.fn = on_drain_deadline;
    w->has_limits = worker_kind_limits(s) != NULL;

    struct redis_url u;
    const char *err;
    redis_url_parse(cfg->redis_url, &u, &err); /* validated at config load */
    if (redis_client_init(&w->cmd, l, &u, REDIS_COMMANDS, "queue") < 0)
        return -1;
    w->blk.data = w;
    w->blk.on_state = on_blk_state;
    if (redis_client_init(&w->blk, l, &u, REDIS_COMMANDS, "queue-read") < 0)
        return -1;
    w->sub.data = w;
    w->sub.on_push = on_sub_push;
    w->sub.on_state = on_sub_state;
    if (redis_client_init(&w->sub, l, &u, REDIS_PUBSUB, "queue-cancel") < 0)
        return -1;
    if (*cfg->database_url) {
        struct pg_pool_config pc = {
            .conninfo = cfg->database_url, .size = cfg->pg_pool, .max_inflight = 64};
        if (pg_pool_init(&w->pg, l, &pc) < 0)
            return -1;
        w->has_pg = true;
    }
    ensure_groups(w);
    loop_timer_in(l, &w->hb_timer, cfg->lease_ms / 3);
    loop_timer_in(l, &w->claim_timer, 1000 + loop_random(l) % 1000);
    loop_timer_in(l, &w->promote_timer, 0);
    LOG(LOG_INFO, "worker started", L_STR("backend", "redis"), L_STR("worker_id", w->id),
        L_STR("queues", cfg->queues), L_INT("concurrency", w->limit),
        L_INT("batch_size", cfg->batch_size), L_INT("lease_ms", cfg->lease_ms),
        L_INT("result_ttl_ms", cfg->result_ttl_ms));
    return 0;
}

void queue_redis_wake(struct loop *l)
{
    struct rqw *w = l->modules[MODULE_WORKER];
    if (w && w->cfg->worker_mode_leader)
        want_fetch(w); /* leadership may have changed */
}

void queue_redis_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        struct rqw *w = s->loops[i].modules[MODULE_WORKER];
        if (!w)
            continue;
        while (w->runs)
            run_free(w, w->runs);
        redis_client_free(&w->blk);
        redis_client_free(&w->sub);
        redis_client_free(&w->cmd);
        if (w->has_pg)
            pg_pool_free(&w->pg);
        rq_args_free(&w->done);
        rq_args_free(&w->promote.args);
        rq_args_free(&w->hb.args);
        free(w);
        s->loops[i].modules[MODULE_WORKER] = NULL;
    }
}
