/*
 * web.c - the web role's module descriptor: a listener per loop, and the
 * per-loop state its connections share.
 */
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/web/api_jobs.h"
#include "modules/web/api_pull.h"
#include "modules/jobs/upload_url.h"
#include "modules/web/auth_jwt.h"
#include "modules/web/cors.h"
#include "modules/web/events.h"
#include "modules/web/job_events.h"
#include "modules/web/jwt_keys.h"
#include "modules/web/queue_counts.h"
#include "modules/web/ratelimit.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "modules/webhooks/webhooks.h"

static void on_accept(struct listener *ls, int fd)
{
    http_conn_accept(ls->data, fd);
}

/* The last connection of a draining loop is gone: close the pools that
 * keep the loop alive, which no request can need any more. */
static void web_drained(struct web_loop *wl)
{
    if (wl->has_pg)
        pg_pool_close(&wl->pg);
    if (wl->has_redis)
        redis_client_close(&wl->redis);
}

/* Once per process: the JWT public keys, read-only for every loop after. */
static int web_init(struct server *s)
{
    const struct config *cfg = s->cfg;
    if (!*cfg->jwt_public_key_file && !*cfg->jwt_jwks_file)
        return 0;
    struct jwt_keys *ks = xmalloc(sizeof(*ks));
    char why[900];
    if (jwt_keys_load(ks, cfg->jwt_public_key_file, cfg->jwt_jwks_file, why, sizeof(why)) < 0) {
        LOG(LOG_ERROR, "web: cannot load the JWT keys", L_STR("error", why));
        free(ks);
        return -EINVAL;
    }
    s->module_state[MODULE_WEB] = ks;
    LOG(LOG_INFO, "JWT public keys loaded", L_INT("keys", (int64_t)ks->n),
        L_BOOL("rs256", jwt_keys_serve(ks, JWT_RS256)),
        L_BOOL("es256", jwt_keys_serve(ks, JWT_ES256)), L_INT("skipped", (int64_t)ks->skipped));
    return 0;
}

static int web_start(struct loop *l)
{
    const struct config *cfg = l->srv->cfg;
    struct web_loop *wl = xcalloc(1, sizeof(*wl));
    wl->view = xcalloc(cfg->max_headers, sizeof(*wl->view));
    buf_pool_init(&wl->field_pool, http_conn_fields_size(cfg->max_headers), cfg->pool_max_free);
    wl->loop = l;
    wl->srv = l->srv;
    list_init(&wl->conns);
    wl->http_date_s = -1;
    wl->on_drained = web_drained;
    wl->limits = (struct http1_limits){
        .max_head = cfg->max_head,
        .max_uri = cfg->max_uri,
        .max_headers = cfg->max_headers,
        /* Body limits are checked once the head is complete, where the
         * request's kind is known: http_conn.c holds a buffered body to
         * --max-body-bytes, the upload handler a streamed one to
         * --upload-max-request, each 413 naming its own limit. */
        .max_body = UINT64_MAX,
    };
    l->modules[MODULE_WEB] = wl;
    const char *step = "";
    int ret = listener_open(&wl->listener, l, cfg->host, cfg->port, cfg->backlog, on_accept, &step);
    if (ret < 0) {
        LOG(LOG_ERROR, "web: cannot listen", L_STR("host", cfg->host), L_INT("port", cfg->port),
            L_STR("step", step), L_STR("error", strerror(-ret)));
        return ret;
    }
    wl->listener.data = wl;
    if (*cfg->database_url) {
        struct pg_pool_config pc = {
            .conninfo = cfg->database_url, .size = cfg->pg_pool, .max_inflight = 64};
        if ((ret = pg_pool_init(&wl->pg, l, &pc)) < 0)
            return ret;
        wl->has_pg = true;
    }
    if (*cfg->redis_url) {
        struct redis_url u;
        const char *err;
        if (redis_url_parse(cfg->redis_url, &u, &err)) {
            LOG(LOG_ERROR, "REDIS_URL is not valid", L_STR("error", err));
            return -EINVAL;
        }
        if ((ret = redis_client_init(&wl->redis, l, &u, REDIS_COMMANDS, "web")) < 0)
            return ret;
        wl->has_redis = true;
    }
    if (*cfg->rate_limits) {
        char msg[200];
        if (ratelimit_parse(cfg->rate_limits, &wl->rules, msg, sizeof(msg))) {
            LOG(LOG_ERROR, "web: --rate-limits is not valid", L_STR("error", msg));
            return -EINVAL;
        }
        if (wl->rules.n && wl->has_redis)
            wl->gate = web_ratelimit;
    }
    api_jobs_open(wl);
    api_pull_open(wl);
    if (l->id == 0 && cfg->insecure_no_auth)
        LOG(LOG_WARN, "web: --insecure-no-auth: /v1 accepts requests without an API key "
                      "(local development only)");
    return 0;
}

