/*
 * api_jobs.h - /v1/jobs: what the PostgreSQL handlers (api_jobs.c) and the
 * Redis queue backend's (api_jobs_redis.c) share, so both check input the
 * same way and answer bad input with the same 400s.
 */
#ifndef TRIREME_MODULES_WEB_API_JOBS_H
#define TRIREME_MODULES_WEB_API_JOBS_H

#include <jansson.h>
#include <stdbool.h>

#include "modules/web/web.h"

/* The POST body as an array of normalized jobs, or NULL after answering
 * 400. *array: the body was an array (the answer is {"jobs": [...]}). */
json_t *api_jobs_parse(struct web_request *r, bool *array);
/* The {id} path parameter, or false after answering 400. */
bool api_job_id_param(struct web_request *r, char out[32]);

/* GET /v1/jobs query: status, queue, kind, limit, cursor (have[i]: given). */
struct api_list_params {
    char v[5][256];
    int have[5];
    int limit;
};
bool api_list_params(struct web_request *r, struct api_list_params *p);

enum rq_api_kind { RQ_API_GET, RQ_API_CANCEL, RQ_API_RETRY };
/* api_jobs_redis.c: the same endpoints on --queue-backend=redis. */
void rq_api_enqueue(struct web_request *r);
void rq_api_one(struct web_request *r, enum rq_api_kind kind);
void rq_api_list(struct web_request *r);

#endif
