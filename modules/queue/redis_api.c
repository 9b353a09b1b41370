/*
 * redis_api.c - the API part of the Redis queue backend: enqueue, get,
 * list, cancel and retry, each one script (or one HGETALL) on one loop's
 * Redis client (queue_api.h, scripts in modules/rqueue).
 *
 * An enqueue of several jobs is one script call, so they are enqueued
 * together or not at all. 201 means Redis has applied it; how durable that
 * is depends on Redis' appendfsync (docs/operations.md). While the client
 * knows Redis is down (its last connection attempt failed), calls are
 * answered 503 at once (in the next loop turn) instead of waiting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/queue/queue.h"
#include "modules/queue/faults.h"
#include "modules/queue/queue_api.h"
#include "modules/rqueue/rqueue.h"

static const char NOT_FOUND[] = "no job with this id (or its result expired)";

struct redis_api {
    struct redis_client *cl;
    struct pg_pool *pg;     /* NULL: no DATABASE_URL (no uploads) */
    struct rq_shas shas;    /* the scripts' names, computed at open */
    uint64_t result_ttl_ms; /* a cancelled job's hash lives this long */
    struct list live;       /* calls in flight */
};

enum redis_call_kind {
    RC_ENQUEUE,
    RC_GET,
    RC_LIST,
    RC_CANCEL,
    RC_RETRY,
    RC_COUNTS,
    RC_GET_MANY,
    RC_ENQUEUE_FILES,
    RC_CHANGES
};

/* An upload's files, rows written unattached (sql/010), go to the id
 * reserved for its job: $1 the id, $2 the files' ids. */
#define SQL_ATTACH_FILES                                                                           \
    "UPDATE trireme.job_files f SET job_id = $1,"                                                  \
    " size = coalesce((SELECT sum(octet_length(c.data)) FROM trireme.job_file_chunks c"            \
    " WHERE c.file_id = f.id), 0)"                                                                 \
    " WHERE f.id = ANY($2::bigint[]) AND f.job_id IS NULL"
/* A unique_key matched an existing job: the reserved id never becomes a
 * job, and its files go. */
#define SQL_DROP_FILES "DELETE FROM trireme.job_files WHERE job_id = $1"

struct redis_call {
    struct queue_call head; /* first */
    struct rq_call rq;
    struct timer refuse; /* Redis known down: the 503 goes out from here */
    struct list node;    /* on api->live */
    struct redis_api *api;
    enum redis_call_kind kind;
    bool array;
    json_t *jobs; /* an enqueue's, until its answer (the metrics read them) */
    /* RC_ENQUEUE_FILES: reserve an id, attach the files to it, enqueue */
    char id[24];
    char *files;
    struct pg_query q;
    const char *vals[2];
};

static struct redis_call *call_new(struct redis_api *a, enum redis_call_kind kind,
                                   queue_answer_fn fn, void *data)
{
    struct redis_call *c = xcalloc(1, sizeof(*c));
    c->head = (struct queue_call){.fn = fn, .data = data};
    c->api = a;
    c->kind = kind;
    c->rq.cmd.timeout_ms = QUEUE_API_TIMEOUT_MS;
    c->rq.cmd.fail_fast = true;
    list_insert(&a->live, &c->node);
    return c;
}

static void call_free(struct redis_call *c)
{
    list_remove(&c->node);
    rq_args_free(&c->rq.args);
    json_decref(c->jobs);
    free(c->files);
    free(c);
}

static void on_refused(struct loop *l, struct timer *t)
{
    struct redis_call *c = container_of(t, struct redis_call, refuse);
    queue_answer_failed(&c->head, QUEUE_UNAVAILABLE, "redis", "Redis connection is down");
    call_free(c);
}

static void on_no_database(struct loop *l, struct timer *t)
{
    struct redis_call *c = container_of(t, struct redis_call, refuse);
    (void)l;
    queue_answer_failed(&c->head, QUEUE_UNAVAILABLE, "database",
                        "uploads need a database (set DATABASE_URL)");
    call_free(c);
}

