/*
 * routes.c - the web role's one route table. Handlers live in their own
 * files; adding an endpoint is one line here.
 */
#include "modules/web/web.h"

void web_healthz(struct web_request *r);
void web_readyz(struct web_request *r);
void api_enqueue(struct web_request *r);
void api_job_list(struct web_request *r);
void api_job_get(struct web_request *r);
void api_job_cancel(struct web_request *r);
void api_job_retry(struct web_request *r);
void api_claim(struct web_request *r);
void api_job_progress(struct web_request *r);
void api_job_heartbeat(struct web_request *r);
void api_job_complete(struct web_request *r);
void api_job_fail(struct web_request *r);
void api_schedule_list(struct web_request *r);
void api_schedule_create(struct web_request *r);
void api_schedule_get(struct web_request *r);
void api_schedule_put(struct web_request *r);
void api_schedule_patch(struct web_request *r);
void api_schedule_delete(struct web_request *r);

const struct web_route web_routes[] = {
    {"GET", "/healthz", web_healthz},
    {"GET", "/readyz", web_readyz},
    {"POST", "/v1/jobs", api_enqueue},
    {"GET", "/v1/jobs", api_job_list},
    {"GET", "/v1/jobs/{id}", api_job_get},
    {"POST", "/v1/jobs/{id}/cancel", api_job_cancel},
    {"POST", "/v1/jobs/{id}/retry", api_job_retry},
    {"POST", "/v1/jobs/{id}/progress", api_job_progress},
    {"POST", "/v1/jobs/{id}/heartbeat", api_job_heartbeat},
    {"POST", "/v1/jobs/{id}/complete", api_job_complete},
    {"POST", "/v1/jobs/{id}/fail", api_job_fail},
    {"POST", "/v1/claim", api_claim},
    {"GET", "/v1/schedules", api_schedule_list},
    {"POST", "/v1/schedules", api_schedule_create},
    {"GET", "/v1/schedules/{name}", api_schedule_get},
    {"PUT", "/v1/schedules/{name}", api_schedule_put},
    {"PATCH", "/v1/schedules/{name}", api_schedule_patch},
    {"DELETE", "/v1/schedules/{name}", api_schedule_delete},
};
const unsigned web_routes_count = sizeof(web_routes) / sizeof(web_routes[0]);
