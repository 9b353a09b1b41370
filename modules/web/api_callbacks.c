/*
 * api_callbacks.c - the job callbacks of pulled jobs: POST
 * /v1/jobs/{id}/progress|heartbeat|complete|fail, each with the token its
 * claim gave (modules/queue/pull.h says how it fences), and POST
 * /v1/outcomes, the complete/fail reports of many jobs at once (a worker
 * that claimed 100 jobs finishes them with one request and one statement).
 *
 * Checks and 400s here; the store's part is the backend's report() and
 * finish(). A report the backend answers "handoff_pending" (an http kind's
 * 202 whose hand-off the worker has not written yet) is asked again here,
 * every PULL_HANDOFF_RECHECK_MS for at most PULL_HANDOFF_WAIT_MS, then
 * refused as stale: one copy of that wait for both backends and both
 * routes. A draining loop stops waiting at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/queue/pull.h"
#include "modules/web/api_jobs.h"
#include "modules/web/api_pull.h"
#include "modules/web/web.h"

#define MSG_MAX 300

/* One request's reports, from the body until the answer. */
struct reporting {
    struct web_request *r;
    struct api_pull *a;
    json_t *in;               /* the body: the reports' strings point into it */
    struct pull_report *reps; /* batch: reps[0..left) still to settle */
    char **results;           /* n: what reps' result point to */
    unsigned *idx;            /* batch: reps[i] is outcome idx[i] */
    json_t *answers;          /* batch: one per outcome */
    unsigned n, left;
    bool batch;
    struct queue_call *inflight;
    struct timer again;
    struct list node; /* on a->handoffs while waiting */
    unsigned waited_ms;
};

static void reporting_free(struct reporting *g)
{
    if (g->r->async == g) {
        g->r->async = NULL;
        g->r->on_abort = NULL;
    }
    for (unsigned i = 0; i < g->n; i++)
        free(g->results[i]);
    free(g->results);
    free(g->reps);
    free(g->idx);
    json_decref(g->answers);
    json_decref(g->in);
    free(g);
}

static void respond_stale(struct web_request *r)
{
    LOG(LOG_INFO, "job callback refused: stale token", L_STRN("request_id", r->id, r->id_len));
    web_respond_error(r, 409, "stale_token",
                      "the token does not hold this job's current attempt "
                      "(its lease expired and it moved on, or it finished)");
}

/* Batch: every outcome still waiting is answered stale, then all. */
static void respond_outcomes(struct reporting *g)
{
    struct web_request *r = g->r;
    for (unsigned i = 0; i < g->left; i++)
        json_array_set_new(
            g->answers, g->idx[i],
            json_pack("{s:I, s:s}", "id", (json_int_t)g->reps[i].id, "error", "stale_token"));
    json_t *j = json_pack("{s:O}", "outcomes", g->answers);
    char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    reporting_free(g);
    web_respond_json(r, 200, body, strlen(body));
    free(body);
}

static void on_answer(struct queue_call *qc, const struct queue_answer *ans);

static void send_reports(struct reporting *g)
{
    const struct queue_pull_ops *ops = g->a->ops;
    g->inflight = g->batch ? ops->finish(g->a->state, g->reps, g->left, on_answer, g)
                           : ops->report(g->a->state, &g->reps[0], on_answer, g);
}

static void on_again(struct loop *l, struct timer *t)
{
    (void)l;
    struct reporting *g = container_of(t, struct reporting, again);
    list_remove(&g->node);
    list_init(&g->node);
    send_reports(g);
}

/* Some reports found their attempt still under the built-in worker: ask
 * again shortly, or give up (false). */
static bool wait_handoff(struct reporting *g)
{
    if (g->waited_ms >= PULL_HANDOFF_WAIT_MS || g->a->stopped)
        return false;
    g->waited_ms += PULL_HANDOFF_RECHECK_MS;
    g->again.fn = on_again;
    list_append(&g->a->handoffs, &g->node);
    loop_timer_in(g->r->loop, &g->again, PULL_HANDOFF_RECHECK_MS);
    return true;
}

/* Batch: settle what the backend answered, keep what waits for a hand-off. */
static void on_outcomes(struct reporting *g, const struct queue_answer *ans)
{
    json_t *got = json_loadb(ans->body, ans->len, 0, NULL);
    json_t *outs = json_object_get(got, "outcomes");
    if (json_array_size(outs) != g->left) {
        json_decref(got);
        struct web_request *r = g->r;
        reporting_free(g);
        web_respond_error(r, 500, "internal", "the store answered a different number of outcomes");
        return;
    }
    unsigned keep = 0;
    for (unsigned i = 0; i < g->left; i++) {
        json_t *o = json_array_get(outs, i);
        const char *err = json_string_value(json_object_get(o, "error"));
        if (err && !strcmp(err, "handoff_pending")) {
            g->reps[keep] = g->reps[i];
            g->idx[keep++] = g->idx[i];
        } else {
            json_array_set(g->answers, g->idx[i], o);
        }
    }
    json_decref(got);
    g->left = keep;
    if (!keep || !wait_handoff(g))
        respond_outcomes(g);
}

