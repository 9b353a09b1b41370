/*
 * fire_redis.c - beat's Redis half of firing on --queue-backend=redis:
 * enqueue a batch of due slots' jobs in Redis, idempotently.
 *
 * Each slot's job carries the unique_key "beat:<schedule id>:<slot unix s>",
 * so the enqueue script (modules/rqueue) answers a second beat, or a retry
 * after a crash before the slots were recorded in PostgreSQL, with the job
 * id it made the first time: the slot still has one job. beat.c then
 * records the slots with those ids (trireme.record_schedule_fires, sql/006,
 * which explains why the order is safe and where it stops being).
 *
 * A batch is at most two round trips: the status of each skip_if_running
 * schedule's previous job (pipelined HGETs of its hash: pending or running
 * skips the slot, as on PostgreSQL), then one script call that enqueues
 * every slot not skipped. Jitter becomes the job's run_at (the script puts
 * it in the delayed set); the slot key never moves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "modules/beat/beat.h"

#define BEAT_REDIS_TIMEOUT_MS 10000

int beat_redis_init(struct beat_redis *r, struct loop *l, const char *url)
{
    struct redis_url u;
    const char *err;
    if (redis_url_parse(url, &u, &err)) {
        LOG(LOG_ERROR, "REDIS_URL is not valid", L_STR("error", err));
        return -1;
    }
    rq_shas_init(&r->shas);
    if (redis_client_init(&r->rc, l, &u, REDIS_COMMANDS, "beat") < 0)
        return -1;
    r->up = true;
    return 0;
}

void beat_redis_close(struct beat_redis *r)
{
    if (r->up)
        redis_client_close(&r->rc);
}

void beat_redis_free(struct beat_redis *r)
{
    if (r->up)
        redis_client_free(&r->rc);
    r->up = false;
    free(r->checks);
    r->checks = NULL;
}

static void finish(struct beat_redis *r, const char *err)
{
    for (unsigned i = 0; i < r->n; i++)
        json_decref(r->v[i].job);
    r->fn(r, err);
}

/* The enqueue script's arguments for one slot. The script's format is
 * rqueue's (rq_enqueue_job_args): this is the only place beat builds it. */
static void slot_args(struct rq_args *a, const struct beat_rslot *s)
{
    json_t *j = json_copy(s->job);
    char key[64];
    snprintf(key, sizeof(key), "beat:%lld:%lld", (long long)s->id, (long long)s->slot);
    json_object_set_new(j, "unique_key", json_string(key));
    if (s->jitter_ms)
        json_object_set_new(j, "run_at_ms", json_integer(s->slot * 1000 + s->jitter_ms));
    rq_enqueue_job_args(a, j);
    json_decref(j);
}

static void on_enqueued(struct rq_call *c, redisReply *reply, const char *err)
{
    struct beat_redis *r = c->data;
    if (!err && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * r->nenq))
        err = "unexpected reply to the enqueue script";
    if (err) {
        snprintf(r->err, sizeof(r->err), "%s", err);
        finish(r, r->err);
        return;
    }
    size_t k = 0;
    for (unsigned i = 0; i < r->n; i++) {
        struct beat_rslot *s = &r->v[i];
        if (s->blocked_by)
            continue;
        const redisReply *id = reply->element[2 * k], *created = reply->element[2 * k + 1];
        k++;
        s->job_id = id->type == REDIS_REPLY_INTEGER ? id->integer : 0;
        s->created = created->type == REDIS_REPLY_INTEGER && created->integer == 1;
    }
    /* A later slot of a skip_if_running schedule in this batch was skipped
     * because of the first one: name that one's job. */
    for (unsigned i = 0; i < r->n; i++)
        if (r->v[i].blocked_by < 0) {
            const struct beat_rslot *first = &r->v[-r->v[i].blocked_by - 1];
            r->v[i].blocked_by = first->job_id ? first->job_id : first->blocked_by;
        }
    finish(r, NULL);
}

static void enqueue(struct beat_redis *r)
{
    r->nenq = 0;
    for (unsigned i = 0; i < r->n; i++)
        r->nenq += !r->v[i].blocked_by;
    if (!r->nenq) {
        finish(r, NULL);
        return;
    }
    memset(&r->enq, 0, sizeof(r->enq));
    r->enq.cmd.timeout_ms = BEAT_REDIS_TIMEOUT_MS;
    r->enq.data = r;
    rq_args_addll(&r->enq.args, (long long)r->nenq);
    for (unsigned i = 0; i < r->n; i++)
        if (!r->v[i].blocked_by)
            slot_args(&r->enq.args, &r->v[i]);
    rq_eval(&r->rc, &r->enq, &r->shas, RQ_ENQUEUE, on_enqueued);
}

static void on_status(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct beat_redis *r = c->data;
    struct beat_rslot *s = &r->v[c - r->checks];
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
        finish(r, r->err);
    else
        enqueue(r);
}

void beat_redis_enqueue(struct beat_redis *r, struct beat_rslot *v, unsigned n, beat_redis_fn fn)
{
    r->v = v;
    r->n = n;
    r->fn = fn;
    r->err[0] = 0;
    r->nchecks = 0;
    /* skip_if_running: only a schedule's first slot in the batch may fire
     * (each later one is skipped because of it: blocked_by -(index + 1)),
     * and only when its previous job has finished. */
    for (unsigned i = 0; i < n; i++) {
        v[i].job_id = 0;
        v[i].blocked_by = 0;
        v[i].created = false;
        if (!v[i].exclusive)
            continue;
        for (unsigned j = 0; j < i; j++)
            if (v[j].id == v[i].id) {
                v[i].blocked_by = -(int64_t)(j + 1); /* v[j] is the schedule's first */
                break;
            }
        if (!v[i].blocked_by && v[i].last_job > 0)
            r->nchecks++;
    }
    if (!r->nchecks) {
        enqueue(r);
        return;
    }
    if (n > r->ncap) {
        free(r->checks);
        r->checks = malloc(n * sizeof(*r->checks));
        r->ncap = n;
    }
    unsigned want = r->nchecks;
    for (unsigned i = 0; i < n && want; i++) {
        if (!v[i].exclusive || v[i].blocked_by || v[i].last_job <= 0)
            continue;
        want--;
        char key[48];
        snprintf(key, sizeof(key), RQ_PREFIX "job:%lld", (long long)v[i].last_job);
        const char *argv[] = {"HGET", key, "status"};
        r->checks[i] = (struct redis_cmd){
            .fn = on_status, .data = r, .timeout_ms = BEAT_REDIS_TIMEOUT_MS, .retry_safe = true};
        redis_submitv(&r->rc, &r->checks[i], 3, argv);
    }
}