/* True when c was refused because Redis is known down (answered later). */
static bool refused(struct redis_api *a, struct redis_call *c)
{
    if (!redis_client_down(a->cl))
        return false;
    c->refuse.fn = on_refused;
    loop_timer_in(a->cl->loop, &c->refuse, 0);
    return true;
}

/* Answers 200 with j (taking it). */
static void answer_object(struct queue_call *c, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    queue_answer_json(c, text, strlen(text));
    free(text);
}

/* The call is over: true when it still has an answer to give and no error
 * gave it already. */
static bool wants_result(struct redis_call *c, const redisReply *reply, const char *err)
{
    if (!c->head.fn)
        return false;
    if (err) {
        queue_answer_failed(&c->head, queue_fault_redis(reply, err), "redis", err);
        return false;
    }
    return true;
}

/* --- enqueue ------------------------------------------------------------ */

static bool enqueue_reply_ok(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements && !(reply->elements % 2);
}

/* An enqueue script's reply (id1, created1, ...) as the call's answer. */
static void answer_enqueued(struct redis_call *c, const redisReply *reply)
{
    if (!enqueue_reply_ok(reply)) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected enqueue answer");
        return;
    }
    struct queue_enqueued e;
    queue_enqueued_begin(&e, c->array, c->api->cl->loop->metrics, c->jobs, 0);
    for (size_t k = 0; k < reply->elements / 2; k++) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", reply->element[2 * k]->integer);
        queue_enqueued_add(&e, id, reply->element[2 * k + 1]->integer == 1);
    }
    queue_enqueued_answer(&e, &c->head);
}

static void on_enqueued(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (wants_result(c, reply, err))
        answer_enqueued(c, reply);
    call_free(c);
}

/* The job's arguments of an enqueue script (rqueue.h), with the pull
 * flag when pull (the pull variant's ninth argument). */
static void job_args(struct redis_call *c, json_t *jobs, bool pull)
{
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        rq_enqueue_job_args(&c->rq.args, j);
        if (pull)
            rq_args_adds(&c->rq.args, json_is_true(json_object_get(j, "pull")) ? "1" : "");
    }
}

static struct queue_call *redis_enqueue(void *api, json_t *jobs, bool array, queue_answer_fn fn,
                                        void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_ENQUEUE, fn, data);
    c->array = array;
    if (refused(a, c)) {
        json_decref(jobs);
        return &c->head;
    }
    rq_args_addll(&c->rq.args, (long long)json_array_size(jobs));
    size_t i;
    json_t *j;
    bool pull = false; /* pull kinds' jobs go to their own lanes (redis_pull_lua.c) */
    json_array_foreach(jobs, i, j) pull |= json_is_true(json_object_get(j, "pull"));
    job_args(c, jobs, pull);
    c->jobs = jobs;
    rq_eval(a->cl, &c->rq, &a->shas, pull ? RQ_PULL_ENQUEUE : RQ_ENQUEUE, on_enqueued);
    return &c->head;
}

/* --- enqueue with files ---------------------------------------------------
 *
 * The files live in PostgreSQL, the job in Redis: no transaction spans
 * both, so the order makes the guarantee. An id is reserved first (INCR,
 * as an enqueue would take it), the files are attached to it and that
 * commits, and only then is the job enqueued under it: no worker can see
 * the job before its files are there. What can go wrong leaves files, never
 * a job without them: a failed attach leaves them unattached (the upload
 * deletes them, or the orphan sweep does); a failed or unanswered enqueue
 * leaves them attached to an id with no job, which the worker's sweep of
 * files whose job is gone deletes once the id is old enough
 * (redis_files_sweep.c). The steps go on when the caller forgets the call
 * (its client went away): the job comes with its files, only the answer is
 * lost, as for any enqueue. */

static void on_files_dropped(struct pg_query *q, PGresult *res, const char *err)
{
    struct redis_call *c = container_of(q, struct redis_call, q);
    (void)res;
    if (err)
        LOG(LOG_WARN, "upload: could not delete the files of a job not made (left for the sweep)",
            L_STR("job_id", c->id), L_STR("error", err));
    call_free(c);
}

