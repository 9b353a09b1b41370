/*
 * redis_beat.c - the beat part of the Redis queue backend: enqueue a batch
 * of due slots' jobs in Redis, idempotently, then record the fires in
 * PostgreSQL (trireme.record_schedule_fires, sql/006, which explains why
 * this order is safe and where it stops being).
 *
 * Each slot's job carries the unique_key "beat:<schedule id>:<slot unix s>",
 * so the enqueue script (modules/rqueue) answers a second beat, or a retry
 * after a crash before the slots were recorded, with the job id it made
 * the first time: the slot still has one job.
 *
 * A batch is at most two round trips to Redis: the status of each
 * skip_if_running schedule's previous job (pipelined HGETs of its hash:
 * pending or running skips the slot, as on PostgreSQL), then one script
 * call that enqueues every slot not skipped. Jitter becomes the job's
 * run_at (the script puts it in the delayed set); the slot key never moves.
 *
 * Retries: a Redis failure answers the batch with an error (beat fires it
 * again: the keys make that safe). A PostgreSQL failure retries only the
 * record, with the ids Redis gave, never the enqueue: the unique keys expire
 * with the jobs' hashes, so enqueueing again after --result-ttl would make
 * a second job. The batch answers once it is recorded; later slots wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/pg.h"
#include "kernel/xalloc.h"
#include "modules/queue/beat_fires.h"
#include "modules/rqueue/rqueue.h"
#include "proto/rfc3339.h"

struct redis_beat {
    struct redis_client rc;
    struct rq_shas shas;
    struct pg_pool *pg;
    struct queue_beat_batch *b;
    /* Redis */
    struct rq_call enq;
    struct redis_cmd *checks; /* one HGET per skip_if_running slot, by slot index */
    unsigned ncap, nchecks, nenq;
    char err[200];
    bool down_logged; /* "Redis is unreachable", once per outage */
    /* PostgreSQL */
    struct beat_fires params;
    struct pg_query rec_q;
    struct timer retry; /* the record's */
    bool wanted;        /* beat still wants the batch retried */
};

static const enum beat_fires_col record_cols[] = {BF_IDS,     BF_SLOTS,   BF_JOB_IDS,
                                                  BF_BLOCKED, BF_REASONS, BF_NEXT};

static const char ENQUEUE_FAILED[] =
    "beat: enqueueing due slots in Redis failed; they wait and are retried";
static const char RECORD_FAILED[] = "beat: firing due slots failed, retrying";

/* --- the record, in PostgreSQL ------------------------------------------- */

static void on_recorded(struct pg_query *q, PGresult *res, const char *err)
{
    struct redis_beat *r = container_of(q, struct redis_beat, rec_q);
    struct queue_beat_batch *b = r->b;
    if (err && r->wanted) {
        LOG(LOG_WARN,
            "beat: recording due slots failed; retrying the record (their jobs are in "
            "Redis)",
            L_STR("error", err), L_INT("slots", b->n));
        loop_timer_in(r->rc.loop, &r->retry, QUEUE_BEAT_RETRY_MS);
        return;
    }
    r->b = NULL;
    if (err) {
        b->done(b, err, RECORD_FAILED);
        return;
    }
    beat_fires_apply(b->v, b->n, res);
    b->done(b, NULL, NULL);
}

static void record(struct redis_beat *r)
{
    r->rec_q = (struct pg_query){.fn = on_recorded,
                                 .sql = SQL_BEAT_RECORD,
                                 .nparams = 6,
                                 .values = r->params.vals,
                                 .timeout_ms = QUEUE_BEAT_TIMEOUT_MS};
    pg_query_submit(r->pg, &r->rec_q);
}

static void on_retry(struct loop *l, struct timer *t)
{
    record(container_of(t, struct redis_beat, retry));
}

/* --- the jobs, in Redis --------------------------------------------------- */

/* Drop the batch's references to its templates. */
static void release_jobs(struct queue_beat_batch *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        json_decref(b->v[i].job);
        b->v[i].job = NULL;
    }
}

static void enqueue_failed(struct redis_beat *r, const char *err)
{
    struct queue_beat_batch *b = r->b;
    release_jobs(b);
    r->b = NULL;
    b->done(b, err, ENQUEUE_FAILED);
}

