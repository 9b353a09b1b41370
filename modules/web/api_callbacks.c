/*
 * api_callbacks.c - the job callbacks of pulled jobs: POST
 * /v1/jobs/{id}/progress|heartbeat|complete|fail, each with the token its
 * claim gave (modules/queue/pull.h says how it fences). Checks and 400s
 * here; the store's part is the backend's report().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "modules/jobs/job_input.h"
#include "modules/queue/pull.h"
#include "modules/web/api_jobs.h"
#include "modules/web/api_pull.h"
#include "modules/web/web.h"

static void on_reported(struct queue_call *qc, const struct queue_answer *ans)
{
    struct web_request *r = qc->data;
    r->on_abort = NULL;
    if (ans->status < 300) {
        web_respond_json(r, ans->status, ans->body, ans->len);
        return;
    }
    if (ans->status == 409)
        LOG(LOG_INFO, "job callback refused: stale token", L_STRN("request_id", r->id, r->id_len));
    else if (ans->status >= 500)
        LOG(LOG_WARN, "job callback failed", L_STR("error", ans->message),
            L_STRN("request_id", r->id, r->id_len));
    web_respond_error(r, ans->status, ans->code, ans->message);
}

static void on_report_abort(struct web_request *r)
{
    queue_call_forget(r->async);
}

static void report(struct web_request *r, enum pull_report_what what, const char *const *fields)
{
    int64_t id;
    struct api_pull *a = api_pull_state(r);
    json_t *in;
    if (!a || !api_job_id_param(r, &id) || !(in = api_pull_body(r)))
        return;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        bool known = false;
        for (const char *const *f = fields; *f; f++)
            known |= !strcmp(*f, key);
        if (!known) {
            char msg[200];
            snprintf(msg, sizeof(msg), "%.100s is not a field of this callback", key);
            api_pull_bad(r, in, msg);
            return;
        }
    }
    json_t *token = json_object_get(in, "token");
    if (!json_is_string(token) || !json_string_length(token) ||
        json_string_length(token) > PULL_TOKEN_MAX) {
        api_pull_bad(r, in, "token is required: the string the claim gave with the job");
        return;
    }
    struct pull_report rep = {
        .what = what,
        .id = id,
        .token = json_string_value(token),
        .percent = -1,
        .retry_in_ms = -1,
    };
    char *result = NULL;
    double d;
    switch (what) {
    case PULL_PROGRESS: {
        if (!api_pull_num(r, in, "percent", 0, 100, -1, &d))
            return;
        rep.percent = (int)d;
        json_t *step = json_object_get(in, "step");
        if (step && !json_is_null(step) &&
            (!json_is_string(step) || json_string_length(step) > PULL_STEP_MAX)) {
            api_pull_bad(r, in, "step must be a string of at most 500 bytes");
            return;
        }
        rep.step = json_string_value(step);
        break;
    }
    case PULL_HEARTBEAT:
        if (!api_pull_num(r, in, "lease", 1, PULL_LEASE_MAX_S, PULL_LEASE_DEFAULT_S, &d))
            return;
        rep.lease_ms = (uint64_t)(d * 1000);
        break;
    case PULL_COMPLETE: {
        json_t *res = json_object_get(in, "result");
        if (res && !json_is_null(res))
            rep.result = result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
        break;
    }
    case PULL_FAIL: {
        json_t *err = json_object_get(in, "error"), *retry = json_object_get(in, "retry");
        if (err && !json_is_null(err) && !json_is_string(err)) {
            api_pull_bad(r, in, "error must be a string");
            return;
        }
        if (retry && !json_is_boolean(retry)) {
            api_pull_bad(r, in, "retry must be true or false");
            return;
        }
        rep.error = json_string_value(err);
        rep.retry = !retry || json_is_true(retry);
        if (!api_pull_num(r, in, "retry_in", 0, JOB_DELAY_MAX_MS / 1000, -1, &d))
            return;
        rep.retry_in_ms = d < 0 ? -1 : (int64_t)(d * 1000);
        break;
    }
    }
    r->async = a->ops->report(a->state, &rep, on_reported, r);
    r->on_abort = on_report_abort;
    free(result);
    json_decref(in);
}

void api_job_progress(struct web_request *r)
{
    static const char *const f[] = {"token", "percent", "step", NULL};
    report(r, PULL_PROGRESS, f);
}

void api_job_heartbeat(struct web_request *r)
{
    static const char *const f[] = {"token", "lease", NULL};
    report(r, PULL_HEARTBEAT, f);
}

void api_job_complete(struct web_request *r)
{
    static const char *const f[] = {"token", "result", NULL};
    report(r, PULL_COMPLETE, f);
}

void api_job_fail(struct web_request *r)
{
    static const char *const f[] = {"token", "error", "retry", "retry_in", NULL};
    report(r, PULL_FAIL, f);
}