static void on_enqueued_as(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (err) {
        queue_answer_failed(&c->head, queue_fault_redis(reply, err), "redis", err);
        call_free(c);
        return;
    }
    answer_enqueued(c, reply);
    if (!enqueue_reply_ok(reply) || reply->element[1]->integer == 1) {
        call_free(c);
        return;
    }
    /* a unique_key matched another job: it keeps its own files */
    c->head.fn = NULL;
    c->vals[0] = c->id;
    c->q = (struct pg_query){.fn = on_files_dropped,
                             .sql = SQL_DROP_FILES,
                             .nparams = 1,
                             .values = c->vals,
                             .timeout_ms = QUEUE_API_TIMEOUT_MS,
                             .retry_safe = true};
    pg_query_submit(c->api->pg, &c->q);
}

static void on_files_attached(struct pg_query *q, PGresult *res, const char *err)
{
    struct redis_call *c = container_of(q, struct redis_call, q);
    struct redis_api *a = c->api;
    if (err) {
        queue_answer_failed(&c->head, queue_fault_pg(res), "database", err);
        call_free(c);
        return;
    }
    rq_args_adds(&c->rq.args, "1");
    job_args(c, c->jobs, true);
    rq_args_adds(&c->rq.args, c->id);
    rq_eval(a->cl, &c->rq, &a->shas, RQ_ENQUEUE_AS, on_enqueued_as);
}

static void on_reserved(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (err) {
        queue_answer_failed(&c->head, queue_fault_redis(reply, err), "redis", err);
        call_free(c);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_STRING || !reply->len || reply->len >= sizeof(c->id)) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected reservation answer");
        call_free(c);
        return;
    }
    memcpy(c->id, reply->str, reply->len);
    c->id[reply->len] = '\0';
    c->vals[0] = c->id;
    c->vals[1] = c->files;
    c->q = (struct pg_query){.fn = on_files_attached,
                             .sql = SQL_ATTACH_FILES,
                             .nparams = 2,
                             .values = c->vals,
                             .timeout_ms = QUEUE_API_TIMEOUT_MS,
                             .retry_safe = true,
                             .fail_fast = true};
    pg_query_submit(c->api->pg, &c->q);
}

static struct queue_call *redis_enqueue_files(void *api, json_t *jobs, const char *files,
                                              queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_ENQUEUE_FILES, fn, data);
    c->jobs = jobs;
    c->files = xstrdup(files);
    if (!a->pg) {
        c->refuse.fn = on_no_database;
        loop_timer_in(a->cl->loop, &c->refuse, 0);
        return &c->head;
    }
    if (refused(a, c))
        return &c->head;
    rq_eval(a->cl, &c->rq, &a->shas, RQ_RESERVE_ID, on_reserved);
    return &c->head;
}

/* --- get, cancel, retry --------------------------------------------------- */

static void on_hash(struct redis_cmd *cmd, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(cmd, struct redis_call, rq.cmd);
    if (wants_result(c, reply, err)) {
        json_t *j = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements
                        ? rq_job_json_reply(reply)
                        : NULL;
        if (j)
            answer_object(&c->head, j);
        else
            queue_answer_not_found(&c->head, NOT_FOUND);
    }
    call_free(c);
}

static struct queue_call *redis_get(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_GET, fn, data);
    if (refused(a, c))
        return &c->head;
    char key[64];
    snprintf(key, sizeof(key), RQ_PREFIX "job:%lld", (long long)id);
    c->rq.cmd.fn = on_hash;
    c->rq.cmd.retry_safe = true;
    redis_submitv(a->cl, &c->rq.cmd, 2, (const char *[]){"HGETALL", key});
    return &c->head;
}

static void on_changed(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (!wants_result(c, reply, err)) {
        call_free(c);
        return;
    }
    json_t *j = NULL;
    bool changed = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        changed = reply->element[0]->integer == 1;
        j = rq_job_json_reply(reply->element[1]);
    }
    if (!j) {
        queue_answer_not_found(&c->head, NOT_FOUND);
    } else if (!changed) {
        json_decref(j);
        queue_answer_refused(&c->head, c->kind == RC_CANCEL);
    } else {
        answer_object(&c->head, j);
    }
    call_free(c);
}

