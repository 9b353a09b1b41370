/*
 * web_loop.h - the web role's state on one loop (listener, connections).
 *
 * Calls go one way: web.c starts the loop's state and sets the hooks below;
 * http_conn.c serves connections and calls back only through those hooks,
 * never into web.c or ratelimit.c by name.
 */
#ifndef TRIREME_MODULES_WEB_LOOP_H
#define TRIREME_MODULES_WEB_LOOP_H

#include "kernel/buf.h"
#include "kernel/list.h"
#include "kernel/listener.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/redis.h"
#include "modules/web/ratelimit.h"
#include "proto/http1.h"

struct http_conn;
struct server;
struct web_request;
struct web_route;

struct web_loop {
    struct loop *loop;
    struct server *srv;
    struct listener listener;
    struct http1_limits limits;
    struct list conns; /* struct http_conn.link, for the drain */
    unsigned nconns;
    bool draining;
    uint64_t rejected; /* connections refused by --max-connections */
    uint64_t last_reject_log_ns;
    /* Header fields of the request whose handler runs now (cfg->max_headers
     * entries): the parser writes a head's fields here, and a connection
     * rebuilds its request's fields here from its offsets before each
     * handler call. Valid during that call only. */
    struct http1_header *view;
    /* Blocks of cfg->max_headers header offsets, one per request in
     * flight (http_conn.c), recycled: steady traffic never calls malloc. */
    struct buf_pool field_pool;
    char http_date[HTTP1_DATE_LEN + 1]; /* IMF-fixdate of http_date_s */
    int64_t http_date_s;                /* loop->wall_s it was built for */
    /* Set by web.c. gate: true when it holds the request (rate limits);
     * NULL lets every request through. on_drained: the last connection of
     * a draining loop is gone. */
    bool (*gate)(struct web_request *r, const struct web_route *rt);
    void (*on_drained)(struct web_loop *wl);
    struct pg_pool pg; /* enqueue and job queries (durable commits) */
    bool has_pg;
    struct redis_client redis; /* readiness, rate limits, the Redis queue API */
    bool has_redis;
    struct ratelimit_rules rules;
    uint64_t last_rl_warn_ns;
    struct api_jobs *api;        /* the queue backend's API state (api_jobs.c) */
    struct api_pull *pull;       /* claims and job callbacks (api_pull.c) */
    struct queue_counts *counts; /* the sample of job counts (queue_counts.c) */
    struct job_events *events;   /* job event streams (job_events.c) */
    struct event_feed *feed;     /* GET /v1/events streams (events.c) */
};

#include "modules/registry.h"

static inline struct web_loop *web_loop_of(struct loop *l)
{
    return l->modules[MODULE_WEB];
}

/* http_conn.c */
void http_conn_accept(struct web_loop *wl, int fd);
void http_conn_drain(struct web_loop *wl);
void http_conn_free_all(struct web_loop *wl);
/* Bytes of one block of wl->field_pool. */
uint32_t http_conn_fields_size(unsigned max_headers);

#endif
