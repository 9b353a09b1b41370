/*
 * redis_worker_run.c - runs on the Redis queue backend: a delivery (a fresh
 * stream entry, or START's answer for a taken-over one) becomes a run of
 * the worker core; at the end of each loop turn the starts still running
 * are written in one MARK and every outcome in one COMPLETE
 * (modules/rqueue/rqueue_lua.c), on one connection, so Redis applies them
 * in that order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "kernel/container_of.h"
#include "modules/queue/faults.h"
#include "modules/queue/redis_worker.h"

/* --- starts and outcomes ------------------------------------------------- */

static void on_marked(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *q = c->data;
    struct worker *w = &q->w;
    if (err) {
        /* Not written: the heartbeat writes the start of what still runs,
         * a completion writes start and outcome together. */
        LOG(LOG_WARN, "worker: recording job starts failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            long long id = atoll(reply->element[i]->str ? reply->element[i]->str : "0");
            struct worker_run *r = worker_run_find(w, id);
            if (r)
                worker_run_lose(
                    w, r, "job cancelled or re-delivered before it started, stopping it", true);
        }
    }
    free(c);
    worker_want(w);
    worker_op_end(w);
}

/* Starts of fresh deliveries still running at the end of their turn. */
static void mark_started(struct rqw *q)
{
    struct worker *w = &q->w;
    struct rq_args body = {0};
    unsigned n = 0;
    struct list *node;
    list_for_each(node, &w->runs)
    {
        struct rrun *r = rrun_of(list_entry(node, struct worker_run, node));
        if (r->recorded || r->base.lost)
            continue;
        r->recorded = true;
        rq_args_addll(&body, r->base.job.id);
        rq_args_adds(&body, r->ref);
        rq_args_addll(&body, r->base.job.attempt);
        n++;
    }
    if (!n)
        return;
    struct rq_call *c = xcalloc(1, sizeof(*c));
    c->data = q;
    rq_args_adds(&c->args, w->id);
    rq_args_addll(&c->args, n);
    rq_args_append(&c->args, &body);
    rq_args_free(&body);
    c->cmd.retry_safe = true; /* idempotent */
    worker_op_begin(w);
    rq_eval(&q->cmd, c, &q->shas, RQ_MARK, on_marked);
}

/* One COMPLETE: kept until Redis took it, so a "not now" answer (LOADING
 * after a restart, BUSY, a timeout) sends it again instead of leaving the
 * jobs to be re-run a whole lease later. Sending it twice is safe: it is
 * fenced, and refuses what an earlier send already recorded. */
struct done_call {
    struct rq_call c; /* first */
    struct timer retry;
};

static void on_completed(struct rq_call *c, redisReply *reply, const char *err);

static void on_complete_retry(struct loop *l, struct timer *t)
{
    struct done_call *d = container_of(t, struct done_call, retry);
    struct rqw *q = d->c.data;
    if (q->w.closed) {
        LOG(LOG_ERROR, "worker: stopped before Redis took these job results; the jobs will be "
                       "re-run after their leases expire");
        rq_args_free(&d->c.args);
        free(d);
        worker_op_end(&q->w);
        return;
    }
    rq_eval(&q->cmd, &d->c, &q->shas, RQ_COMPLETE, on_completed);
}

static void on_completed(struct rq_call *c, redisReply *reply, const char *err)
{
    struct done_call *d = (struct done_call *)c;
    struct rqw *q = c->data;
    if (err && !q->w.closed && queue_fault_redis(reply, err) == QUEUE_UNAVAILABLE) {
        LOG(LOG_WARN, "worker: Redis cannot record job results now; sending them again",
            L_STR("error", err), L_INT("retry_ms", COMPLETE_RETRY_MS));
        d->retry.fn = on_complete_retry;
        loop_timer_in(q->w.loop, &d->retry, COMPLETE_RETRY_MS);
        return; /* still an operation in flight: a drain waits for it */
    }
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
                L_STR("worker_id", q->w.id));
    }
    rq_args_free(&c->args);
    free(d);
    worker_op_end(&q->w);
}

static void flush_done(struct rqw *q)
{
    if (!q->ndone)
        return;
    struct done_call *d = xcalloc(1, sizeof(*d));
    struct rq_call *c = &d->c;
    c->data = q;
    c->keep_args = true;
    rq_args_adds(&c->args, q->w.id);
    rq_args_adds(&c->args, q->ttl);
    rq_args_addll(&c->args, q->ndone);
    rq_args_append(&c->args, &q->done);
    rq_args_free(&q->done);
    q->ndone = 0;
    c->cmd.retry_safe = true; /* fenced: a second run of it refuses what the first did */
    worker_op_begin(&q->w);
    rq_eval(&q->cmd, c, &q->shas, RQ_COMPLETE, on_completed);
}

void rqw_flush(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    mark_started(q);
    flush_done(q);
}

static void add_done(struct rqw *q, struct rrun *r, const char *how, const char *data, size_t len,
                     uint64_t delay_ms)
{
    rq_args_addll(&q->done, r->base.job.id);
    rq_args_adds(&q->done, q->w.queue[r->base.queue_ix]);
    rq_args_adds(&q->done, r->ref);
    rq_args_addll(&q->done, r->base.job.attempt);
    rq_args_adds(&q->done, how);
    rq_args_add(&q->done, data, len);
    rq_args_addll(&q->done, (long long)delay_ms);
    q->ndone++;
}