static struct queue_call *redis_change(struct redis_api *a, enum redis_call_kind kind, int64_t id,
                                       queue_answer_fn fn, void *data)
{
    struct redis_call *c = call_new(a, kind, fn, data);
    if (refused(a, c))
        return &c->head;
    rq_args_addll(&c->rq.args, (long long)id);
    if (kind == RC_CANCEL)
        rq_args_addll(&c->rq.args, (long long)a->result_ttl_ms);
    rq_eval(a->cl, &c->rq, &a->shas, kind == RC_CANCEL ? RQ_CANCEL : RQ_RETRY, on_changed);
    return &c->head;
}

static struct queue_call *redis_cancel(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    return redis_change(api, RC_CANCEL, id, fn, data);
}

static struct queue_call *redis_retry(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    return redis_change(api, RC_RETRY, id, fn, data);
}

/* --- list ----------------------------------------------------------------- */

static void on_listed(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (!wants_result(c, reply, err)) {
        call_free(c);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected list answer");
        call_free(c);
        return;
    }
    json_t *jobs = json_array();
    const redisReply *hs = reply->element[0], *cur = reply->element[1];
    for (size_t i = 0; i < hs->elements; i++) {
        json_t *j = rq_job_json_reply(hs->element[i]);
        if (j)
            json_array_append_new(jobs, j);
    }
    json_t *out = json_object();
    json_object_set_new(out, "jobs", jobs);
    json_object_set_new(out, "next_cursor",
                        cur->type == REDIS_REPLY_STRING && cur->len
                            ? json_stringn(cur->str, cur->len)
                            : json_null());
    answer_object(&c->head, out);
    call_free(c);
}

static struct queue_call *redis_list(void *api, const struct queue_list_query *lq,
                                     queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_LIST, fn, data);
    if (refused(a, c))
        return &c->head;
    /* status, queue, kind, limit, cursor, budget; "": any */
    rq_args_adds(&c->rq.args, lq->status ? lq->status : "");
    rq_args_adds(&c->rq.args, lq->queue ? lq->queue : "");
    rq_args_adds(&c->rq.args, lq->kind ? lq->kind : "");
    rq_args_addll(&c->rq.args, lq->limit);
    rq_args_adds(&c->rq.args, lq->cursor ? lq->cursor : "");
    rq_args_addll(&c->rq.args, RQ_LIST_BUDGET);
    rq_eval(a->cl, &c->rq, &a->shas, RQ_LIST, on_listed);
    return &c->head;
}

/* --- many jobs ------------------------------------------------------------ */

static void on_got_many(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (!wants_result(c, reply, err)) {
        call_free(c);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected answer for many jobs");
        call_free(c);
        return;
    }
    json_t *jobs = json_array();
    for (size_t i = 0; i < reply->elements; i++) {
        json_t *j = reply->element[i]->elements ? rq_job_json_reply(reply->element[i]) : NULL;
        if (j)
            json_array_append_new(jobs, j);
    }
    answer_object(&c->head, json_pack("{s:o}", "jobs", jobs));
    call_free(c);
}

static struct queue_call *redis_get_many(void *api, const int64_t *ids, unsigned n,
                                         queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_GET_MANY, fn, data);
    if (refused(a, c))
        return &c->head;
    for (unsigned i = 0; i < n; i++)
        rq_args_addll(&c->rq.args, (long long)ids[i]);
    rq_eval(a->cl, &c->rq, &a->shas, RQ_GET_MANY, on_got_many);
    return &c->head;
}

/* --- the change feed (rqueue.h, RQ_LUA_EVENTS) ---------------------------- */

static bool is_string(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

static void on_changes(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (!wants_result(c, reply, err)) {
        call_free(c);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        (reply->elements - 2) % 3 || !is_string(reply->element[0]) ||
        !is_string(reply->element[1])) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected change feed answer");
        call_free(c);
        return;
    }
    json_t *changes = json_array();
    for (size_t i = 2; i + 2 < reply->elements; i += 3) {
        const redisReply *score = reply->element[i], *id = reply->element[i + 1];
        json_t *job =
            is_string(score) && is_string(id) ? rq_job_json_reply(reply->element[i + 2]) : NULL;
        if (!job)
            continue;
        char cursor[64];
        snprintf(cursor, sizeof(cursor), "%s-%s", score->str, id->str);
        json_array_append_new(changes, json_pack("{s:s,s:o}", "cursor", cursor, "job", job));
    }
    char now[40], from[40];
    snprintf(now, sizeof(now), "%s-0", reply->element[0]->str);
    snprintf(from, sizeof(from), "%s-0", reply->element[1]->str);
    answer_object(&c->head,
                  json_pack("{s:o,s:s,s:s}", "changes", changes, "now", now, "from", from));
    call_free(c);
}

