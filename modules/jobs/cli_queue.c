/*
 * cli_queue.c - a queue API call from a short-lived command (see
 * cli_queue.h).
 *
 * The command is one process with one loop: the backend's connections (a
 * pg pool of one, a Redis client) are opened on it exactly as a web loop
 * opens them, and the loop runs until the call is answered or a
 * connection attempt fails. The kernel clients would retry forever; a
 * command must not, so their connect-error hooks end the run at the first
 * failure. Log lines are off: a command's output is its one document or
 * its one line of error.
 */
#include "modules/jobs/cli_queue.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/pg.h"
#include "kernel/redis.h"
#include "kernel/server.h"
#include "kernel/tls.h"
#include "kernel/xalloc.h"
#include "modules/jobs/cli_flags.h"
#include "modules/jobs/cli_pg.h"
#include "modules/queue/queue.h"

#define CLI_RESULT_TTL_MS (3600 * 1000) /* --result-ttl's default (trireme run --help) */

/* A command needs few of the loop's buffers: one call, one or two sockets. */
static const struct loop_config cli_loop = {.entries = 64,
                                            .recv_bufs = 16,
                                            .recv_buf_size = 16384,
                                            .pool_chunk = 16384,
                                            .pool_max_free = 4};

struct cli_run {
    const char *cmd;
    struct config cfg; /* what the backend reads of `trireme run`'s settings */
    struct server srv;
    struct loop loop;
    struct pg_pool pg;
    struct redis_client redis;
    bool has_pg, has_redis;
    struct queue_call *call;
    bool over; /* answered, or a connection failed: the loop leaves */
    int rc;
    cli_queue_done done;
    void *arg;
};

static void end_run(struct cli_run *r, int rc)
{
    r->over = true;
    r->rc = rc;
    r->loop.stop_now = true;
    if (r->call) /* no (further) answer: the backend frees the call */
        queue_call_forget(r->call);
}

static void on_answer(struct queue_call *c, const struct queue_answer *a)
{
    struct cli_run *r = c->data;
    end_run(r, r->done(r->arg, a));
}

static void on_pg_error(struct pg_pool *p, const char *why)
{
    struct cli_run *r = container_of(p, struct cli_run, pg);
    if (r->over)
        return;
    fprintf(stderr, "trireme %s: cannot connect to the database: %s\n", r->cmd, why);
    end_run(r, 1);
}

static void on_redis_error(struct redis_client *cl, const char *step, const char *why)
{
    struct cli_run *r = container_of(cl, struct cli_run, redis);
    if (r->over)
        return;
    if (step)
        fprintf(stderr, "trireme %s: Redis refused %s: %s\n", r->cmd, step, why);
    else
        fprintf(stderr, "trireme %s: cannot connect to Redis at %s:%d: %s\n", r->cmd, cl->url.host,
                cl->url.port, why);
    end_run(r, 1);
}

bool cli_queue_flag(const char *a)
{
    return !strncmp(a, "--database-url=", 15) || !strncmp(a, "--redis-url=", 12) ||
           !strncmp(a, "--queue-backend=", 16) || !strncmp(a, "--result-ttl=", 13) ||
           !strncmp(a, "--tls-ca-file=", 14);
}

/* The connections the backend needs; 0, or 1 after saying why not. */
static int connect_all(struct cli_run *r, int argc, char **argv, unsigned needs)
{
    const char *why;
    if (needs & QUEUE_NEEDS_PG) {
        const char *url = cli_database_url(argc, argv);
        if (!url) {
            fprintf(stderr, "trireme %s: set DATABASE_URL (or --database-url=...)\n", r->cmd);
            return 1;
        }
        if (pq_load(&why)) {
            fprintf(stderr, "trireme %s: %s\n", r->cmd, why);
            return 1;
        }
        struct pg_pool_config pc = {.conninfo = url, .size = 1, .on_connect_error = on_pg_error};
        if (pg_pool_init(&r->pg, &r->loop, &pc))
            return 1;
        r->has_pg = true;
    }
    if (needs & QUEUE_NEEDS_REDIS) {
        const char *url = cli_setting(argc, argv, "--redis-url=", "REDIS_URL");
        struct redis_url u;
        if (!url || !*url) {
            fprintf(stderr, "trireme %s: set REDIS_URL (or --redis-url=...)\n", r->cmd);
            return 1;
        }
        if (redis_url_parse(url, &u, &why)) {
            fprintf(stderr, "trireme %s: REDIS_URL %s\n", r->cmd, why);
            return 1;
        }
        r->redis.on_connect_error = on_redis_error;
        /* It fails only in resolving the host: -EHOSTUNREACH is "no such
         * host", said as the resolver says it. */
        int ret = redis_client_init(&r->redis, &r->loop, &u, REDIS_COMMANDS, "cli");
        if (ret < 0) {
            fprintf(stderr, "trireme %s: cannot connect to Redis at %s:%d: %s\n", r->cmd, u.host,
                    u.port, ret == -EHOSTUNREACH ? "Name or service not known" : strerror(-ret));
            return 1;
        }
        r->has_redis = true;
    }
    return 0;
}

