/*
 * router.c - the web role's one route table (adding an endpoint is one
 * line in it; handlers live in their own files), and method + path
 * matching over it.
 *
 * The table is small and scanned linearly: a few dozen routes compare
 * faster than any tree would be built. A pattern segment "{name}" matches
 * one non-empty path segment and becomes a parameter. The handler-facing
 * helpers over request bytes (web_param, web_query, web_json_escape,
 * web_json_body) are here too; the codecs behind them are in proto/.
 */
#include <stdio.h>
#include <string.h>

#include "modules/web/web.h"
#include "proto/json_escape.h"
#include "proto/urlquery.h"

void web_healthz(struct web_request *r);
void web_readyz(struct web_request *r);
void api_enqueue(struct web_request *r);
void api_job_list(struct web_request *r);
void api_job_get(struct web_request *r);
void api_job_cancel(struct web_request *r);
void api_job_retry(struct web_request *r);
void api_jobs_retry_many(struct web_request *r);
void api_claim(struct web_request *r);
void api_job_progress(struct web_request *r);
void api_job_heartbeat(struct web_request *r);
void api_job_complete(struct web_request *r);
void api_job_fail(struct web_request *r);
void api_outcomes(struct web_request *r);
void api_queues(struct web_request *r);
void api_job_events(struct web_request *r);
void api_events(struct web_request *r);
void api_schedule_list(struct web_request *r);
void api_schedule_create(struct web_request *r);
void api_schedule_get(struct web_request *r);
void api_schedule_put(struct web_request *r);
void api_schedule_patch(struct web_request *r);
void api_schedule_delete(struct web_request *r);
void api_schedule_run(struct web_request *r);
void api_webhook_post(struct web_request *r);
void api_webhook_list(struct web_request *r);
void api_webhook_handshake(struct web_request *r);
void web_metrics(struct web_request *r);
void api_upload_enqueue(struct web_request *r);
void api_job_file(struct web_request *r);
void web_openapi(struct web_request *r);
void api_me(struct web_request *r);
void web_ui(struct web_request *r);

static const struct web_route web_routes[] = {
    {"GET", "/healthz", web_healthz},
    {"GET", "/readyz", web_readyz},
    {"GET", "/metrics", web_metrics},
    {"POST", "/v1/jobs", api_enqueue},
    {"GET", "/v1/jobs", api_job_list},
    {"POST", "/v1/jobs/retry", api_jobs_retry_many},
    {"GET", "/v1/jobs/{id}", api_job_get},
    {"POST", "/v1/jobs/{id}/cancel", api_job_cancel},
    {"POST", "/v1/jobs/{id}/retry", api_job_retry},
    {"POST", "/v1/jobs/{id}/progress", api_job_progress},
    {"POST", "/v1/jobs/{id}/heartbeat", api_job_heartbeat},
    {"POST", "/v1/jobs/{id}/complete", api_job_complete},
    {"POST", "/v1/jobs/{id}/fail", api_job_fail},
    {"GET", "/v1/jobs/{id}/files/{name}", api_job_file},
    {"GET", "/v1/jobs/{id}/events", api_job_events},
    {"GET", "/v1/events", api_events},
    {"POST", "/v1/claim", api_claim},
    {"POST", "/v1/outcomes", api_outcomes},
    {"GET", "/v1/queues", api_queues},
    {"GET", "/v1/schedules", api_schedule_list},
    {"POST", "/v1/schedules", api_schedule_create},
    {"GET", "/v1/schedules/{name}", api_schedule_get},
    {"PUT", "/v1/schedules/{name}", api_schedule_put},
    {"PATCH", "/v1/schedules/{name}", api_schedule_patch},
    {"DELETE", "/v1/schedules/{name}", api_schedule_delete},
    {"POST", "/v1/schedules/{name}/run", api_schedule_run},
    {"GET", "/v1/webhooks", api_webhook_list},
    {"POST", "/v1/webhooks/{source}", api_webhook_post},
    {"GET", "/v1/webhooks/{source}", api_webhook_handshake},
    {"GET", "/v1/openapi.json", web_openapi},
    {"GET", "/v1/me", api_me},
    {"GET", "/ui", web_ui},
    {"GET", "/ui/", web_ui},
    {"GET", "/ui/{file}", web_ui},
};
static const unsigned web_routes_count = sizeof(web_routes) / sizeof(web_routes[0]);

