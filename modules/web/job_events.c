/*
 * job_events.c - GET /v1/jobs/{id}/events: a job's state and progress as
 * Server-Sent Events, from the moment of the request until the job ends.
 *
 * One watcher per web loop (an sse_hub, sse.c: timer, framing, heartbeats
 * and drain are shared with GET /v1/events). While any stream is open it
 * asks the store for
 * every watched job at once, each JOB_EVENTS_POLL_MS (one get_many call
 * however many streams: a thousand clients watching cost what one does),
 * and writes an event to each stream whose job changed. With no stream
 * open there is no timer and no call: the queues pay nothing for the
 * feature. Both backends answer get_many, so both stream the same events.
 *
 * The stream: `id: <updated_at>`, `event: job`, `data: <the job as GET
 * /v1/jobs/{id} shows it>`; a comment line every JOB_EVENTS_HEARTBEAT_MS so
 * proxies keep the connection; the answer ends (the connection closes)
 * after the event of a finished job (succeeded, failed, dead, cancelled),
 * with `event: gone` when the job disappears (deleted, or its Redis hash
 * expired). A client reconnecting with Last-Event-ID equal to the job's
 * current updated_at gets no repeat of the event it has. A client that
 * reads slower than events come gets fewer of them: past
 * JOB_EVENTS_MAX_PENDING bytes unsent, events are skipped until it catches
 * up, and the next one carries the latest state. The first poll decides
 * the status: an unknown job is 404 as GET /v1/jobs/{id} would say.
 */
#include "modules/web/job_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/xalloc.h"
#include "modules/web/api_jobs.h"
#include "modules/web/sse.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

struct job_events {
    struct sse_hub hub;
    struct web_loop *wl;
    struct queue_call *inflight;
    int64_t *ids; /* the distinct jobs of the poll in flight */
    unsigned nids;
};

struct job_stream {
    struct sse_stream sse; /* first */
    int64_t id;
    char *last;                /* the job as last sent, to tell a change */
    char seen[SSE_ID_MAX + 1]; /* Last-Event-ID given, until the first event */
};

static void poll_now(struct sse_hub *h);

static void free_stream(struct sse_stream *ss)
{
    struct job_stream *s = (struct job_stream *)ss;
    free(s->last);
    free(s);
}

static struct job_events *events_of(struct web_loop *wl)
{
    if (!wl->events) {
        struct job_events *je = xcalloc(1, sizeof(*je));
        je->wl = wl;
        sse_hub_init(&je->hub, wl->loop);
        je->hub.poll_ms = JOB_EVENTS_POLL_MS;
        je->hub.heartbeat_ms = JOB_EVENTS_HEARTBEAT_MS;
        je->hub.max_pending = JOB_EVENTS_MAX_PENDING;
        je->hub.poll = poll_now;
        je->hub.free_stream = free_stream;
        wl->events = je;
    }
    return wl->events;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_job_id(const void *a, const void *b)
{
    int64_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    int64_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return (x > y) - (x < y);
}

static json_t *find(json_t **sorted, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int64_t v = json_integer_value(json_object_get(sorted[mid], "id"));
        if (v == id)
            return sorted[mid];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool job_events_finished(const json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "status"));
    return st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "dead") ||
                  !strcmp(st, "cancelled"));
}

/* One stream against the job's state now (NULL: no such job). */
static void deliver(struct job_stream *s, json_t *job)
{
    if (!s->sse.started && !job) {
        struct web_request *r = s->sse.r;
        sse_done(&s->sse);
        web_respond_error(r, 404, "not_found", "no job with this id");
        return;
    }
    if (!sse_start(&s->sse))
        return;
    if (!job) {
        static const char empty[] = "{}";
        if (!sse_send(&s->sse, NULL, "gone", empty, sizeof(empty) - 1))
            sse_end(&s->sse);
        return;
    }
    char *text = json_dumps(job, JSON_COMPACT | JSON_PRESERVE_ORDER);
    const char *version = json_string_value(json_object_get(job, "updated_at"));
    if (!version)
        version = "";
    bool same = s->last ? !strcmp(s->last, text) : (*s->seen && !strcmp(s->seen, version));
    if (same || sse_slow(&s->sse)) {
        free(text);
        if (same && job_events_finished(job))
            sse_end(&s->sse);
        return;
    }
    if (sse_send(&s->sse, version, "job", text, strlen(text))) {
        free(text);
        return; /* on_abort follows */
    }
    free(s->last);
    s->last = text;
    if (job_events_finished(job))
        sse_end(&s->sse);
}

