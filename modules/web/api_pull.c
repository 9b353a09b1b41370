/*
 * api_pull.c - external workers that pull: POST /v1/claim, and the pull
 * backend's state on a web loop.
 *
 * Request checks and their 400s live here; the store's part is the
 * backend's queue_pull_ops (modules/queue/pull.h). A claim with a wait that
 * finds nothing joins this loop's waiting list; the backend calls wake()
 * when pull jobs may be due (never once per waiting client), and each
 * waiting claim is then tried once. A claim woken while its previous try
 * is still in flight tries again when that one comes back empty, so a job
 * that arrives in between is never missed. A client that goes away leaves
 * the list at once (a try in flight is forgotten, and the backend hands
 * back what it leased); a draining loop answers every waiting claim 204.
 * The job callbacks are in api_callbacks.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/kinds/kind.h"
#include "modules/kinds/kind_http.h"
#include "modules/kinds/kinds_file.h"
#include "modules/queue/pull.h"
#include "modules/queue/queue.h"
#include "modules/queue/queue_worker.h"
#include "modules/web/api_jobs.h"
#include "modules/web/api_pull.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

struct claim {
    struct web_request *r;
    struct api_pull *a;
    struct list node; /* on a->waiting while it waits */
    struct pull_claim_req req;
    struct pull_call *inflight;
    struct timer deadline;
    bool waiting, expired, again;
};

static void on_wake(void *data);

void api_pull_open(struct web_loop *wl)
{
    struct api_pull *a = xcalloc(1, sizeof(*a));
    list_init(&a->waiting);
    list_init(&a->handoffs);
    wl->pull = a;
    const struct queue_backend *b = queue_backend_of(wl->srv->cfg);
    if (!b->pull) {
        a->why = "pull workers are not available on this queue backend";
        return;
    }
    /* The job callbacks serve pull kinds, and http kinds' jobs handed off
     * by a 202 where the backend can hand them off. */
    bool any = false;
    for (unsigned i = 0; i < job_kinds_count(); i++) {
        const struct job_kind *k = job_kind_at(i);
        any |= job_kind_is_pull(k) || (b->worker->can_hand_off && k->start == http_kind_start);
    }
    if (!any) {
        a->why = "no pull kinds are declared (--pull-kinds, or \"type\": \"pull\" in --kinds)";
        return;
    }
    const struct config *cfg = wl->srv->cfg;
    struct queue_api_conns conns = {
        .loop = wl->loop,
        .pg = wl->has_pg ? &wl->pg : NULL,
        .redis = wl->has_redis ? &wl->redis : NULL,
    };
    a->ops = b->pull;
    a->state = a->ops->open(&conns, cfg, on_wake, a, &a->why);
}

static void claim_end(struct claim *c)
{
    struct api_pull *a = c->a;
    if (c->waiting) {
        list_remove(&c->node);
        c->waiting = false;
        loop_timer_cancel(c->r->loop, &c->deadline);
        if (list_empty(&a->waiting) && a->state)
            a->ops->watch(a->state, false);
    }
    json_decref(c->req.kinds);
    json_decref(c->req.queues);
    free(c);
}

static void respond_204(struct claim *c)
{
    struct web_request *r = c->r;
    r->on_abort = NULL;
    r->on_peer_eof = NULL;
    claim_end(c);
    web_respond(r, 204, NULL, NULL, 0, NULL);
}

static void try_claim(struct claim *c);

