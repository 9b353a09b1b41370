/*
 * sse.h - Server-Sent Events streams shared by the event routes
 * (job_events.c: GET /v1/jobs/{id}/events, events.c: GET /v1/events).
 *
 * A route keeps one struct sse_hub per web loop and embeds a struct
 * sse_stream first in each of its streams. The hub owns what every event
 * route needs the same way: the list of open streams, the poll timer that
 * runs only while a stream is open (no stream: no timer, no store call),
 * the answer's head, event framing, heartbeats, the slow-reader test, and
 * ending every stream when the loop drains. The route decides what to
 * read on each poll and which stream gets which event.
 */
#ifndef TRIREME_MODULES_WEB_SSE_H
#define TRIREME_MODULES_WEB_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/list.h"
#include "kernel/loop.h"

#define SSE_RETRY_MS 2000 /* the browser's EventSource reconnects after this long */
#define SSE_ID_MAX   64   /* an event id, and a Last-Event-ID kept from the client */

struct web_request;
struct sse_hub;

struct sse_stream {
    struct web_request *r;
    struct sse_hub *hub;
    struct list node; /* on hub->streams */
    bool started;     /* the head went out */
};

struct sse_hub {
    struct loop *loop;
    struct list streams; /* struct sse_stream.node */
    unsigned nstreams;
    struct timer tick;
    bool ticking, stopped;
    uint64_t beat_ns; /* the last heartbeat */
    /* Set by the route before the first stream. */
    unsigned poll_ms, heartbeat_ms;
    size_t max_pending;                        /* unsent bytes: a slow reader */
    void (*poll)(struct sse_hub *h);           /* the poll timer fired */
    void (*free_stream)(struct sse_stream *s); /* frees the route's stream */
};

void sse_hub_init(struct sse_hub *h, struct loop *l);
/* s (the route's stream, zeroed) joins the hub, answering r later. */
void sse_add(struct sse_hub *h, struct sse_stream *s, struct web_request *r);
/* The request is answered elsewhere (an error before the head): forget
 * and free the stream; the caller answers r, read before the call. */
void sse_done(struct sse_stream *s);
/* End the answer (the connection closes once what is queued is sent). */
void sse_end(struct sse_stream *s);
/* Send the head (200 text/event-stream, no length) unless sent. False: the
 * stream is gone (freed now, or on_abort follows): do not touch it. */
bool sse_start(struct sse_stream *s);
/* One event; id may be NULL. 0, or the write failed: on_abort follows. */
int sse_send(struct sse_stream *s, const char *id, const char *event, const char *data, size_t len);
/* More than max_pending bytes wait to be sent to this client. */
bool sse_slow(const struct sse_stream *s);
/* Poll again in poll_ms (or at once: ms 0), while a stream is open. */
void sse_arm(struct sse_hub *h, unsigned ms);
/* A comment line to every started stream that keeps up, if one is due. */
void sse_heartbeat(struct sse_hub *h);
/* The loop drains: started streams end (clients reconnect elsewhere),
 * others are answered 503. No poll after. */
void sse_stop(struct sse_hub *h);
/* At cleanup, after the loop ended: free every stream left. */
void sse_close(struct sse_hub *h);

#endif
