/*
 * events.h - GET /v1/events (events.c): every job change as Server-Sent
 * Events, filtered by queue and kind, read from the queue backend's change
 * feed by one poll per web loop for all streams.
 */
#ifndef TRIREME_MODULES_WEB_EVENTS_H
#define TRIREME_MODULES_WEB_EVENTS_H

#define EVENTS_POLL_MS      500         /* how often a web thread reads the change feed */
#define EVENTS_HEARTBEAT_MS 15000       /* a comment line keeps idle streams open */
#define EVENTS_MAX_PENDING  (256 << 10) /* unsent bytes past which a stream is ended */
#define EVENTS_MAX_STREAMS  4096        /* open streams per web thread */
#define EVENTS_BATCH        500         /* changes one read of the feed answers at most */
#define EVENTS_FILTER_MAX   1024        /* bytes of queue= and of kind= */

struct web_loop;
struct web_request;

void api_events(struct web_request *r);
/* The loop drains: open streams end (clients resume elsewhere). */
void events_stop(struct web_loop *wl);
/* At cleanup, after the loop ended. */
void events_close(struct web_loop *wl);

#endif