static void on_answer(struct queue_call *qc, const struct queue_answer *ans)
{
    struct reporting *g = qc->data;
    struct web_request *r = g->r;
    g->inflight = NULL;
    if (ans->status >= 500) {
        LOG(LOG_WARN, "job callback failed", L_STR("error", ans->message),
            L_STRN("request_id", r->id, r->id_len));
    } else if (g->batch && ans->status < 300) {
        on_outcomes(g, ans);
        return;
    } else if (ans->status == 409) {
        if (!strcmp(ans->code, "handoff_pending") && wait_handoff(g))
            return;
        reporting_free(g);
        respond_stale(r);
        return;
    }
    reporting_free(g);
    if (ans->status < 300)
        web_respond_json(r, ans->status, ans->body, ans->len);
    else
        web_respond_error(r, ans->status, ans->code, ans->message);
}

static void on_abort(struct web_request *r)
{
    struct reporting *g = r->async;
    if (g->inflight)
        queue_call_forget(g->inflight);
    if (!list_empty(&g->node)) {
        list_remove(&g->node);
        loop_timer_cancel(r->loop, &g->again);
    }
    reporting_free(g);
}

void api_callbacks_stop(struct api_pull *a)
{
    while (!list_empty(&a->handoffs)) {
        struct reporting *g = list_entry(a->handoffs.next, struct reporting, node);
        list_remove(&g->node);
        list_init(&g->node);
        loop_timer_cancel(g->r->loop, &g->again);
        if (g->batch) {
            respond_outcomes(g);
        } else {
            struct web_request *r = g->r;
            reporting_free(g);
            respond_stale(r);
        }
    }
}

/* --- checks ------------------------------------------------------------------ */

/* An optional number field in [lo, hi], else def; false with msg. */
static bool num_field(json_t *in, const char *name, double lo, double hi, double def, double *out,
                      char *msg)
{
    json_t *v = json_object_get(in, name);
    if (!v || json_is_null(v)) {
        *out = def;
        return true;
    }
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        snprintf(msg, MSG_MAX, "%s must be a number from %g to %g", name, lo, hi);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

/* in's fields as one report; false with msg. Every field must be in
 * fields or extra; *result takes complete's result text (the caller frees
 * it), the strings rep points to stay in in. */
static bool parse_report(json_t *in, enum pull_report_what what, const char *const *fields,
                         const char *const *extra, struct pull_report *rep, char **result,
                         char *msg)
{
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        bool known = false;
        for (const char *const *f = fields; *f; f++)
            known |= !strcmp(*f, key);
        for (const char *const *f = extra; f && *f; f++)
            known |= !strcmp(*f, key);
        if (!known) {
            snprintf(msg, MSG_MAX, "%.100s is not a field of this callback", key);
            return false;
        }
    }
    json_t *token = json_object_get(in, "token");
    if (!json_is_string(token) || !json_string_length(token) ||
        json_string_length(token) > PULL_TOKEN_MAX) {
        snprintf(msg, MSG_MAX, "token is required: the string the claim gave with the job");
        return false;
    }
    rep->what = what;
    rep->token = json_string_value(token);
    rep->percent = -1;
    rep->retry_in_ms = -1;
    double d;
    switch (what) {
    case PULL_PROGRESS: {
        if (!num_field(in, "percent", 0, 100, -1, &d, msg))
            return false;
        rep->percent = (int)d;
        json_t *step = json_object_get(in, "step");
        if (step && !json_is_null(step) &&
            (!json_is_string(step) || json_string_length(step) > PULL_STEP_MAX)) {
            snprintf(msg, MSG_MAX, "step must be a string of at most %d bytes", PULL_STEP_MAX);
            return false;
        }
        rep->step = json_string_value(step);
        break;
    }
    case PULL_HEARTBEAT:
        if (!num_field(in, "lease", 1, PULL_LEASE_MAX_S, PULL_LEASE_DEFAULT_S, &d, msg))
            return false;
        rep->lease_ms = (uint64_t)(d * 1000);
        break;
    case PULL_COMPLETE: {
        json_t *res = json_object_get(in, "result");
        if (res && !json_is_null(res))
            rep->result = *result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
        break;
    }
    case PULL_FAIL: {
        json_t *err = json_object_get(in, "error"), *retry = json_object_get(in, "retry");
        if (err && !json_is_null(err) && !json_is_string(err)) {
            snprintf(msg, MSG_MAX, "error must be a string");
            return false;
        }
        if (retry && !json_is_boolean(retry)) {
            snprintf(msg, MSG_MAX, "retry must be true or false");
            return false;
        }
        rep->error = json_string_value(err);
        rep->retry = !retry || json_is_true(retry);
        if (!num_field(in, "retry_in", 0, JOB_DELAY_MAX_MS / 1000, -1, &d, msg))
            return false;
        rep->retry_in_ms = d < 0 ? -1 : (int64_t)(d * 1000);
        break;
    }
    }
    return true;
}

