/*
 * readyz.c - GET /readyz: is this instance ready for traffic?
 *
 * Answers from what each connection already knows: PostgreSQL is ok while
 * a pooled connection is up and unavailable once a connection attempt
 * failed with none up; Redis the same. Only a state not known yet (a
 * connection still being made or re-made) is probed: SELECT 1 (fail_fast:
 * it fails as soon as the pool learns the database is down) or PING, each
 * with a 5 s deadline. The answer always comes from a later loop turn, never
 * inside the handler. The database decides the status (503 when it does not answer:
 * nothing here works without it); Redis only degrades the features that
 * need it, so it is reported, not fatal - except when the queue backend
 * needs it (QUEUE_NEEDS_REDIS): the jobs live there. Also reports the leader elections this
 * process takes part in: "leaders" has one entry per election (worker,
 * beat; null when not run here), "leader" is the worker's, as before. While draining: 503 so
 * balancers move on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/leader/leader.h"
#include "modules/queue/queue.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

struct readyz {
    struct pg_query q;
    struct redis_cmd ping;
    struct timer known; /* answers what is known, in the next loop turn */
    struct web_request *r;
    int pending;
    char db[320], redis[320];
};

static void leader_json(struct server *s, int which, char *out, size_t cap)
{
    struct leader_shared *sh = leader_election_of(s, which);
    if (!sh) {
        snprintf(out, cap, "null");
        return;
    }
    bool is = atomic_load(&sh->leader);
    snprintf(out, cap,
             "{\"backend\":\"%s\",\"holder\":\"%s\",\"is_leader\":%s,\"token\":%lld,"
             "\"since_unix_ms\":%llu}",
             sh->backend, sh->holder, is ? "true" : "false", (long long)atomic_load(&sh->token),
             (unsigned long long)(is ? atomic_load(&sh->since_unix_ms) : 0));
}

static void answer(struct readyz *z)
{
    if (--z->pending)
        return;
    struct web_request *r = z->r;
    if (r) {
        r->on_abort = NULL;
        char worker[300], beat[300], body[1600];
        leader_json(r->loop->srv, ELECTION_WORKER, worker, sizeof(worker));
        leader_json(r->loop->srv, ELECTION_BEAT, beat, sizeof(beat));
        bool ok = !strcmp(z->db, "\"ok\"") || !strcmp(z->db, "\"disabled\"");
        /* When the queue backend keeps its jobs in Redis, it decides too. */
        if (queue_backend_of(r->loop->srv->cfg)->needs & QUEUE_NEEDS_REDIS)
            ok = ok && !strcmp(z->redis, "\"ok\"");
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"%s\",\"database\":%s,\"redis\":%s,\"leader\":%s,"
                         "\"leaders\":{\"worker\":%s,\"beat\":%s}}",
                         ok ? "ok" : "unavailable", z->db, z->redis, worker, worker, beat);
        web_respond(r, ok ? 200 : 503, "application/json", body, (size_t)n,
                    ok ? "Cache-Control: no-store\r\n"
                       : "Cache-Control: no-store\r\n" API_RETRY_AFTER_HDR);
    }
    free(z);
}

static void set_result(char *out, size_t cap, const char *err)
{
    if (!err) {
        snprintf(out, cap, "\"ok\"");
        return;
    }
    char esc[256];
    web_json_escape(esc, sizeof(esc), err, strlen(err));
    snprintf(out, cap, "\"error: %s\"", esc);
}

static void on_db(struct pg_query *q, PGresult *res, const char *err)
{
    struct readyz *z = container_of(q, struct readyz, q);
    set_result(z->db, sizeof(z->db), err);
    answer(z);
}

static void on_ping(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct readyz *z = c->data;
    set_result(z->redis, sizeof(z->redis), err);
    answer(z);
}

static void on_known(struct loop *l, struct timer *t)
{
    answer(container_of(t, struct readyz, known));
}

static void on_abort(struct web_request *r)
{
    ((struct readyz *)r->async)->r = NULL;
}

void web_readyz(struct web_request *r)
{
    struct web_loop *wl = web_loop_of(r->loop);
    if (wl->draining) {
        static const char d[] = "{\"status\":\"draining\"}";
        web_respond(r, 503, "application/json", d, sizeof(d) - 1, "Cache-Control: no-store\r\n");
        return;
    }
    struct readyz *z = xcalloc(1, sizeof(*z));
    z->r = r;
    z->pending = 1; /* the known states' answer, in the next loop turn */
    strcpy(z->db, "\"disabled\"");
    strcpy(z->redis, "\"disabled\"");
    r->async = z;
    r->on_abort = on_abort;
    if (wl->has_pg) {
        if (pg_pool_up(&wl->pg) || pg_pool_down(&wl->pg)) {
            set_result(z->db, sizeof(z->db), pg_pool_up(&wl->pg) ? NULL : PG_UNAVAILABLE);
        } else {
            z->pending++;
            z->q = (struct pg_query){
                .fn = on_db, .sql = "SELECT 1", .timeout_ms = READYZ_TIMEOUT_MS, .fail_fast = true};
            pg_query_submit(&wl->pg, &z->q);
        }
    }
    if (wl->has_redis) {
        if (redis_client_up(&wl->redis) || redis_client_down(&wl->redis)) {
            set_result(z->redis, sizeof(z->redis),
                       redis_client_up(&wl->redis) ? NULL : "Redis unavailable");
        } else {
            z->pending++;
            z->ping = (struct redis_cmd){
                .fn = on_ping, .data = z, .timeout_ms = READYZ_TIMEOUT_MS, .fail_fast = true};
            redis_submitv(&wl->redis, &z->ping, 1, (const char *[]){"PING"});
        }
    }
    z->known.fn = on_known;
    loop_timer_in(r->loop, &z->known, 0);
}
