/*
 * api_jobs.h - /v1/jobs (api_jobs.c): the queue backend's API state on a
 * web loop, and the request checks the job endpoints share.
 */
#ifndef TRIREME_MODULES_WEB_API_JOBS_H
#define TRIREME_MODULES_WEB_API_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "modules/queue/queue_api.h"
#include "modules/web/web.h"

#define LIST_DEFAULT 50  /* GET /v1/jobs without limit= */
#define LIST_MAX     500 /* the largest limit= */

struct web_loop;

/* Every 503 of the API says when to try again: about when a reconnection
 * attempt will have run (the pools retry within a second at first). */
#define API_RETRY_AFTER_S   1
#define API_RETRY_AFTER_HDR "Retry-After: 1\r\n"

/* 503 unavailable with Retry-After. */
void api_respond_unavailable(struct web_request *r, const char *message);
/* A store call's failure (ans->status >= 300), as every route answers it:
 * the store's own words (detail) logged with the request id, never sent;
 * 503 with Retry-After. */
void api_respond_failed(struct web_request *r, const struct queue_answer *ans);

/* At web start, once the loop's connections are set up: the backend's
 * per-loop state (wl->api). Closed at cleanup, after the connections. */
void api_jobs_open(struct web_loop *wl);
void api_jobs_close(struct web_loop *wl);

/* The POST body as an array of normalized jobs, or NULL after answering
 * 400. *array: the body was an array (the answer is {"jobs": [...]}). */
json_t *api_jobs_parse(struct web_request *r, bool *array);
/* Enqueue one normalized job (jobs: a one-element array, taken) for a
 * request its handler has authenticated its own way; fn answers r. False
 * after answering 503 (no store on this loop). */
bool api_jobs_submit(struct web_request *r, json_t *jobs, queue_answer_fn fn);
/* A counts call of the backend on this loop (queue_api.h); NULL with *why
 * when the loop has no store. */
struct queue_call *api_jobs_counts(struct web_loop *wl, queue_answer_fn fn, void *data,
                                   const char **why);
/* get_many of the backend on this loop; NULL with *why without a store. */
struct queue_call *api_jobs_get_many(struct web_loop *wl, const int64_t *ids, unsigned n,
                                     queue_answer_fn fn, void *data, const char **why);
/* This loop's backend calls and their state; NULL with *why (a 503). */
const struct queue_api_ops *api_jobs_ops(struct web_loop *wl, void **state, const char **why);
/* Whether this loop has its store; false with *why (for a 503). */
bool api_jobs_ready(struct web_loop *wl, const char **why);
/* The {id} path parameter, or false after answering 400. */
bool api_job_id_param(struct web_request *r, int64_t *id);

/* GET /v1/jobs query: status, queue, kind, limit, cursor (have[i]: given). */
struct api_list_params {
    char v[5][256];
    int have[5];
    int limit;
};
bool api_list_params(struct web_request *r, struct api_list_params *p);

#endif
