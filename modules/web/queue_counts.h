/*
 * queue_counts.h - jobs by queue and status, sampled on each web loop: GET
 * /v1/queues and the trireme_queue_jobs gauge of /metrics read the same
 * sample.
 *
 * A sample is one counts call of the queue backend (queue_api.h: each
 * status counted up to QUEUE_COUNT_CAP jobs), kept QUEUE_COUNTS_TTL_MS:
 * however often the dashboard polls or Prometheus scrapes, a loop asks its
 * store at most once per that time, and never when nobody asks. Requests
 * that come while a sample is on its way wait for it.
 */
#ifndef TRIREME_MODULES_WEB_QUEUE_COUNTS_H
#define TRIREME_MODULES_WEB_QUEUE_COUNTS_H

#include <jansson.h>

#include "modules/queue/queue_api.h"

#define QUEUE_COUNTS_TTL_MS 2000 /* a sample of job counts serves this long */

struct web_loop;
struct web_request;

/* The sample, {"queues":[...],"capped":[...],"sampled_at"}, or NULL and
 * why (a failed store call's answer). */
typedef void (*queue_counts_fn)(struct web_request *r, const json_t *sample,
                                const struct queue_answer *failed);

/* fn(r, ...) once: at once with a fresh sample, else when one arrives. A
 * request aborted meanwhile is forgotten. */
void queue_counts_get(struct web_request *r, queue_counts_fn fn);
/* At cleanup, after the loop ended. */
void queue_counts_close(struct web_loop *wl);

#endif