/* Routes whose multipart/form-data bodies are streamed (web.h). */
static const struct web_stream_route web_stream_routes[] = {
    {"POST", "/v1/jobs", api_upload_enqueue},
};

/* Match path against pattern; fills params when r != NULL. */
static bool match(const char *pattern, const char *path, size_t path_len, struct web_request *r)
{
    const char *p = pattern, *s = path, *end = path + path_len;
    unsigned np = 0;
    while (*p && s < end) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (!seg_end)
                seg_end = end;
            if (seg_end == s || !close)
                return false;
            if (r) {
                if (np >= WEB_MAX_PARAMS)
                    return false;
                r->params[np].name = p + 1;
                r->params[np].name_len = (uint32_t)(close - p - 1);
                r->params[np].value = s;
                r->params[np].value_len = (uint32_t)(seg_end - s);
            }
            np++;
            p = close + 1;
            s = seg_end;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    if (*p || s != end)
        return false;
    if (r)
        r->nparams = np;
    return true;
}

static bool method_is(const char *m, const char *method, size_t len)
{
    return strlen(m) == len && !memcmp(m, method, len);
}

const struct web_route *web_route_match(const char *method, size_t method_len, const char *path,
                                        size_t path_len, struct web_request *r, int *status,
                                        char *allow, size_t allow_cap)
{
    bool head = method_is("HEAD", method, method_len);
    bool path_known = false;
    for (unsigned i = 0; i < web_routes_count; i++) {
        const struct web_route *rt = &web_routes[i];
        if (!match(rt->pattern, path, path_len, NULL))
            continue;
        path_known = true;
        if (method_is(rt->method, method, method_len) || (head && !strcmp(rt->method, "GET"))) {
            match(rt->pattern, path, path_len, r);
            return rt;
        }
    }
    *status = path_known ? 405 : 404;
    if (path_known && allow_cap) {
        size_t n = 0;
        allow[0] = 0;
        for (unsigned i = 0; i < web_routes_count; i++) {
            const struct web_route *rt = &web_routes[i];
            if (!match(rt->pattern, path, path_len, NULL))
                continue;
            const char *m = rt->method;
            for (int twice = 0; twice < 2; twice++) {
                if (strstr(allow, m) == NULL && n + strlen(m) + 3 < allow_cap)
                    n += (size_t)snprintf(allow + n, allow_cap - n, "%s%s", n ? ", " : "", m);
                if (strcmp(m, "GET"))
                    break;
                m = "HEAD";
            }
        }
    }
    return NULL;
}

const struct web_stream_route *web_stream_match(const char *method, size_t method_len,
                                                const char *path, size_t path_len,
                                                struct web_request *r)
{
    for (size_t i = 0; i < sizeof(web_stream_routes) / sizeof(web_stream_routes[0]); i++) {
        const struct web_stream_route *rt = &web_stream_routes[i];
        if (method_is(rt->method, method, method_len) && match(rt->pattern, path, path_len, r))
            return rt;
    }
    return NULL;
}

const char *web_param(const struct web_request *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < r->nparams; i++)
        if (r->params[i].name_len == nl && !memcmp(r->params[i].name, name, nl)) {
            if (len)
                *len = r->params[i].value_len;
            return r->params[i].value;
        }
    return NULL;
}

size_t web_json_escape(char *dst, size_t cap, const char *s, size_t n)
{
    return json_escape(dst, cap, s, n);
}

int web_query(const struct web_request *r, const char *name, char *out, size_t cap)
{
    return urlquery_get(r->http->query, r->http->query_len, name, out, cap);
}

json_t *web_json_body(struct web_request *r)
{
    json_error_t jerr;
    json_t *in = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        char msg[256];
        snprintf(msg, sizeof(msg), "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        web_respond_error(r, 400, "invalid_json", msg);
    }
    return in;
}
