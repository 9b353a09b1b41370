/*
 * api_jobs.c - /v1/jobs: enqueue, status, list, cancel, retry.
 *
 * What is the same on every queue backend lives here: the API key, the
 * body and query checks and their 400s, and turning a backend's answer
 * into the HTTP response. Each request is then one call through the
 * backend's queue_api_ops (modules/queue/queue_api.h), on the state it
 * opened on this loop at web start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/queue/queue.h"
#include "modules/queue/queue_api.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "proto/utf8.h"

/* The queue backend's API on one loop. */
struct api_jobs {
    const struct queue_api_ops *ops;
    void *state;     /* NULL: the backend's connections are not configured */
    const char *why; /* then: which, for the 503 */
};

void api_jobs_open(struct web_loop *wl)
{
    struct api_jobs *a = xcalloc(1, sizeof(*a));
    a->ops = queue_backend_of(wl->srv->cfg)->api;
    struct queue_api_conns conns = {
        .loop = wl->loop,
        .pg = wl->has_pg ? &wl->pg : NULL,
        .redis = wl->has_redis ? &wl->redis : NULL,
    };
    a->state = a->ops->open(&conns, &a->why);
    wl->api = a;
}

void api_jobs_close(struct web_loop *wl)
{
    struct api_jobs *a = wl->api;
    if (!a)
        return;
    a->ops->close(a->state);
    free(a);
    wl->api = NULL;
}

struct queue_call *api_jobs_counts(struct web_loop *wl, queue_answer_fn fn, void *data,
                                   const char **why)
{
    if (!api_jobs_ready(wl, why))
        return NULL;
    struct api_jobs *a = wl->api;
    return a->ops->counts(a->state, fn, data);
}

const struct queue_api_ops *api_jobs_ops(struct web_loop *wl, void **state, const char **why)
{
    if (!api_jobs_ready(wl, why))
        return NULL;
    *state = wl->api->state;
    return wl->api->ops;
}

bool api_jobs_ready(struct web_loop *wl, const char **why)
{
    struct api_jobs *a = wl->api;
    if (a && a->state)
        return true;
    *why = a ? a->why : "the job API is not open on this loop";
    return false;
}

struct queue_call *api_jobs_get_many(struct web_loop *wl, const int64_t *ids, unsigned n,
                                     queue_answer_fn fn, void *data, const char **why)
{
    if (!api_jobs_ready(wl, why))
        return NULL;
    struct api_jobs *a = wl->api;
    return a->ops->get_many(a->state, ids, n, fn, data);
}

void api_respond_unavailable(struct web_request *r, const char *message)
{
    web_respond_error_h(r, 503, "unavailable", message, API_RETRY_AFTER_HDR);
}

/* This loop's backend state, or NULL after answering 503. */
static struct api_jobs *need_store(struct web_request *r)
{
    struct api_jobs *a = web_loop_of(r->loop)->api;
    if (a->state)
        return a;
    api_respond_unavailable(r, a->why);
    return NULL;
}

static void on_answer(struct queue_call *c, const struct queue_answer *ans)
{
    struct web_request *r = c->data;
    r->on_abort = NULL;
    if (ans->status < 300) {
        web_respond_json(r, ans->status, ans->body, ans->len);
        return;
    }
    api_respond_failed(r, ans);
}

void api_respond_failed(struct web_request *r, const struct queue_answer *ans)
{
    /* The store's own words go to the log only, tied to the request. */
    if (ans->detail)
        LOG(ans->status == 400 ? LOG_INFO : LOG_WARN, "api job store call failed",
            L_INT("status", ans->status), L_STR("code", ans->code), L_STR("error", ans->detail),
            L_STRN("request_id", r->id, r->id_len));
    if (ans->status == 503)
        api_respond_unavailable(r, ans->message);
    else
        web_respond_error(
            r, ans->status >= 400 ? ans->status : 500, ans->code ? ans->code : "internal",
            ans->message ? ans->message : "the job store's answer was not understood");
}

static void on_abort(struct web_request *r)
{
    queue_call_forget(r->async);
}

/* The request waits for c's answer. */
static void hold(struct web_request *r, struct queue_call *c)
{
    r->async = c;
    r->on_abort = on_abort;
}

/* --- input ---------------------------------------------------------------- */

json_t *api_jobs_parse(struct web_request *r, bool *array_out)
{
    json_t *in = web_json_body(r);
    if (!in)
        return NULL;
    bool array = json_is_array(in);
    size_t n = array ? json_array_size(in) : 1;
    if (array && (n == 0 || n > JOB_BATCH_MAX)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "a job array holds 1 to %d jobs", JOB_BATCH_MAX);
        web_respond_error(r, 400, "invalid_job", msg);
        json_decref(in);
        return NULL;
    }
    json_t *norm = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *field = NULL;
        char why[300], msg[400];
        json_t *j =
            job_input_normalize(array ? json_array_get(in, i) : in, &field, why, sizeof(why));
        if (!j) {
            if (array)
                snprintf(msg, sizeof(msg), "jobs[%zu].%s %s", i, field, why);
            else
                snprintf(msg, sizeof(msg), "%s %s", field, why);
            web_respond_error(r, 400, "invalid_job", msg);
            json_decref(norm);
            json_decref(in);
            return NULL;
        }
        json_array_append_new(norm, j);
    }
    json_decref(in);
    *array_out = array;
    return norm;
}