/* Every slot has its job (or its skip): record them. */
static void enqueued(struct redis_beat *r)
{
    struct queue_beat_batch *b = r->b;
    struct queue_beat_slot *v = b->v;
    release_jobs(b);
    r->down_logged = false;
    for (unsigned i = 0; i < b->n; i++)
        if (v[i].job_id && !v[i].created) {
            /* A beat that died between its enqueue and its record, or a
             * second beat: the slot keeps the job its unique key names. */
            char when[32];
            rfc3339_format_s(v[i].slot, when, sizeof(when));
            LOG(LOG_INFO, "beat: the slot's job is already in Redis; recording that one",
                L_INT("schedule_id", v[i].schedule_id), L_STR("slot", when),
                L_INT("job", v[i].job_id));
        }
    beat_fires_params(&r->params, v, b->n, record_cols, 6);
    record(r);
}

/* The enqueue script's arguments for one slot. The script's format is
 * rqueue's (rq_enqueue_job_args): this is the only place beat builds it. */
static void slot_args(struct rq_args *a, const struct queue_beat_slot *s)
{
    json_t *j = json_copy(s->job);
    char key[64];
    snprintf(key, sizeof(key), "beat:%lld:%lld", (long long)s->schedule_id, (long long)s->slot);
    json_object_set_new(j, "unique_key", json_string(key));
    if (s->jitter_ms)
        json_object_set_new(j, "run_at_ms", json_integer(s->slot * 1000 + s->jitter_ms));
    rq_enqueue_job_args(a, j);
    json_decref(j);
}

static void on_enqueued(struct rq_call *c, redisReply *reply, const char *err)
{
    struct redis_beat *r = c->data;
    struct queue_beat_slot *v = r->b->v;
    if (!err && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * r->nenq))
        err = "unexpected reply to the enqueue script";
    if (err) {
        snprintf(r->err, sizeof(r->err), "%s", err);
        enqueue_failed(r, r->err);
        return;
    }
    size_t k = 0;
    for (unsigned i = 0; i < r->b->n; i++) {
        if (v[i].blocked_by)
            continue;
        const redisReply *id = reply->element[2 * k], *created = reply->element[2 * k + 1];
        k++;
        v[i].job_id = id->type == REDIS_REPLY_INTEGER ? id->integer : 0;
        v[i].created = created->type == REDIS_REPLY_INTEGER && created->integer == 1;
    }
    /* A later slot of a skip_if_running schedule in this batch was skipped
     * because of the first one: name that one's job. */
    for (unsigned i = 0; i < r->b->n; i++)
        if (v[i].blocked_by < 0) {
            const struct queue_beat_slot *first = &v[-v[i].blocked_by - 1];
            v[i].blocked_by = first->job_id ? first->job_id : first->blocked_by;
        }
    enqueued(r);
}

static void enqueue(struct redis_beat *r)
{
    const struct queue_beat_slot *v = r->b->v;
    r->nenq = 0;
    for (unsigned i = 0; i < r->b->n; i++)
        r->nenq += !v[i].blocked_by;
    if (!r->nenq) {
        enqueued(r);
        return;
    }
    memset(&r->enq, 0, sizeof(r->enq));
    r->enq.cmd.timeout_ms = QUEUE_BEAT_TIMEOUT_MS;
    r->enq.data = r;
    rq_args_addll(&r->enq.args, (long long)r->nenq);
    for (unsigned i = 0; i < r->b->n; i++)
        if (!v[i].blocked_by)
            slot_args(&r->enq.args, &v[i]);
    rq_eval(&r->rc, &r->enq, &r->shas, RQ_ENQUEUE, on_enqueued);
}

static void on_status(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct redis_beat *r = c->data;
    struct queue_beat_slot *s = &r->b->v[c - r->checks];
    if (err) {
        if (!r->err[0])
            snprintf(r->err, sizeof(r->err), "%s", err);
    } else if (reply && reply->type == REDIS_REPLY_STRING &&
               (!strcmp(reply->str, "pending") || !strcmp(reply->str, "running"))) {
        s->blocked_by = s->last_job;
    }
    if (--r->nchecks)
        return;
    if (r->err[0])
        enqueue_failed(r, r->err);
    else
        enqueue(r);
}