static void web_stop(struct loop *l)
{
    struct web_loop *wl = web_loop_of(l);
    if (!wl || wl->draining)
        return;
    wl->draining = true;
    listener_close(&wl->listener);
    api_pull_stop(wl);
    job_events_stop(wl);
    events_stop(wl);
    http_conn_drain(wl);
    if (!wl->nconns)
        web_drained(wl);
}

static void web_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        struct web_loop *wl = s->loops[i].modules[MODULE_WEB];
        if (!wl)
            continue;
        http_conn_free_all(wl);
        if (wl->has_pg)
            pg_pool_free(&wl->pg);
        if (wl->has_redis)
            redis_client_free(&wl->redis);
        queue_counts_close(wl);
        job_events_close(wl);
        events_close(wl);
        api_jobs_close(wl);
        api_pull_close(wl);
        free(wl->view);
        buf_pool_free(&wl->field_pool);
        free(wl);
        s->loops[i].modules[MODULE_WEB] = NULL;
    }
    free(s->module_state[MODULE_WEB]);
    s->module_state[MODULE_WEB] = NULL;
}

static const struct module_limit web_limits[] = {
    {"QUEUE_API_TIMEOUT_MS", QUEUE_API_TIMEOUT_MS, "ms",
     "one store call of the job API (past it: 503)"},
    {"READYZ_TIMEOUT_MS", READYZ_TIMEOUT_MS, "ms",
     "/readyz's probe of a store in an unknown state"},
    {"LIST_MAX", LIST_MAX, "", "the largest limit= of GET /v1/jobs"},
    {"PULL_CLAIM_MAX", PULL_CLAIM_MAX, "", "jobs one POST /v1/claim takes (\"max\")"},
    {"PULL_LEASE_MAX_S", PULL_LEASE_MAX_S, "s", "the longest claim or heartbeat \"lease\""},
    {"PULL_WAIT_MAX_S", PULL_WAIT_MAX_S, "s", "the longest long-poll \"wait\" of a claim"},
    {"PULL_NAMES_MAX", PULL_NAMES_MAX, "", "kinds, and queues, named in one claim"},
    {"PULL_STEP_MAX", PULL_STEP_MAX, "bytes", "a progress callback's \"step\""},
    {"PULL_HANDOFF_WAIT_MS", PULL_HANDOFF_WAIT_MS, "ms",
     "a callback racing its 202 hand-off waits at most this for it (then 409)"},
    {"PULL_OUTCOMES_MAX", PULL_OUTCOMES_MAX, "", "outcomes in one POST /v1/outcomes"},
    {"JOB_EVENTS_POLL_MS", JOB_EVENTS_POLL_MS, "ms",
     "job event streams: how often a web thread reads the watched jobs"},
    {"JOB_EVENTS_HEARTBEAT_MS", JOB_EVENTS_HEARTBEAT_MS, "ms",
     "job event streams: a comment line this often keeps them open"},
    {"JOB_EVENTS_MAX_PENDING", JOB_EVENTS_MAX_PENDING, "bytes",
     "job event streams: unsent bytes past which a slow client's events are skipped"},
    {"JOB_EVENTS_MAX_STREAMS", JOB_EVENTS_MAX_STREAMS, "",
     "job event streams open per web thread (more: 503)"},
    {"EVENTS_POLL_MS", EVENTS_POLL_MS, "ms",
     "GET /v1/events: how often a web thread reads the change feed"},
    {"EVENTS_HEARTBEAT_MS", EVENTS_HEARTBEAT_MS, "ms",
     "GET /v1/events: a comment line this often keeps streams open"},
    {"EVENTS_MAX_PENDING", EVENTS_MAX_PENDING, "bytes",
     "GET /v1/events: unsent bytes past which a slow client's stream ends (it resumes)"},
    {"EVENTS_MAX_STREAMS", EVENTS_MAX_STREAMS, "",
     "GET /v1/events streams per web thread (more: 503)"},
    {"EVENTS_BATCH", EVENTS_BATCH, "", "GET /v1/events: changes one read of the feed answers"},
    {"QUEUE_CHANGES_KEEP_S", QUEUE_CHANGES_KEEP_S, "s",
     "GET /v1/events: changes kept; an older Last-Event-ID is not resumed (event reset)"},
    {"QUEUE_CHANGES_LEASE_MS", QUEUE_CHANGES_LEASE_MS, "ms",
     "GET /v1/events: PostgreSQL records job changes this long after the last read"},
    {"EVENTS_FILTER_MAX", EVENTS_FILTER_MAX, "bytes", "GET /v1/events: queue= and kind= each"},
    {"QUEUE_CHANGES_OVERLAP_MS", QUEUE_CHANGES_OVERLAP_MS, "ms",
     "GET /v1/events: the window read again for changes that commit late"},
    {"QUEUE_COUNTS_TTL_MS", QUEUE_COUNTS_TTL_MS, "ms",
     "a sample of job counts (GET /v1/queues, trireme_queue_jobs) serves this long"},
    {"QUEUE_COUNT_CAP", QUEUE_COUNT_CAP, "",
     "jobs of one status a sample counts at most (more: listed in \"capped\")"},
    {"UPLOAD_INFLIGHT", UPLOAD_INFLIGHT, "", "chunk INSERTs in flight per multipart upload"},
    {"UPLOAD_TIMEOUT_MS", UPLOAD_TIMEOUT_MS, "ms", "each statement of an upload"},
    {"AUTH_SCOPES_MAX", AUTH_SCOPES_MAX, "bytes", "a JWT's scopes"},
    {"JWT_KEYS_MAX", JWT_KEYS_MAX, "", "keys from --jwt-public-key-file and --jwt-jwks-file"},
    {"JWT_KID_MAX", JWT_KID_MAX - 1, "bytes", "a JWT key id (kid)"},
    {"JWT_JWKS_FILE_MAX", JWT_JWKS_FILE_MAX, "bytes", "a --jwt-jwks-file"},
    {"CORS_ORIGIN_MAX", CORS_ORIGIN_MAX, "bytes", "an Origin header that can be allowed"},
    {"RATELIMIT_MAX_RULES", RATELIMIT_MAX_RULES, "", "--rate-limits rules"},
    {"WEBHOOK_SOURCES_MAX", WEBHOOK_SOURCES_MAX, "", "inbound webhook sources in --kinds"},
    {"WEBHOOK_SECRET_MAX", WEBHOOK_SECRET_MAX, "bytes", "a webhook secret, decoded"},
    {"WEBHOOK_SIG_MAX", WEBHOOK_SIG_MAX, "bytes", "a webhook's signature header"},
    {"WEB_REQUEST_ID_MAX", WEB_REQUEST_ID_MAX, "bytes", "an X-Request-Id kept from the client"},
    {NULL, 0, NULL, NULL},
};

const struct module web_module = {
    .name = "web",
    .summary = "HTTP API: /healthz, /v1/...",
    .is_role = true,
    .init = web_init,
    .start = web_start,
    .stop = web_stop,
    .cleanup = web_cleanup,
    .limits = web_limits,
};
