/*
 * api_jobs_redis.c - /v1/jobs on --queue-backend=redis: the same requests,
 * checks and answers as api_jobs.c, each one script on the web loop's Redis
 * connection (modules/rqueue). A batch POST is one script call, so its jobs
 * are enqueued together or not at all. 201 means Redis has applied it; how
 * durable that is depends on Redis' appendfsync (docs/operations.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/rqueue/rqueue.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

#define RQ_API_TIMEOUT_MS 10000

struct rq_req {
    struct rq_call c;      /* first */
    struct web_request *r; /* NULL once the client went away */
    enum rq_api_kind kind;
    bool array;
    int limit;
};

static bool need_redis(struct web_request *r)
{
    struct web_loop *wl = web_loop_of(r->loop);
    if (wl->has_redis) {
        if (!wl->rq_shas) {
            wl->rq_shas = malloc(sizeof(*wl->rq_shas));
            rq_shas_init(wl->rq_shas);
        }
        return true;
    }
    web_respond_error(r, 503, "unavailable", "no Redis is configured (set REDIS_URL)");
    return false;
}

static void req_abort(struct web_request *r)
{
    ((struct rq_req *)r->async)->r = NULL;
}

static struct rq_req *req_new(struct web_request *r, enum rq_api_kind kind)
{
    struct rq_req *q = calloc(1, sizeof(*q));
    q->r = r;
    q->kind = kind;
    q->c.cmd.timeout_ms = RQ_API_TIMEOUT_MS;
    r->async = q;
    r->on_abort = req_abort;
    return q;
}

/* The request is answered (or gone): NULL, or the request to answer. */
static struct web_request *req_done(struct rq_req *q, const char *err)
{
    struct web_request *r = q->r;
    if (!r)
        return NULL;
    r->on_abort = NULL;
    if (err) {
        char msg[600];
        snprintf(msg, sizeof(msg), "redis: %s", err);
        LOG(LOG_WARN, "api redis call failed", L_STR("error", err),
            L_STRN("request_id", r->id, r->id_len));
        web_respond_error(r, 503, "unavailable", msg);
        return NULL;
    }
    return r;
}

static void respond_json(struct web_request *r, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    web_respond_json(r, status, text, strlen(text));
    free(text);
    json_decref(j);
}

/* --- POST /v1/jobs ------------------------------------------------------ */

static void on_enqueued(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rq_req *q = (struct rq_req *)c;
    struct web_request *r = req_done(q, err);
    if (r &&
        (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 || !reply->elements)) {
        web_respond_error(r, 503, "unavailable", "redis: unexpected enqueue answer");
        r = NULL;
    }
    if (r) {
        char *out = NULL;
        size_t len = 0;
        bool any_created = false;
        FILE *f = open_memstream(&out, &len);
        if (q->array)
            fputs("{\"jobs\":[", f);
        for (size_t k = 0; k < reply->elements / 2; k++) {
            bool created = reply->element[2 * k + 1]->integer == 1;
            any_created |= created;
            fprintf(f, "%s{\"id\":%lld,\"status\":\"pending\",\"created\":%s}", k ? "," : "",
                    reply->element[2 * k]->integer, created ? "true" : "false");
        }
        if (q->array)
            fputs("]}", f);
        fclose(f);
        web_respond_json(r, any_created ? 201 : 200, out, len);
        free(out);
    }
    free(q);
}

void rq_api_enqueue(struct web_request *r)
{
    if (!web_authorized(r) || !need_redis(r))
        return;
    bool array;
    json_t *norm = api_jobs_parse(r, &array);
    if (!norm)
        return;
    struct rq_req *q = req_new(r, RQ_API_GET);
    q->array = array;
    rq_args_addll(&q->c.args, (long long)json_array_size(norm));
    size_t i;
    json_t *j;
    json_array_foreach(norm, i, j)
    {
        rq_enqueue_job_args(&q->c.args, j);
    }
    json_decref(norm);
    struct web_loop *wl = web_loop_of(r->loop);
    rq_eval(&wl->redis, &q->c, wl->rq_shas, RQ_ENQUEUE, on_enqueued);
}