static void redis_beat_fire(void *qb, struct queue_beat_batch *b)
{
    struct redis_beat *r = qb;
    r->b = b;
    r->wanted = true;
    r->err[0] = 0;
    r->nchecks = 0;
    beat_fires_sort(b->v, b->n);
    struct queue_beat_slot *v = b->v;
    if (!redis_client_up(&r->rc) && !r->down_logged) {
        r->down_logged = true; /* the client logs its reconnects */
        LOG(LOG_WARN,
            "beat: Redis is unreachable; due slots wait for it and are sent once it "
            "is back",
            L_INT("slots", b->n));
    }
    /* skip_if_running: only a schedule's first slot in the batch may fire
     * (each later one is skipped because of it: blocked_by -(index + 1)),
     * and only when its previous job has finished. */
    unsigned first = 0;
    for (unsigned i = 0; i < b->n; i++) {
        json_incref(v[i].job);
        if (!i || v[i].schedule_id != v[i - 1].schedule_id)
            first = i;
        if (!v[i].exclusive)
            continue;
        if (first != i)
            v[i].blocked_by = -(int64_t)(first + 1);
        else if (v[i].last_job > 0)
            r->nchecks++;
    }
    if (!r->nchecks) {
        enqueue(r);
        return;
    }
    if (b->n > r->ncap) {
        free(r->checks);
        r->ncap = b->n;
        r->checks = xmalloc(r->ncap * sizeof(*r->checks));
    }
    unsigned want = r->nchecks;
    for (unsigned i = 0; i < b->n && want; i++) {
        if (!v[i].exclusive || v[i].blocked_by || v[i].last_job <= 0)
            continue;
        want--;
        char key[48];
        snprintf(key, sizeof(key), RQ_PREFIX "job:%lld", (long long)v[i].last_job);
        const char *argv[] = {"HGET", key, "status"};
        r->checks[i] = (struct redis_cmd){
            .fn = on_status, .data = r, .timeout_ms = QUEUE_BEAT_TIMEOUT_MS, .retry_safe = true};
        redis_submitv(&r->rc, &r->checks[i], 3, argv);
    }
}

static void redis_beat_cancel(void *qb)
{
    struct redis_beat *r = qb;
    r->wanted = false;
    if (!r->b || !timer_armed(&r->retry))
        return;
    /* Only the record waits: the next leader fires those slots again, and
     * their unique keys give it the same jobs. */
    loop_timer_cancel(r->rc.loop, &r->retry);
    struct queue_beat_batch *b = r->b;
    r->b = NULL;
    b->done(b, "the record was abandoned", RECORD_FAILED);
}

/* --- per loop ------------------------------------------------------------- */

static void *redis_beat_open(const struct queue_beat_conns *conns)
{
    struct redis_url u;
    const char *err;
    if (redis_url_parse(conns->cfg->redis_url, &u, &err)) {
        LOG(LOG_ERROR, "REDIS_URL is not valid", L_STR("error", err));
        return NULL;
    }
    struct redis_beat *r = xcalloc(1, sizeof(*r));
    rq_shas_init(&r->shas);
    if (redis_client_init(&r->rc, conns->loop, &u, REDIS_COMMANDS, "beat") < 0) {
        free(r);
        return NULL;
    }
    r->pg = conns->pg;
    r->retry.fn = on_retry;
    return r;
}

static void redis_beat_close(void *qb)
{
    struct redis_beat *r = qb;
    loop_timer_cancel(r->rc.loop, &r->retry);
    redis_client_close(&r->rc);
}

static void redis_beat_free(void *qb)
{
    struct redis_beat *r = qb;
    redis_client_free(&r->rc);
    free(r->checks);
    beat_fires_free(&r->params);
    free(r);
}

const struct queue_beat_ops redis_beat_ops = {
    .wants_job = true,
    .open = redis_beat_open,
    .close = redis_beat_close,
    .free = redis_beat_free,
    .fire = redis_beat_fire,
    .cancel = redis_beat_cancel,
};
