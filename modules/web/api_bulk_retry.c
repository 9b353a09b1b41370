/*
 * api_bulk_retry.c - POST /v1/jobs/retry: retry many finished jobs at
 * once, those a filter selects ({"status": "dead" (the default), "failed"
 * or "cancelled", "kind", "queue", "limit"}), the dashboard's "retry all".
 *
 * Built from the backend's own calls, so both backends do it alike: one
 * list (newest first, at most "limit" jobs, BULK_RETRY_MAX) and then the
 * retry of each job it found, all in flight at once. Each retry is the
 * single-job retry (its fence included: a job retried or deleted meanwhile
 * is skipped, not counted). The answer says how many were retried, which,
 * and whether more matched ("more": call again, the retried ones no longer
 * match).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/web/api_jobs.h"
#include "modules/web/api_pull.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

#define BULK_RETRY_DEFAULT 100 /* jobs one call retries without "limit" */
#define BULK_RETRY_MAX     LIST_MAX

struct bulk;
struct one { /* one job's retry */
    struct bulk *b;
    int64_t id;
    struct queue_call *call; /* in flight, or NULL once answered */
    bool answered, done;     /* done: retried */
};

struct bulk {
    struct web_request *r;
    const struct queue_api_ops *ops;
    void *state;
    json_t *in; /* the body: the filter's strings point into it */
    struct queue_call *list;
    struct one *ones;
    unsigned n, left, retried;
    bool more;
};

static void bulk_free(struct bulk *b)
{
    if (b->r->async == b) {
        b->r->async = NULL;
        b->r->on_abort = NULL;
    }
    json_decref(b->in);
    free(b->ones);
    free(b);
}

static void on_abort(struct web_request *r)
{
    struct bulk *b = r->async;
    if (b->list)
        queue_call_forget(b->list);
    for (unsigned i = 0; i < b->n; i++)
        if (b->ones[i].call)
            queue_call_forget(b->ones[i].call);
    bulk_free(b);
}

static void answer(struct bulk *b)
{
    struct web_request *r = b->r;
    json_t *ids = json_array();
    for (unsigned i = 0; i < b->n; i++)
        if (b->ones[i].done)
            json_array_append_new(ids, json_integer(b->ones[i].id));
    json_t *out = json_pack("{s:I, s:o, s:b}", "retried", (json_int_t)b->retried, "ids", ids,
                            "more", b->more);
    char *body = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    LOG(LOG_INFO, "jobs retried in bulk", L_INT("retried", b->retried),
        L_STRN("request_id", r->id, r->id_len));
    bulk_free(b);
    web_respond_json(r, 200, body, strlen(body));
    free(body);
}

static void on_retried(struct queue_call *qc, const struct queue_answer *ans)
{
    struct one *o = qc->data;
    struct bulk *b = o->b;
    o->call = NULL;
    o->answered = true;
    /* 409: no longer finished (retried or cancelled meanwhile); 404:
     * deleted; others: the store failed this one. */
    o->done = ans->status == 200;
    b->retried += o->done;
    if (ans->status >= 500)
        LOG(LOG_WARN, "bulk retry: one job's retry failed", L_INT("job_id", o->id),
            L_STR("error", ans->detail ? ans->detail : ans->message));
    if (--b->left == 0)
        answer(b);
}

static void on_listed(struct queue_call *qc, const struct queue_answer *ans)
{
    struct bulk *b = qc->data;
    b->list = NULL;
    struct web_request *r = b->r;
    json_t *got = ans->status == 200 ? json_loadb(ans->body, ans->len, 0, NULL) : NULL;
    json_t *jobs = json_object_get(got, "jobs");
    if (!jobs) {
        json_decref(got);
        bulk_free(b);
        api_respond_failed(r, ans);
        return;
    }
    b->more = json_is_string(json_object_get(got, "next_cursor"));
    b->n = (unsigned)json_array_size(jobs);
    b->ones = xcalloc(b->n + 1, sizeof(*b->ones));
    for (unsigned i = 0; i < b->n; i++)
        b->ones[i] = (struct one){
            .b = b, .id = json_integer_value(json_object_get(json_array_get(jobs, i), "id"))};
    json_decref(got);
    if (!b->n) {
        answer(b);
        return;
    }
    /* One more than the calls, dropped after the loop: a retry answered
     * from inside its call cannot end the request mid-loop. */
    b->left = b->n + 1;
    for (unsigned i = 0; i < b->n; i++) {
        struct queue_call *c = b->ops->retry(b->state, b->ones[i].id, on_retried, &b->ones[i]);
        if (!b->ones[i].answered) /* not answered from inside the call */
            b->ones[i].call = c;
    }
    if (--b->left == 0)
        answer(b);
}

static bool filter_field(struct web_request *r, json_t *in, const char *name, const char **out)
{
    json_t *v = json_object_get(in, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > JOB_NAME_MAX) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%s must be a name of 1 to %d bytes", name, JOB_NAME_MAX);
        api_pull_bad(r, in, msg);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* POST /v1/jobs/retry */
void api_jobs_retry_many(struct web_request *r)
{
    void *state = NULL;
    const char *why = NULL;
    if (!web_authorized(r))
        return;
    const struct queue_api_ops *ops = api_jobs_ops(web_loop_of(r->loop), &state, &why);
    if (!ops) {
        api_respond_unavailable(r, why);
        return;
    }
    json_t *in = api_pull_body(r);
    if (!in)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (strcmp(key, "status") && strcmp(key, "kind") && strcmp(key, "queue") &&
            strcmp(key, "limit")) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "%.100s is not a field of a bulk retry (status, kind, "
                     "queue, limit)",
                     key);
            api_pull_bad(r, in, msg);
            return;
        }
    }
    const char *status, *kind, *queue;
    double limit;
    if (!filter_field(r, in, "status", &status) || !filter_field(r, in, "kind", &kind) ||
        !filter_field(r, in, "queue", &queue) ||
        !api_pull_num(r, in, "limit", 1, BULK_RETRY_MAX, BULK_RETRY_DEFAULT, &limit))
        return;
    if (!status)
        status = "dead";
    if (strcmp(status, "dead") && strcmp(status, "failed") && strcmp(status, "cancelled")) {
        api_pull_bad(r, in, "status must be dead, failed or cancelled (what a retry can take)");
        return;
    }
    if (limit != (int)limit) {
        api_pull_bad(r, in, "limit must be an integer");
        return;
    }
    struct bulk *b = xcalloc(1, sizeof(*b));
    b->r = r;
    b->ops = ops;
    b->state = state;
    b->in = in;
    r->async = b;
    r->on_abort = on_abort;
    struct queue_list_query q = {
        .status = status, .kind = kind, .queue = queue, .limit = (int)limit};
    b->list = ops->list(state, &q, on_listed, b);
}