static const char *const progress_fields[] = {"token", "percent", "step", NULL};
static const char *const heartbeat_fields[] = {"token", "lease", NULL};
static const char *const complete_fields[] = {"token", "result", NULL};
static const char *const fail_fields[] = {"token", "error", "retry", "retry_in", NULL};

static struct reporting *reporting_new(struct web_request *r, struct api_pull *a, json_t *in,
                                       unsigned n)
{
    struct reporting *g = xcalloc(1, sizeof(*g));
    g->r = r;
    g->a = a;
    g->in = in;
    g->n = g->left = n;
    g->reps = xcalloc(n, sizeof(*g->reps));
    g->results = xcalloc(n, sizeof(*g->results));
    list_init(&g->node);
    return g;
}

static void start(struct reporting *g)
{
    g->r->async = g;
    g->r->on_abort = on_abort;
    send_reports(g);
}

static void report(struct web_request *r, enum pull_report_what what, const char *const *fields)
{
    int64_t id;
    struct api_pull *a = api_pull_state(r);
    json_t *in;
    if (!a || !api_job_id_param(r, &id) || !(in = api_pull_body(r)))
        return;
    struct reporting *g = reporting_new(r, a, in, 1);
    char msg[MSG_MAX];
    if (!parse_report(in, what, fields, NULL, &g->reps[0], &g->results[0], msg)) {
        g->in = NULL;
        reporting_free(g);
        api_pull_bad(r, in, msg);
        return;
    }
    g->reps[0].id = id;
    start(g);
}

void api_job_progress(struct web_request *r)
{
    report(r, PULL_PROGRESS, progress_fields);
}

void api_job_heartbeat(struct web_request *r)
{
    report(r, PULL_HEARTBEAT, heartbeat_fields);
}

void api_job_complete(struct web_request *r)
{
    report(r, PULL_COMPLETE, complete_fields);
}

void api_job_fail(struct web_request *r)
{
    report(r, PULL_FAIL, fail_fields);
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* POST /v1/outcomes {"outcomes":[{"id","token","ok":true,"result"} or
 * {"id","token","ok":false,"error","retry","retry_in"}, ...]}: 200
 * {"outcomes":[{"id","status"} or {"id","error"}, ...]} in the same order,
 * error "stale_token" or "not_found"; a 400 names the first bad outcome and
 * applies none. */
void api_outcomes(struct web_request *r)
{
    static const char *const ok_extra[] = {"id", "ok", NULL};
    struct api_pull *a = api_pull_state(r);
    json_t *in;
    if (!a || !(in = api_pull_body(r)))
        return;
    json_t *outs = json_object_get(in, "outcomes");
    char msg[MSG_MAX + 40];
    if (json_object_size(in) != 1 || !json_is_array(outs) || !json_array_size(outs) ||
        json_array_size(outs) > PULL_OUTCOMES_MAX) {
        snprintf(msg, sizeof(msg), "the body must be {\"outcomes\": [...]} with 1 to %d outcomes",
                 PULL_OUTCOMES_MAX);
        api_pull_bad(r, in, msg);
        return;
    }
    unsigned n = (unsigned)json_array_size(outs);
    struct reporting *g = reporting_new(r, a, in, n);
    g->batch = true;
    g->idx = xmalloc(n * sizeof(*g->idx));
    g->answers = json_array();
    int64_t *ids = xmalloc(n * sizeof(*ids));
    bool bad = false;
    for (unsigned i = 0; i < n && !bad; i++) {
        json_t *o = json_array_get(outs, i), *id = json_object_get(o, "id"),
               *ok = json_object_get(o, "ok");
        char why[MSG_MAX] = "";
        if (!json_is_object(o))
            snprintf(why, sizeof(why), "must be an object");
        else if (!json_is_integer(id) || json_integer_value(id) < 1)
            snprintf(why, sizeof(why), "id must be a job id (a positive integer)");
        else if (!json_is_boolean(ok))
            snprintf(why, sizeof(why), "ok must be true (complete) or false (fail)");
        else if (!parse_report(o, json_is_true(ok) ? PULL_COMPLETE : PULL_FAIL,
                               json_is_true(ok) ? complete_fields : fail_fields, ok_extra,
                               &g->reps[i], &g->results[i], why))
            ;
        if (*why) {
            snprintf(msg, sizeof(msg), "outcomes[%u]: %s", i, why);
            bad = true;
            break;
        }
        g->reps[i].id = ids[i] = json_integer_value(id);
        g->idx[i] = i;
        json_array_append_new(g->answers, json_null());
    }
    if (!bad) {
        qsort(ids, n, sizeof(*ids), cmp_id);
        for (unsigned i = 1; i < n && !bad; i++)
            if (ids[i] == ids[i - 1]) {
                snprintf(msg, sizeof(msg), "job %lld has more than one outcome", (long long)ids[i]);
                bad = true;
            }
    }
    free(ids);
    if (bad) {
        g->in = NULL;
        reporting_free(g);
        api_pull_bad(r, in, msg);
        return;
    }
    start(g);
}
