/*
 * queue_redis_run.c - runs on --queue-backend=redis: a delivery becomes a
 * job_run of the same job kinds the PostgreSQL backend uses (through struct
 * job_backend), with its time limits and --kind-limits; at the end of each
 * loop turn the starts still running are written in one MARK and every
 * outcome in one COMPLETE (modules/rqueue/rqueue_lua.c).
 */
#include "modules/worker/queue_redis.h"

/* --- outcomes ----------------------------------------------------------- */

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
                    rqw_lose(w, r, "job cancelled or re-delivered before it started, stopping it",
                             true);
                    break;
                }
        }
    }
    free(c);
    rqw_want_fetch(w);
    rqw_maybe_finish_drain(w);
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
    rq_args_append(&c->args, &body);
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
    rqw_maybe_finish_drain(w);
}

void rqw_flush_done(struct rqw *w)
{
    if (!w->ndone)
        return;
    struct rq_call *c = calloc(1, sizeof(*c));
    c->data = w;
    rq_args_adds(&c->args, w->id);
    rq_args_adds(&c->args, w->ttl);
    rq_args_addll(&c->args, w->ndone);
    rq_args_append(&c->args, &w->done);
    rq_args_free(&w->done);
    w->ndone = 0;
    c->cmd.retry_safe = true; /* fenced: a second run of it refuses what the first did */
    w->flushes_inflight++;
    rq_eval(&w->cmd, c, &w->shas, RQ_COMPLETE, on_completed);
}

/* End of a loop turn: starts first, then outcomes, on one connection, so
 * Redis applies them in that order. */
void rqw_on_flush_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, flush_timer));
    mark_started(w);
    rqw_flush_done(w);
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

void rqw_record(struct rqw *w, struct job_run *r, const char *how, const char *data, size_t len,
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
        rqw_record(w, r, permanent ? "perm" : "fail", error, strlen(error),
                   retry_delay_ms(w, r->attempt));
        return;
    }
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    rqw_record(w, r, "ok", text ? text : "null", text ? strlen(text) : 4, 0);
    free(text);
}

void rqw_free_slot(struct rqw *w, struct job_run *r)
{
    if (!r->slot_freed) {
        r->slot_freed = true;
        w->running--;
    }
}

void rqw_run_free(struct rqw *w, struct job_run *r)
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
    struct rqw *w = rqw_of(r);
    if (!r->lost)
        record_outcome(w, r, result, error, permanent);
    job_log_outcome(r, error, permanent, w->loop->now_ns);
    json_decref(result);
    rqw_free_slot(w, r);
    rqw_run_free(w, r);
    rqw_want_fetch(w);
    rqw_maybe_finish_drain(w);
}

static void on_progress_set(struct rq_call *c, redisReply *reply, const char *err)
{
    free(c);
}

static void rq_progress(struct job_run *r, int percent, const char *step)
{
    if (r->lost)
        return;
    struct rqw *w = rqw_of(r);
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
    return rqw_of(r)->loop;
}

static struct pg_pool *rq_pg(struct job_run *r)
{
    return rqw_of(r)->has_pg ? &rqw_of(r)->pg : NULL;
}

static const struct job_backend redis_backend = {
    .finish = rq_finish,
    .progress = rq_progress,
    .loop = rq_loop,
    .pg = rq_pg,
};

/* --- running ------------------------------------------------------------ */

static void on_hard_limit(struct loop *l, struct timer *t)
{
    struct job_run *r = (struct job_run *)((char *)t - offsetof(struct job_run, hard));
    struct rqw *w = rqw_of(r);
    if (r->lost)
        return;
    char msg[128];
    job_hard_limit_reason(r, msg, sizeof(msg));
    record_outcome(w, r, NULL, msg, false);
    r->lost = true; /* whatever it reports later is not written */
    rqw_free_slot(w, r);
    rqw_want_fetch(w);
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
    struct rqw *w = rqw_of(r);
    free(k);
    if (r->lost || w->draining) {
        if (!r->lost) {
            rqw_record(w, r, "back", "", 0, 0);
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
        job_run_start(r, rqw_of(r)->loop);
        return;
    }
    long long wait = reply->element[1]->integer;
    LOG(LOG_DEBUG, "job deferred by its kind limit", L_INT("job_id", r->id),
        L_STR("kind", r->kind->name), L_INT("retry_in_ms", wait));
    rqw_record(w, r, "defer", "", 0, (uint64_t)(wait < 1 ? 1 : wait));
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
    redis_submitv(&rqw_of(r)->cmd, &k->cmd, 6, argv);
}

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
    job_limits_init(r, on_hard_limit);
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
    job_run_start(r, rqw_of(r)->loop);
}

void rqw_start_one(struct rqw *w, const struct start_entry *se, redisReply **f)
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

/* The packed field j of an entry, "<attempts> <max_attempts> <timeout_ms>
 * <kind> <payload>" (one field instead of five: Redis spends less per entry
 * read). A malformed one leaves no kind: the job fails as of an unknown one. */
static void parse_packed(struct delivery *d, const char *s, size_t n)
{
    const char *start = s, *end = s + n, *sp[4];
    for (int i = 0; i < 4; i++) {
        sp[i] = memchr(s, ' ', (size_t)(end - s));
        if (!sp[i]) {
            d->kind = NULL;
            return;
        }
        s = sp[i] + 1;
    }
    d->attempt = atoi(start) + 1;
    d->max_attempts = atoi(sp[0] + 1);
    d->timeout = sp[1] + 1, d->timeout_len = (size_t)(sp[2] - sp[1] - 1);
    d->kind = sp[2] + 1, d->kind_len = (size_t)(sp[3] - sp[2] - 1);
    d->payload = sp[3] + 1, d->payload_len = (size_t)(end - sp[3] - 1);
}

/* A fresh entry (XREADGROUP >): its fields say how to run it (entries
 * written before j was packed carry k p a m t). */
void rqw_run_fresh(struct rqw *w, unsigned qix, const redisReply *e)
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
        if (k->str[0] == 'j') {
            parse_packed(&d, v->str, v->len);
            continue;
        }
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

void rqw_lose(struct rqw *w, struct job_run *r, const char *why, bool cancelled)
{
    LOG(LOG_WARN, why, L_INT("job_id", r->id));
    rqw_record(w, r, "drop", "", 0, 0); /* spend the delivery, unless it is someone else's now */
    r->lost = true;
    r->cancelled = cancelled;
    rqw_free_slot(w, r);
    job_request_stop(r); /* may free r */
}