bool api_job_id_param(struct web_request *r, int64_t *out)
{
    size_t n;
    const char *id = web_param(r, "id", &n);
    bool ok = id && n > 0 && n <= 18;
    for (size_t i = 0; ok && i < n; i++)
        ok = id[i] >= '0' && id[i] <= '9';
    if (!ok) {
        web_respond_error(r, 400, "invalid_id", "id must be a positive integer");
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (id[i] - '0');
    *out = v;
    return true;
}

bool api_list_params(struct web_request *r, struct api_list_params *p)
{
    static const char *const names[] = {"status", "queue", "kind", "limit", "cursor"};
    for (int i = 0; i < 5; i++) {
        p->have[i] = web_query(r, names[i], p->v[i], sizeof(p->v[i]));
        /* Filters are compared with stored text: well-formed UTF-8 only. */
        if (p->have[i] < 0 || (p->have[i] && !utf8_valid(p->v[i], strlen(p->v[i])))) {
            char msg[120];
            snprintf(msg, sizeof(msg),
                     "query parameter %s is malformed, not UTF-8 or too long (at most %zu bytes)",
                     names[i], sizeof(p->v[i]) - 1);
            web_respond_error(r, 400, "invalid_query", msg);
            return false;
        }
    }
    static const char *const statuses[] = {"pending", "running", "succeeded",
                                           "failed",  "dead",    "cancelled"};
    if (p->have[0]) {
        bool ok = false;
        for (int i = 0; i < 6; i++)
            ok |= !strcmp(p->v[0], statuses[i]);
        if (!ok) {
            web_respond_error(r, 400, "invalid_query",
                              "status must be one of pending, running, succeeded, failed, dead, "
                              "cancelled");
            return false;
        }
    }
    int limit = LIST_DEFAULT;
    if (p->have[3]) {
        char *end;
        long lv = strtol(p->v[3], &end, 10);
        if (*end || lv < 1 || lv > LIST_MAX) {
            web_respond_error(r, 400, "invalid_query", "limit must be an integer from 1 to 500");
            return false;
        }
        limit = (int)lv;
    }
    if (p->have[4]) {
        bool ok = *p->v[4] && strlen(p->v[4]) <= 18;
        for (const char *c = p->v[4]; ok && *c; c++)
            ok = *c >= '0' && *c <= '9';
        if (!ok) {
            web_respond_error(r, 400, "invalid_query", "cursor must be a next_cursor value");
            return false;
        }
    }
    p->limit = limit;
    return true;
}

/* --- the calls ------------------------------------------------------------ */

void api_enqueue(struct web_request *r)
{
    struct api_jobs *a;
    if (!web_authorized(r) || !(a = need_store(r)))
        return;
    bool array;
    json_t *jobs = api_jobs_parse(r, &array);
    if (jobs)
        hold(r, a->ops->enqueue(a->state, jobs, array, on_answer, r));
}

bool api_jobs_submit(struct web_request *r, json_t *jobs, queue_answer_fn fn)
{
    struct api_jobs *a = need_store(r);
    if (!a) {
        json_decref(jobs);
        return false;
    }
    hold(r, a->ops->enqueue(a->state, jobs, false, fn, r));
    return true;
}

/* The checks of /v1/jobs/{id}: this loop's backend, or NULL after answering. */
static struct api_jobs *one_job(struct web_request *r, int64_t *id)
{
    struct api_jobs *a;
    if (!web_authorized(r) || !(a = need_store(r)) || !api_job_id_param(r, id))
        return NULL;
    return a;
}

void api_job_get(struct web_request *r)
{
    int64_t id;
    struct api_jobs *a = one_job(r, &id);
    if (a)
        hold(r, a->ops->get(a->state, id, on_answer, r));
}

void api_job_cancel(struct web_request *r)
{
    int64_t id;
    struct api_jobs *a = one_job(r, &id);
    if (a)
        hold(r, a->ops->cancel(a->state, id, on_answer, r));
}

void api_job_retry(struct web_request *r)
{
    int64_t id;
    struct api_jobs *a = one_job(r, &id);
    if (a)
        hold(r, a->ops->retry(a->state, id, on_answer, r));
}

void api_job_list(struct web_request *r)
{
    struct api_jobs *a;
    if (!web_authorized(r) || !(a = need_store(r)))
        return;
    struct api_list_params p;
    if (!api_list_params(r, &p))
        return;
    struct queue_list_query q = {
        .status = p.have[0] ? p.v[0] : NULL,
        .queue = p.have[1] ? p.v[1] : NULL,
        .kind = p.have[2] ? p.v[2] : NULL,
        .cursor = p.have[4] ? p.v[4] : NULL,
        .limit = p.limit,
    };
    hold(r, a->ops->list(a->state, &q, on_answer, r));
}