static void on_claimed(struct queue_call *qc, const struct queue_answer *ans)
{
    struct claim *c = qc->data;
    struct pull_call *pc = container_of(qc, struct pull_call, head);
    c->inflight = NULL;
    struct web_request *r = c->r;
    if (ans->status >= 300) {
        LOG(LOG_WARN, "claim failed", L_STR("error", ans->message),
            L_STRN("request_id", r->id, r->id_len));
        r->on_abort = NULL;
        r->on_peer_eof = NULL;
        claim_end(c);
        web_respond_error(r, ans->status, ans->code, ans->message);
        return;
    }
    if (pc->njobs) {
        r->on_abort = NULL;
        r->on_peer_eof = NULL;
        claim_end(c);
        web_respond_json(r, 200, ans->body, ans->len);
        return;
    }
    if (!c->waiting || c->expired || c->a->stopped) {
        respond_204(c);
        return;
    }
    if (c->again) {
        c->again = false;
        try_claim(c);
    }
}

static void try_claim(struct claim *c)
{
    c->inflight = c->a->ops->claim(c->a->state, &c->req, on_claimed, c);
}

static void on_wake(void *data)
{
    struct api_pull *a = data;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &a->waiting)
    {
        struct claim *c = list_entry(pos, struct claim, node);
        if (c->inflight)
            c->again = true;
        else
            try_claim(c);
    }
}

static void on_deadline(struct loop *l, struct timer *t)
{
    (void)l;
    struct claim *c = container_of(t, struct claim, deadline);
    if (c->inflight)
        c->expired = true; /* answered when the try comes back */
    else
        respond_204(c);
}

static void on_abort(struct web_request *r)
{
    struct claim *c = r->async;
    if (c->inflight)
        queue_call_forget(&c->inflight->head);
    claim_end(c);
}

static void on_peer_eof(struct web_request *r)
{
    struct claim *c = r->async;
    if (!c->waiting)
        return; /* a claim without wait is answered as soon as it is back */
    if (c->inflight)
        queue_call_forget(&c->inflight->head);
    c->inflight = NULL;
    respond_204(c);
}

void api_pull_stop(struct web_loop *wl)
{
    struct api_pull *a = wl->pull;
    if (!a || a->stopped)
        return;
    a->stopped = true;
    while (!list_empty(&a->waiting)) {
        struct claim *c = list_entry(a->waiting.next, struct claim, node);
        if (c->inflight) { /* answered 204 (or its jobs) when the try comes back */
            list_remove(&c->node);
            c->waiting = false;
            loop_timer_cancel(c->r->loop, &c->deadline);
            continue;
        }
        respond_204(c);
    }
    api_callbacks_stop(a);
    if (a->state)
        a->ops->stop(a->state);
}

void api_pull_close(struct web_loop *wl)
{
    struct api_pull *a = wl->pull;
    if (!a)
        return;
    if (a->state)
        a->ops->close(a->state);
    free(a);
    wl->pull = NULL;
}

/* This loop's pull state, or NULL after answering. */
struct api_pull *api_pull_state(struct web_request *r)
{
    if (!web_authorized(r))
        return NULL;
    struct api_pull *a = web_loop_of(r->loop)->pull;
    if (a->state && !a->stopped)
        return a;
    if (!a->ops) /* no pull kinds, or a backend without them */
        web_respond_error(r, 404, "not_found", a->why);
    else
        web_respond_error(r, 503, "unavailable",
                          a->stopped ? "the server is shutting down" : a->why);
    return NULL;
}

json_t *api_pull_body(struct web_request *r)
{
    json_error_t jerr;
    json_t *in = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(in)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "body must be a JSON object%s%s", in ? "" : ": ",
                 in ? "" : jerr.text);
        json_decref(in);
        web_respond_error(r, 400, "invalid_json", msg);
        return NULL;
    }
    return in;
}

bool api_pull_bad(struct web_request *r, json_t *in, const char *msg)
{
    json_decref(in);
    web_respond_error(r, 400, "invalid_request", msg);
    return false;
}

/* An optional number field in [lo, hi], else def; false after a 400. */
bool api_pull_num(struct web_request *r, json_t *in, const char *name, double lo, double hi,
                  double def, double *out)
{
    json_t *v = json_object_get(in, name);
    if (!v || json_is_null(v)) {
        *out = def;
        return true;
    }
    char msg[160];
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        snprintf(msg, sizeof(msg), "%s must be a number from %g to %g", name, lo, hi);
        return api_pull_bad(r, in, msg);
    }
    *out = json_number_value(v);
    return true;
}