void rqw_record(struct worker *w, struct worker_run *wr, const struct worker_outcome *o)
{
    struct rqw *q = rqw_of(w);
    struct rrun *r = rrun_of(wr);
    char small[512], *text;
    size_t need;
    switch (o->verdict) {
    case OUTCOME_OK:
        if (!o->result) {
            add_done(q, r, "ok", "null", 4, 0);
            break;
        }
        /* Small results (the common case) are written without a malloc. */
        need = json_dumpb(o->result, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        text = need <= sizeof(small) ? small : xmalloc(need);
        json_dumpb(o->result, text, need, JSON_COMPACT | JSON_ENCODE_ANY);
        add_done(q, r, "ok", text, need, 0);
        if (text != small)
            free(text);
        break;
    case OUTCOME_FAIL:
    case OUTCOME_PERMANENT:
        add_done(q, r, o->verdict == OUTCOME_PERMANENT ? "perm" : "fail", o->error,
                 strlen(o->error), o->delay_ms);
        break;
    case OUTCOME_DEFER:
        add_done(q, r, "defer", "", 0, o->delay_ms);
        break;
    case OUTCOME_BACK:
        add_done(q, r, "back", "", 0, 0);
        break;
    case OUTCOME_DROP:
        /* Spend the delivery, unless it is someone else's now. */
        add_done(q, r, "drop", "", 0, 0);
        break;
    case OUTCOME_HANDOFF: /* data: the token's secret; delay: the lease */
        add_done(q, r, "handoff", o->secret, strlen(o->secret), o->delay_ms);
        break;
    }
}

static void on_progress_set(struct rq_call *c, redisReply *reply, const char *err)
{
    free(c);
}

void rqw_progress(struct worker *w, struct worker_run *r, int percent, const char *step)
{
    struct rqw *q = rqw_of(w);
    struct rq_call *c = xcalloc(1, sizeof(*c));
    rq_args_addll(&c->args, r->job.id);
    rq_args_adds(&c->args, w->id);
    rq_args_addll(&c->args, r->job.attempt);
    rq_args_addll(&c->args, percent);
    rq_args_add(&c->args, step ? step : "", step ? strnlen(step, 255) : 0);
    rq_eval(&q->cmd, c, &q->shas, RQ_PROGRESS, on_progress_set);
}

/* --- deliveries ---------------------------------------------------------- */

/* One delivery to run: from a fresh entry's fields, or START's answer. */
struct delivery {
    long long id;
    unsigned qix;
    const char *entry;
    const char *kind, *payload, *timeout;
    size_t kind_len, payload_len, timeout_len;
    int attempt, max_attempts;
    const char *prev_error; /* field e: the head of the previous attempt's error */
    size_t prev_error_len;
    bool files; /* field f: it came with uploaded files */
    bool recorded;
};

/* When a delivery fell due, on the loop's clock: its Stream entry id
 * starts with the Redis server's time (ms) of the XADD, which is the
 * enqueue, or the promotion of a delayed or retried job when it fell due.
 * 0 when the id says nothing usable. */
static uint64_t due_ns(const struct worker *w, const char *entry)
{
    char *end;
    unsigned long long ms = strtoull(entry, &end, 10);
    struct timespec ts;
    if (end == entry || *end != '-' || clock_gettime(CLOCK_REALTIME, &ts))
        return 0;
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t waited_ns = now_ms > ms ? (now_ms - ms) * 1000000 : 0;
    return w->loop->now_ns > waited_ns ? w->loop->now_ns - waited_ns : 1;
}

static void run_delivery(struct rqw *q, const struct delivery *d)
{
    struct rrun *r = rrun_of(worker_run_new(&q->w));
    r->base.job.id = d->id;
    r->base.queue_ix = d->qix;
    r->recorded = d->recorded;
    snprintf(r->ref, sizeof(r->ref), "%s", d->entry);
    r->base.job.attempt = d->attempt;
    r->base.job.max_attempts = d->max_attempts;
    job_set_prev_error(&r->base.job, d->prev_error, d->prev_error_len);
    r->base.job.files = d->files;
    r->base.due_ns = due_ns(&q->w, d->entry);
    char tmo[24] = "";
    if (d->timeout_len && d->timeout_len < sizeof(tmo))
        memcpy(tmo, d->timeout, d->timeout_len);
    r->base.job.timeout_ms = strtoull(tmo, NULL, 10); /* 0: the default */
    worker_run_start(&q->w, &r->base, d->kind, d->kind_len, d->payload, d->payload_len);
}

void rqw_start_one(struct rqw *q, const struct start_entry *se, redisReply **f)
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
        .files = f[6]->integer == 1,
        .recorded = true,
    };
    run_delivery(q, &d);
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
void rqw_run_fresh(struct rqw *q, unsigned qix, const redisReply *e)
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
        case 'j':
            parse_packed(&d, v->str, v->len);
            break;
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
        case 'e':
            d.prev_error = v->str, d.prev_error_len = v->len;
            break;
        case 'f':
            d.files = true;
            break;
        }
    }
    if (d.id <= 0)
        return;
    run_delivery(q, &d);
}