static void on_polled(struct queue_call *qc, const struct queue_answer *ans)
{
    struct job_events *je = qc->data;
    je->inflight = NULL;
    json_t *got = ans->status == 200 ? json_loadb(ans->body, ans->len, 0, NULL) : NULL;
    json_t *jobs = json_object_get(got, "jobs");
    struct list *pos, *tmp;
    if (!jobs) {
        /* The store failed this time: the streams wait for the next poll;
         * new ones whose job is not known yet get the store's answer. */
        LOG(LOG_WARN, "job events: the store did not answer",
            L_STR("error", ans->detail    ? ans->detail
                           : ans->message ? ans->message
                                          : "an answer that is not the jobs"));
        list_for_each_safe(pos, tmp, &je->hub.streams)
        {
            struct sse_stream *s = list_entry(pos, struct sse_stream, node);
            if (s->started)
                continue;
            struct web_request *r = s->r;
            sse_done(s);
            api_respond_failed(r, ans);
        }
        json_decref(got);
        sse_arm(&je->hub, JOB_EVENTS_POLL_MS);
        return;
    }
    size_t n = json_array_size(jobs);
    json_t **sorted = xcalloc(n + 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(jobs, i);
    qsort(sorted, n, sizeof(*sorted), cmp_job_id);
    /* Only the jobs this poll asked for: a stream opened meanwhile waits
     * for the next one rather than reading its job as missing. */
    list_for_each_safe(pos, tmp, &je->hub.streams)
    {
        struct job_stream *s = (struct job_stream *)list_entry(pos, struct sse_stream, node);
        if (bsearch(&s->id, je->ids, je->nids, sizeof(*je->ids), cmp_id))
            deliver(s, find(sorted, n, s->id));
    }
    free(sorted);
    json_decref(got);
    sse_heartbeat(&je->hub);
    sse_arm(&je->hub, JOB_EVENTS_POLL_MS);
}

/* Ask for every watched job once. */
static void poll_now(struct sse_hub *h)
{
    struct job_events *je = container_of(h, struct job_events, hub);
    if (je->inflight || h->stopped || !h->nstreams)
        return;
    je->ids = xrealloc(je->ids, (size_t)h->nstreams * sizeof(*je->ids));
    unsigned n = 0;
    struct list *pos;
    list_for_each(pos, &h->streams)
    {
        je->ids[n++] = ((struct job_stream *)list_entry(pos, struct sse_stream, node))->id;
    }
    qsort(je->ids, n, sizeof(*je->ids), cmp_id);
    je->nids = 0;
    for (unsigned i = 0; i < n; i++) /* distinct: several clients may watch one job */
        if (!je->nids || je->ids[je->nids - 1] != je->ids[i])
            je->ids[je->nids++] = je->ids[i];
    const char *why = NULL;
    je->inflight = api_jobs_get_many(je->wl, je->ids, je->nids, on_polled, je, &why);
    if (!je->inflight) { /* no store on this loop: answered at open, never here */
        LOG(LOG_WARN, "job events: no store", L_STR("error", why));
        sse_arm(h, JOB_EVENTS_POLL_MS);
    }
}

/* GET /v1/jobs/{id}/events */
void api_job_events(struct web_request *r)
{
    int64_t id;
    if (!web_authorized(r) || !api_job_id_param(r, &id))
        return;
    struct web_loop *wl = web_loop_of(r->loop);
    struct job_events *je = events_of(wl);
    const char *why = NULL;
    if (!api_jobs_ready(wl, &why)) {
        api_respond_unavailable(r, why);
        return;
    }
    if (je->hub.stopped || wl->draining) {
        api_respond_unavailable(r, "the server is shutting down");
        return;
    }
    if (je->hub.nstreams >= JOB_EVENTS_MAX_STREAMS) {
        api_respond_unavailable(r, "too many job event streams on this server thread");
        return;
    }
    struct job_stream *s = xcalloc(1, sizeof(*s));
    s->id = id;
    const struct http1_header *h = http1_find_header(r->http, "last-event-id");
    if (h && h->value_len <= SSE_ID_MAX)
        snprintf(s->seen, sizeof(s->seen), "%.*s", (int)h->value_len, h->value);
    sse_add(&je->hub, &s->sse, r);
    poll_now(&je->hub); /* the first answer at once, not a poll period later */
}

void job_events_stop(struct web_loop *wl)
{
    if (wl->events)
        sse_stop(&wl->events->hub);
}

void job_events_close(struct web_loop *wl)
{
    struct job_events *je = wl->events;
    if (!je)
        return;
    if (je->inflight)
        queue_call_forget(je->inflight);
    sse_close(&je->hub);
    free(je->ids);
    free(je);
    wl->events = NULL;
}