static struct queue_call *redis_changes(void *api, const struct queue_cursor *after, unsigned limit,
                                        queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_CHANGES, fn, data);
    if (refused(a, c))
        return &c->head;
    if (after && after->us > 0) {
        rq_args_addll(&c->rq.args, (long long)after->us);
        rq_args_addll(&c->rq.args, (long long)after->id);
    } else {
        rq_args_adds(&c->rq.args, "");
        rq_args_adds(&c->rq.args, "");
    }
    rq_args_addll(&c->rq.args, limit);
    rq_args_addll(&c->rq.args, QUEUE_CHANGES_LEASE_MS);
    rq_args_addll(&c->rq.args, QUEUE_CHANGES_KEEP_S);
    rq_eval(a->cl, &c->rq, &a->shas, RQ_CHANGES, on_changes);
    return &c->head;
}

/* --- counts -------------------------------------------------------------- */

static void on_counted(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_call *c = container_of(rq, struct redis_call, rq);
    if (!wants_result(c, reply, err)) {
        call_free(c);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 3) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "redis", "unexpected counts answer");
        call_free(c);
        return;
    }
    unsigned n = (unsigned)(reply->elements / 3);
    struct queue_count *qs = xcalloc((size_t)n + 1, sizeof(*qs));
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        const redisReply *name = reply->element[3 * i];
        if (name->type != REDIS_REPLY_STRING)
            continue;
        qs[m].queue = name->str; /* NUL-terminated by hiredis */
        for (unsigned s = 0; s < QUEUE_NSTATUS; s++)
            qs[m].n[s] = -1; /* finished jobs are hashes with a TTL: not counted */
        qs[m].n[0] = reply->element[3 * i + 1]->integer;
        qs[m].n[1] = reply->element[3 * i + 2]->integer;
        m++;
    }
    queue_answer_counts(&c->head, qs, m, 0);
    free(qs);
    call_free(c);
}

static struct queue_call *redis_counts(void *api, queue_answer_fn fn, void *data)
{
    struct redis_api *a = api;
    struct redis_call *c = call_new(a, RC_COUNTS, fn, data);
    if (refused(a, c))
        return &c->head;
    rq_args_addll(&c->rq.args, QUEUE_COUNT_CAP);
    rq_eval(a->cl, &c->rq, &a->shas, RQ_COUNTS, on_counted);
    return &c->head;
}

/* --- per loop ------------------------------------------------------------- */

static void *redis_open(const struct queue_api_conns *conns, const char **why)
{
    if (!conns->redis) {
        *why = "no Redis is configured (set REDIS_URL)";
        return NULL;
    }
    struct redis_api *a = xcalloc(1, sizeof(*a));
    a->cl = conns->redis;
    a->pg = conns->pg;
    rq_shas_init(&a->shas);
    a->result_ttl_ms = conns->loop->srv->cfg->result_ttl_ms;
    list_init(&a->live);
    return a;
}

/* After the loop ended: what a forced exit left in flight goes too. */
static void redis_close(void *api)
{
    struct redis_api *a = api;
    if (!a)
        return;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &a->live)
    {
        call_free(list_entry(pos, struct redis_call, node));
    }
    free(a);
}

const struct queue_api_ops redis_api_ops = {
    .open = redis_open,
    .close = redis_close,
    .enqueue = redis_enqueue,
    .enqueue_files = redis_enqueue_files,
    .get = redis_get,
    .list = redis_list,
    .cancel = redis_cancel,
    .retry = redis_retry,
    .counts = redis_counts,
    .get_many = redis_get_many,
    .changes = redis_changes,
};
