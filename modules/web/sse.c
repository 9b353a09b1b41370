/*
 * sse.c - the Server-Sent Events machinery the event routes share (sse.h):
 * streams on a per-loop hub, the poll timer, framing, heartbeats, drain.
 */
#include "modules/web/sse.h"

#include <stdio.h>
#include <string.h>

#include "kernel/container_of.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"

static void on_tick(struct loop *l, struct timer *t)
{
    (void)l;
    struct sse_hub *h = container_of(t, struct sse_hub, tick);
    h->ticking = false;
    h->poll(h);
}

void sse_hub_init(struct sse_hub *h, struct loop *l)
{
    h->loop = l;
    list_init(&h->streams);
    h->tick.fn = on_tick;
}

static void unlink_free(struct sse_stream *s)
{
    list_remove(&s->node);
    s->hub->nstreams--;
    s->hub->free_stream(s);
}

static void on_abort(struct web_request *r)
{
    unlink_free(r->async);
}

/* An event stream's client never sends more: its half-close is its going
 * away, and the stream ends now rather than at the next failed write (a
 * heartbeat away), so a closed tab stops costing polls at once. */
static void on_peer_eof(struct web_request *r)
{
    sse_end(r->async);
}

void sse_add(struct sse_hub *h, struct sse_stream *s, struct web_request *r)
{
    s->r = r;
    s->hub = h;
    list_append(&h->streams, &s->node);
    h->nstreams++;
    r->async = s;
    r->on_abort = on_abort;
    r->on_peer_eof = on_peer_eof;
    if (!h->beat_ns)
        h->beat_ns = r->loop->now_ns;
}

void sse_done(struct sse_stream *s)
{
    s->r->on_abort = NULL;
    s->r->on_peer_eof = NULL;
    s->r->async = NULL;
    unlink_free(s);
}

void sse_end(struct sse_stream *s)
{
    struct web_request *r = s->r;
    sse_done(s);
    web_respond_end(r);
}

bool sse_start(struct sse_stream *s)
{
    if (s->started)
        return true;
    if (!web_respond_begin(s->r, 200, "text/event-stream", WEB_LEN_UNTIL_CLOSE,
                           "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n")) {
        sse_done(s); /* the connection is closing: the request is gone */
        return false;
    }
    s->started = true;
    char retry[32];
    int n = snprintf(retry, sizeof(retry), "retry: %d\n\n", SSE_RETRY_MS);
    return web_respond_write(s->r, retry, (size_t)n) == 0; /* else on_abort follows */
}

int sse_send(struct sse_stream *s, const char *id, const char *event, const char *data, size_t len)
{
    char head[SSE_ID_MAX + 64];
    int hn = id ? snprintf(head, sizeof(head), "id: %.*s\nevent: %s\ndata: ", SSE_ID_MAX, id, event)
                : snprintf(head, sizeof(head), "event: %s\ndata: ", event);
    int err = web_respond_write(s->r, head, (size_t)hn);
    if (!err)
        err = web_respond_write(s->r, data, len);
    if (!err)
        err = web_respond_write(s->r, "\n\n", 2);
    return err;
}

bool sse_slow(const struct sse_stream *s)
{
    return web_respond_pending(s->r) > s->hub->max_pending;
}

void sse_arm(struct sse_hub *h, unsigned ms)
{
    if (!h->ticking && h->nstreams && !h->stopped) {
        h->ticking = true;
        loop_timer_in(h->loop, &h->tick, ms);
    }
}

void sse_heartbeat(struct sse_hub *h)
{
    uint64_t now = h->loop->now_ns;
    if (now - h->beat_ns < (uint64_t)h->heartbeat_ms * 1000000)
        return;
    h->beat_ns = now;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &h->streams)
    {
        struct sse_stream *s = list_entry(pos, struct sse_stream, node);
        if (s->started && !sse_slow(s))
            web_respond_write(s->r, ": keep-alive\n\n", 14); /* a failure: on_abort follows */
    }
}

void sse_stop(struct sse_hub *h)
{
    if (h->stopped)
        return;
    h->stopped = true;
    if (h->ticking)
        loop_timer_cancel(h->loop, &h->tick);
    h->ticking = false;
    while (!list_empty(&h->streams)) {
        struct sse_stream *s = list_entry(h->streams.next, struct sse_stream, node);
        if (s->started) {
            sse_end(s); /* the client reconnects elsewhere, with Last-Event-ID */
        } else {
            struct web_request *r = s->r;
            sse_done(s);
            api_respond_unavailable(r, "the server is shutting down");
        }
    }
}

void sse_close(struct sse_hub *h)
{
    while (!list_empty(&h->streams))
        unlink_free(list_entry(h->streams.next, struct sse_stream, node));
}
