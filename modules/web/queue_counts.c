/*
 * queue_counts.c - the per-loop sample of job counts (queue_counts.h) and
 * GET /v1/queues, which answers it.
 */
#include "modules/web/queue_counts.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/xalloc.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "proto/rfc3339.h"

struct queue_counts {
    json_t *sample; /* NULL until the first one */
    uint64_t at_ns;
    struct queue_call *inflight;
    struct list waiters; /* struct waiter.node */
};

struct waiter {
    struct web_request *r;
    queue_counts_fn fn;
    struct list node;
};

static struct queue_counts *counts_of(struct web_loop *wl)
{
    if (!wl->counts) {
        wl->counts = xcalloc(1, sizeof(*wl->counts));
        list_init(&wl->counts->waiters);
    }
    return wl->counts;
}

static void on_counted(struct queue_call *qc, const struct queue_answer *ans)
{
    struct web_loop *wl = qc->data;
    struct queue_counts *qs = wl->counts;
    qs->inflight = NULL;
    json_t *got = NULL;
    if (ans->status == 200 && (got = json_loadb(ans->body, ans->len, 0, NULL))) {
        char when[40];
        rfc3339_format_s(wl->loop->wall_s, when, sizeof(when));
        json_object_set_new(got, "sampled_at", json_string(when));
        json_decref(qs->sample);
        qs->sample = got;
        qs->at_ns = wl->loop->now_ns;
    } else if (ans->status >= 500) {
        LOG(LOG_WARN, "job counts failed",
            L_STR("error", ans->detail ? ans->detail : ans->message));
    }
    /* Each waiter answers its request; none can add to the list meanwhile
     * (a new request finds no call in flight and starts its own). */
    struct list ready;
    list_init(&ready);
    while (!list_empty(&qs->waiters)) {
        struct list *n = qs->waiters.next;
        list_remove(n);
        list_append(&ready, n);
    }
    while (!list_empty(&ready)) {
        struct waiter *w = list_entry(ready.next, struct waiter, node);
        list_remove(&w->node);
        w->r->on_abort = NULL;
        w->r->async = NULL;
        queue_counts_fn fn = w->fn;
        struct web_request *r = w->r;
        free(w);
        fn(r, got, got ? NULL : ans);
    }
}

static void on_abort(struct web_request *r)
{
    struct waiter *w = r->async;
    list_remove(&w->node);
    free(w);
}

void queue_counts_get(struct web_request *r, queue_counts_fn fn)
{
    struct web_loop *wl = web_loop_of(r->loop);
    struct queue_counts *qs = counts_of(wl);
    if (qs->sample && r->loop->now_ns - qs->at_ns < (uint64_t)QUEUE_COUNTS_TTL_MS * 1000000) {
        fn(r, qs->sample, NULL);
        return;
    }
    if (!qs->inflight) {
        const char *why = NULL;
        qs->inflight = api_jobs_counts(wl, on_counted, wl, &why);
        if (!qs->inflight) {
            fn(r, NULL,
               &(struct queue_answer){.status = 503, .code = "unavailable", .message = why});
            return;
        }
    }
    struct waiter *w = xmalloc(sizeof(*w));
    *w = (struct waiter){.r = r, .fn = fn};
    list_append(&qs->waiters, &w->node);
    r->async = w;
    r->on_abort = on_abort;
}

void queue_counts_close(struct web_loop *wl)
{
    struct queue_counts *qs = wl->counts;
    if (!qs)
        return;
    if (qs->inflight)
        queue_call_forget(qs->inflight);
    json_decref(qs->sample);
    free(qs);
    wl->counts = NULL;
}

static void answer(struct web_request *r, const json_t *sample, const struct queue_answer *failed)
{
    if (!sample) {
        api_respond_failed(r, failed);
        return;
    }
    char *body = json_dumps(sample, JSON_COMPACT | JSON_PRESERVE_ORDER);
    web_respond_json(r, 200, body, strlen(body));
    free(body);
}

/* GET /v1/queues */
void api_queues(struct web_request *r)
{
    if (!web_authorized(r))
        return;
    queue_counts_get(r, answer);
}
