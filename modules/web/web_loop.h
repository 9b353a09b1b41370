/*
 * web_loop.h - the web role's state on one loop (listener, connections).
 */
#ifndef TRIREME_MODULES_WEB_LOOP_H
#define TRIREME_MODULES_WEB_LOOP_H

#include "kernel/listener.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/redis.h"
#include "modules/web/ratelimit.h"
#include "proto/http1.h"

struct http_conn;
struct server;

struct web_loop {
    struct loop *loop;
    struct server *srv;
    struct listener listener;
    struct http1_limits limits;
    struct http_conn *conns; /* doubly linked, for the drain */
    unsigned nconns;
    bool draining;
    uint64_t rejected; /* connections refused by --max-connections */
    uint64_t last_reject_log_ns;
    struct http1_header *headers; /* parse scratch: cfg->max_headers entries */
    struct pg_pool pg;            /* enqueue and job queries (durable commits) */
    bool has_pg;
    struct redis_client redis;    /* readiness now; rate limits and the Redis queue next */
    bool has_redis;
    struct ratelimit_rules rules;
    uint64_t last_rl_warn_ns;
    struct api_jobs *api;         /* the queue backend's API state (api_jobs.c) */
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
/* web.c: the last connection of a draining loop is gone. */
void web_drained(struct web_loop *wl);

#endif
