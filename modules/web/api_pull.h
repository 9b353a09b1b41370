/*
 * api_pull.h - POST /v1/claim (api_pull.c) and the job callbacks
 * (api_callbacks.c): the pull backend's state on a web loop.
 */
#ifndef TRIREME_MODULES_WEB_API_PULL_H
#define TRIREME_MODULES_WEB_API_PULL_H

#include <jansson.h>
#include <stdbool.h>

#include "kernel/list.h"
#include "modules/queue/pull.h"

struct web_loop;
struct web_request;

struct api_pull {
    const struct queue_pull_ops *ops; /* NULL: this backend has no pull part */
    void *state;
    const char *why;
    struct list waiting;  /* struct claim.node */
    struct list handoffs; /* api_callbacks.c: reports waiting for a 202's hand-off */
    bool stopped;
};

/* At web start, after api_jobs_open (wl->pull). */
void api_pull_open(struct web_loop *wl);
/* The loop drains: waiting claims are answered 204, the backend's own
 * connections close. */
void api_pull_stop(struct web_loop *wl);
/* The loop drains: reports waiting for a hand-off are refused as stale. */
void api_callbacks_stop(struct api_pull *a);
/* At cleanup, after the loop ended. */
void api_pull_close(struct web_loop *wl);

/* Shared by the claim and the callbacks; each returns NULL/false after
 * answering. This loop's pull state (404 without pull kinds, 503 when its
 * store is missing or the loop drains): */
struct api_pull *api_pull_state(struct web_request *r);
/* The body as a JSON object (400 otherwise). */
json_t *api_pull_body(struct web_request *r);
/* Answer 400 with msg, releasing in; false. */
bool api_pull_bad(struct web_request *r, json_t *in, const char *msg);
/* An optional number field in [lo, hi], else def (400 releases in). */
bool api_pull_num(struct web_request *r, json_t *in, const char *name, double lo, double hi,
                  double def, double *out);

#endif