/* --- GET /v1/jobs/{id}, cancel, retry ----------------------------------- */

static void on_hash(struct redis_cmd *cmd, redisReply *reply, const char *err)
{
    struct rq_req *q = (struct rq_req *)cmd;
    struct web_request *r = req_done(q, err);
    if (r) {
        json_t *j = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements
                        ? rq_job_json_reply(reply)
                        : NULL;
        if (j)
            respond_json(r, 200, j);
        else
            web_respond_error(r, 404, "not_found", "no job with this id (or its result expired)");
    }
    free(q);
}

static void on_changed(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rq_req *q = (struct rq_req *)c;
    struct web_request *r = req_done(q, err);
    if (!r) {
        free(q);
        return;
    }
    json_t *j = NULL;
    bool changed = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        changed = reply->element[0]->integer == 1;
        j = rq_job_json_reply(reply->element[1]);
    }
    if (!j)
        web_respond_error(r, 404, "not_found", "no job with this id (or its result expired)");
    else if (!changed) {
        json_decref(j);
        web_respond_error(r, 409, "conflict",
                          q->kind == RQ_API_CANCEL
                              ? "only pending or running jobs can be cancelled"
                              : "only dead, failed or cancelled jobs can be retried");
    } else {
        respond_json(r, 200, j);
    }
    free(q);
}

void rq_api_one(struct web_request *r, enum rq_api_kind kind)
{
    char id[32];
    if (!web_authorized(r) || !need_redis(r) || !api_job_id_param(r, id))
        return;
    struct web_loop *wl = web_loop_of(r->loop);
    struct rq_req *q = req_new(r, kind);
    if (kind == RQ_API_GET) {
        char key[64];
        snprintf(key, sizeof(key), RQ_PREFIX "job:%s", id);
        q->c.cmd.fn = on_hash;
        q->c.cmd.retry_safe = true;
        redis_submitv(&wl->redis, &q->c.cmd, 2, (const char *[]){"HGETALL", key});
        return;
    }
    rq_args_adds(&q->c.args, id);
    if (kind == RQ_API_CANCEL) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)r->loop->srv->cfg->result_ttl_ms);
        rq_args_adds(&q->c.args, ttl);
    }
    rq_eval(&wl->redis, &q->c, wl->rq_shas, kind == RQ_API_CANCEL ? RQ_CANCEL : RQ_RETRY,
            on_changed);
}

/* --- GET /v1/jobs ------------------------------------------------------- */

static void on_listed(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rq_req *q = (struct rq_req *)c;
    struct web_request *r = req_done(q, err);
    if (r && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
              reply->element[0]->type != REDIS_REPLY_ARRAY)) {
        web_respond_error(r, 503, "unavailable", "redis: unexpected list answer");
        r = NULL;
    }
    if (r) {
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
        respond_json(r, 200, out);
    }
    free(q);
}

void rq_api_list(struct web_request *r)
{
    if (!web_authorized(r) || !need_redis(r))
        return;
    struct api_list_params p;
    if (!api_list_params(r, &p))
        return;
    struct rq_req *q = req_new(r, RQ_API_GET);
    for (int i = 0; i < 3; i++)
        rq_args_adds(&q->c.args, p.have[i] ? p.v[i] : "");
    rq_args_addll(&q->c.args, p.limit);
    rq_args_adds(&q->c.args, p.have[4] ? p.v[4] : "");
    rq_args_addll(&q->c.args, RQ_LIST_BUDGET);
    struct web_loop *wl = web_loop_of(r->loop);
    rq_eval(&wl->redis, &q->c, wl->rq_shas, RQ_LIST, on_listed);
}