int cli_queue_run(const char *cmd, int argc, char **argv, cli_queue_start start,
                  cli_queue_done done, void *arg)
{
    struct cli_run *r = xcalloc(1, sizeof(*r));
    *r = (struct cli_run){.cmd = cmd, .rc = 1, .done = done, .arg = arg};
    const char *backend = cli_setting(argc, argv, "--queue-backend=", "QUEUE_BACKEND");
    if (!backend || !strcasecmp(backend, "postgresql"))
        backend = queue_pg.name;
    for (size_t i = 0; backend[i] && i + 1 < sizeof(r->cfg.queue_backend); i++)
        r->cfg.queue_backend[i] = (char)tolower((unsigned char)backend[i]);
    if (strlen(backend) >= sizeof(r->cfg.queue_backend) ||
        !queue_backend_named(r->cfg.queue_backend)) {
        fprintf(stderr, "trireme %s: --queue-backend=%s: no such queue backend\n", cmd, backend);
        free(r);
        return 2;
    }
    const char *ttl = cli_setting(argc, argv, "--result-ttl=", "TRIREME_RESULT_TTL");
    int64_t ttl_ms = ttl ? config_parse_duration_ms(ttl) : CLI_RESULT_TTL_MS;
    r->cfg.result_ttl_ms = ttl_ms > 0 ? (uint64_t)ttl_ms : CLI_RESULT_TTL_MS;
    r->srv.cfg = &r->cfg;
    log_setup(LOG_OFF, false);
    const struct queue_api_ops *ops = queue_backend_of(&r->cfg)->api;
    int ret = loop_init(&r->loop, 0, &cli_loop);
    if (ret < 0) {
        fprintf(stderr, "trireme %s: cannot set up io_uring: %s\n", cmd, strerror(-ret));
        free(r);
        return 1;
    }
    r->loop.srv = &r->srv;
    /* rediss:// verifies Redis against --tls-ca-file, as `trireme run` does. */
    const char *redis_url = cli_setting(argc, argv, "--redis-url=", "REDIS_URL");
    if (redis_url && !strncmp(redis_url, "rediss://", 9)) {
        const char *ca = cli_setting(argc, argv, "--tls-ca-file=", "TRIREME_TLS_CA_FILE");
        char why[768];
        r->srv.tls = xcalloc(1, sizeof(*r->srv.tls));
        if (tls_store_load(r->srv.tls, "", "", ca ? ca : TLS_CA_FILE_DEFAULT, true, 1, 0, why,
                           sizeof(why)) < 0) {
            fprintf(stderr, "trireme %s: --tls-ca-file: %s\n", cmd, why);
            r->over = true;
        }
    }
    void *api = NULL;
    if (!r->over && !connect_all(r, argc, argv, queue_backend_of(&r->cfg)->needs) && !r->over) {
        struct queue_api_conns conns = {
            .loop = &r->loop,
            .pg = r->has_pg ? &r->pg : NULL,
            .redis = r->has_redis ? &r->redis : NULL,
        };
        const char *why = "";
        api = ops->open(&conns, &why);
        if (api) {
            r->call = start(ops, api, arg, on_answer, r);
            ret = loop_run(&r->loop);
            if (ret < 0 && !r->over)
                fprintf(stderr, "trireme %s: io_uring: %s\n", cmd, strerror(-ret));
            if (!r->over)
                queue_call_forget(r->call);
        } else {
            fprintf(stderr, "trireme %s: %s\n", cmd, why);
        }
    }
    /* Wind down as a web loop does: close, let the sockets go, free. */
    if (r->has_pg)
        pg_pool_close(&r->pg);
    if (r->has_redis)
        redis_client_close(&r->redis);
    r->loop.stop_now = false;
    r->loop.stopping = true;
    loop_run(&r->loop);
    if (r->has_pg)
        pg_pool_free(&r->pg);
    if (r->has_redis)
        redis_client_free(&r->redis);
    if (api)
        ops->close(api);
    loop_free(&r->loop);
    if (r->srv.tls) {
        tls_store_free(r->srv.tls);
        free(r->srv.tls);
    }
    int rc = r->rc;
    free(r);
    return rc;
}