/* A JSON array of 1..PULL_NAMES_MAX strings; false after a 400. */
static bool names_field(struct web_request *r, json_t *in, const char *name, bool required)
{
    json_t *v = json_object_get(in, name);
    char msg[160];
    if (!v && !required)
        return true;
    bool ok = json_is_array(v) && json_array_size(v) >= 1 && json_array_size(v) <= PULL_NAMES_MAX;
    for (size_t i = 0; ok && i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        ok = json_is_string(s) && json_string_length(s) >= 1 &&
             json_string_length(s) <= JOB_NAME_MAX;
    }
    if (!ok) {
        snprintf(msg, sizeof(msg), "%s must be an array of 1 to %d names", name, PULL_NAMES_MAX);
        return api_pull_bad(r, in, msg);
    }
    return true;
}

void api_claim(struct web_request *r)
{
    struct api_pull *a = api_pull_state(r);
    json_t *in;
    if (!a || !(in = api_pull_body(r)))
        return;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (strcmp(key, "kinds") && strcmp(key, "queues") && strcmp(key, "max") &&
            strcmp(key, "lease") && strcmp(key, "wait")) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "%.100s is not a claim field (kinds, queues, max, lease, wait)", key);
            api_pull_bad(r, in, msg);
            return;
        }
    }
    double max, lease, wait;
    if (!names_field(r, in, "kinds", true) || !names_field(r, in, "queues", false) ||
        !api_pull_num(r, in, "max", 1, PULL_CLAIM_MAX, PULL_CLAIM_DEFAULT, &max) ||
        !api_pull_num(r, in, "lease", 1, PULL_LEASE_MAX_S, PULL_LEASE_DEFAULT_S, &lease) ||
        !api_pull_num(r, in, "wait", 0, PULL_WAIT_MAX_S, 0, &wait))
        return;
    json_t *kinds = json_object_get(in, "kinds");
    for (size_t i = 0; i < json_array_size(kinds); i++) {
        json_t *k = json_array_get(kinds, i);
        if (!job_kind_is_pull(job_kind_find(json_string_value(k), json_string_length(k)))) {
            char msg[1200];
            size_t n = (size_t)snprintf(msg, sizeof(msg),
                                        "kinds[%zu] '%.100s' is not a pull kind "
                                        "(pull kinds:",
                                        i, json_string_value(k));
            for (unsigned j = 0; j < job_kinds_count() && n < sizeof(msg); j++)
                if (job_kind_is_pull(job_kind_at(j)))
                    n += (size_t)snprintf(msg + n, sizeof(msg) - n, " %s", job_kind_at(j)->name);
            if (n < sizeof(msg))
                snprintf(msg + n, sizeof(msg) - n, ")");
            api_pull_bad(r, in, msg);
            return;
        }
    }
    struct claim *c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->a = a;
    c->req.kinds = json_incref(kinds);
    c->req.queues = json_object_get(in, "queues") ? json_incref(json_object_get(in, "queues"))
                                                  : json_pack("[s]", "default");
    c->req.max = (unsigned)max;
    c->req.lease_ms = (uint64_t)(lease * 1000);
    json_decref(in);
    r->async = c;
    r->on_abort = on_abort;
    r->on_peer_eof = on_peer_eof;
    uint64_t wait_ms = (uint64_t)(wait * 1000);
    if (wait_ms) {
        c->waiting = true;
        if (list_empty(&a->waiting))
            a->ops->watch(a->state, true);
        list_append(&a->waiting, &c->node);
        c->deadline.fn = on_deadline;
        loop_timer_in(r->loop, &c->deadline, wait_ms);
    }
    try_claim(c);
}
