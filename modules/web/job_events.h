/*
 * job_events.h - GET /v1/jobs/{id}/events (job_events.c): a job's changes
 * as Server-Sent Events, watched by one poll per web loop for all streams.
 */
#ifndef TRIREME_MODULES_WEB_JOB_EVENTS_H
#define TRIREME_MODULES_WEB_JOB_EVENTS_H

#include "modules/queue/queue_api.h"

#define JOB_EVENTS_POLL_MS      500                /* how often the watched jobs are read */
#define JOB_EVENTS_HEARTBEAT_MS 15000              /* a comment line keeps idle streams open */
#define JOB_EVENTS_MAX_PENDING  (64 << 10)         /* unsent bytes past which events are skipped */
#define JOB_EVENTS_MAX_STREAMS  QUEUE_GET_MANY_MAX /* open streams per web thread */

struct web_loop;
struct web_request;

void api_job_events(struct web_request *r);
/* The job's status is final (succeeded, failed, dead, cancelled). */
bool job_events_finished(const json_t *job);
/* The loop drains: open streams end (clients reconnect elsewhere). */
void job_events_stop(struct web_loop *wl);
/* At cleanup, after the loop ended. */
void job_events_close(struct web_loop *wl);

#endif
