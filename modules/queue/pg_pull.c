/*
 * pg_pull.c - the pull part of the PostgreSQL queue backend (pull.h):
 * claims of pull kinds' jobs, the job callbacks, and the wake-up of
 * waiting claims.
 *
 * Jobs of pull kinds carry pull = true and sit in their own partial index
 * (sql/008_pull.sql); a claim (trireme.pull_claim, sql/009) is one UPDATE
 * over one ordered range scan per (kind, queue), SKIP LOCKED, like the
 * worker's. Waiting claims cost nothing per client: this loop LISTENs on
 * trireme_jobs (its own small pool, on the direct URL), and its due check
 * for pull_watch.h is one step down jobs_due_pull.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/list.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/xalloc.h"
#include "modules/queue/faults.h"
#include "modules/queue/pull.h"
#include "modules/queue/pull_watch.h"
#include "modules/queue/queue_api.h"

#define PG_PULL_TIMEOUT_MS  10000 /* every statement */
#define PG_PULL_SPARE_CALLS 64    /* finished calls kept per loop for reuse */

/* The claim and the fenced callbacks are SQL functions (sql/009): one copy
 * shared with the trireme.claim()/complete()/... that workers call in
 * their own transactions, so both paths make the same transitions.
 * $1 kinds jsonb, $2 queues jsonb, $3 limit, $4 lease ms. */
#define SQL_PULL_CLAIM                                                                             \
    "SELECT job::text, id, attempt, secret"                                                        \
    " FROM trireme.pull_claim($1::jsonb, $2::jsonb, $3::int, $4::bigint)"

/* A claim nobody wants any more: back to pending, the attempt not counted.
 * $1 [{"id","attempt","secret"}]. */
#define SQL_PULL_HAND_BACK                                                                         \
    "UPDATE trireme.jobs j SET status = 'pending', attempts = greatest(j.attempts - 1, 0),"        \
    "  worker_id = NULL, lease_until = NULL, run_at = now(), updated_at = now()"                   \
    " FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, attempt int, secret text)"                \
    " WHERE j.id = v.id AND j.status = 'running' AND j.attempts = v.attempt"                       \
    " AND j.worker_id = 'pull:' || encode(sha256(convert_to(v.secret, 'UTF8')), 'hex')"

/* A callback: $1 id, $2 secret, $3 attempt, then fn's own; the answer, or
 * NULL when the fence did not hold, and then what the job is: NULL (no
 * such job: 404), 'w' (this attempt still runs under the built-in worker:
 * an http kind's 202 hand-off may not be written yet) or 'x' (409). */
#define REPORT(fn, args)                                                                           \
    "SELECT r::text, (SELECT CASE WHEN status = 'running' AND attempts = $3::int"                  \
    "  AND worker_id NOT LIKE 'pull:%' THEN 'w' ELSE 'x' END"                                      \
    "  FROM trireme.jobs WHERE id = $1::bigint)"                                                   \
    " FROM trireme." fn "($1::bigint, $2, $3::int, " args ") r"

/* Many outcomes (sql/011): $1 [{"id","token","ok",...}]. */
#define SQL_PULL_FINISH "SELECT id, status, held FROM trireme.pull_finish($1::jsonb)"

/* $4 percent or NULL, $5 step or NULL. */
#define SQL_PULL_PROGRESS REPORT("pull_progress", "$4::int, $5")
/* $4 lease ms. */
#define SQL_PULL_HEARTBEAT REPORT("pull_heartbeat", "$4::bigint")
/* $4 result jsonb or NULL. */
#define SQL_PULL_COMPLETE REPORT("pull_complete", "$4::jsonb")
/* $4 error, $5 retry, $6 delay ms or NULL (the job's backoff). */
#define SQL_PULL_FAIL REPORT("pull_fail", "$4, $5::boolean, $6::bigint")

#define SQL_PULL_DUE                                                                               \
    "SELECT EXISTS (SELECT 1 FROM trireme.jobs"                                                    \
    " WHERE status = 'pending' AND pull AND run_at <= now())"

struct pg_pull {
    struct loop *loop;
    struct pg_pool *pool; /* the web loop's: claims and callbacks */
    struct pg_pool own;   /* LISTEN, and the due check */
    bool has_own;
    struct pg_listener lis;
    struct pull_watch watch;
    struct pg_query due_q;
    struct list spare;
    unsigned nspare;
};

struct pp_call {
    struct pull_call head; /* first */
    struct pg_pull *p;
    struct list node;
    struct pg_query q;
    bool claim;
    const char *vals[6];
    char *own[6]; /* what vals point to that this call allocated */
    char num[3][24];
};

static struct pp_call *call_get(struct pg_pull *p, queue_answer_fn fn, void *data)
{
    struct pp_call *c;
    if (list_empty(&p->spare)) {
        c = xmalloc(sizeof(*c));
    } else {
        c = list_entry(p->spare.next, struct pp_call, node);
        list_remove(&c->node);
        p->nspare--;
    }
    memset(c, 0, sizeof(*c));
    c->head.head = (struct queue_call){.fn = fn, .data = data};
    c->p = p;
    list_init(&c->node);
    return c;
}

static void call_put(struct pp_call *c)
{
    struct pg_pull *p = c->p;
    for (int i = 0; i < 6; i++)
        free(c->own[i]);
    if (p->nspare >= PG_PULL_SPARE_CALLS) {
        free(c);
        return;
    }
    list_insert(&p->spare, &c->node);
    p->nspare++;
}

static void submit(struct pp_call *c, const char *sql, int nparams, pg_query_fn fn)
{
    c->q = (struct pg_query){
        .fn = fn,
        .data = c,
        .sql = sql,
        .nparams = nparams,
        .values = c->vals,
        .timeout_ms = PG_PULL_TIMEOUT_MS,
    };
    pg_query_submit(c->p->pool, &c->q);
}

/* --- waking waiting claims -------------------------------------------------- */

static void on_due(struct pg_query *q, PGresult *res, const char *err)
{
    struct pg_pull *p = q->data;
    pull_watch_answer(&p->watch, !err && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't');
}

static void due_check(struct pull_watch *w)
{
    struct pg_pull *p = container_of(w, struct pg_pull, watch);
    p->due_q = (struct pg_query){
        .fn = on_due,
        .data = p,
        .sql = SQL_PULL_DUE,
        .timeout_ms = PG_PULL_TIMEOUT_MS,
        .retry_safe = true,
    };
    pg_query_submit(p->has_own ? &p->own : p->pool, &p->due_q);
}

static void on_notify(struct pg_listener *l, const char *channel, const char *payload)
{
    (void)channel;
    (void)payload;
    struct pg_pull *p = l->data;
    pull_watch_poke(&p->watch);
}

static void pp_watch(void *st, bool on)
{
    struct pg_pull *p = st;
    pull_watch_set(&p->watch, on);
}

/* --- claim ------------------------------------------------------------------ */

static void on_handed_back(struct pg_query *q, PGresult *res, const char *err)
{
    (void)res;
    (void)err; /* a lost hand-back leaves the lease to expire: the reaper's */
    call_put(q->data);
}

/* The claim's caller went away: give its jobs back at once. */
static void hand_back(struct pp_call *c, PGresult *res)
{
    json_t *v = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(
            v, json_pack("{sIsiss}", "id", (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10),
                         "attempt", atoi(PQgetvalue(res, i, 2)), "secret", PQgetvalue(res, i, 3)));
    for (int i = 0; i < 6; i++) {
        free(c->own[i]);
        c->own[i] = NULL;
    }
    c->own[0] = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    c->vals[0] = c->own[0];
    submit(c, SQL_PULL_HAND_BACK, 1, on_handed_back);
}

static void on_claimed(struct pg_query *q, PGresult *res, const char *err)
{
    struct pp_call *c = q->data;
    if (err) {
        queue_answer_failed(&c->head.head, queue_fault_pg(res), "database", err);
        call_put(c);
        return;
    }
    int n = PQntuples(res);
    if (!c->head.head.fn) {
        if (n)
            hand_back(c, res);
        else
            call_put(c);
        return;
    }
    size_t len = sizeof("{\"jobs\":[]}");
    for (int i = 0; i < n; i++)
        len += strlen(PQgetvalue(res, i, 0)) + 1;
    char *body = xmalloc(len + 1), *o = body;
    o += sprintf(o, "{\"jobs\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        size_t l = strlen(PQgetvalue(res, i, 0));
        memcpy(o, PQgetvalue(res, i, 0), l);
        o += l;
    }
    o += sprintf(o, "]}");
    c->head.njobs = (unsigned)n;
    queue_answer_json(&c->head.head, body, (size_t)(o - body));
    free(body);
    call_put(c);
}

static struct pull_call *pp_claim(void *st, const struct pull_claim_req *req, queue_answer_fn fn,
                                  void *data)
{
    struct pg_pull *p = st;
    struct pp_call *c = call_get(p, fn, data);
    c->claim = true;
    c->own[0] = json_dumps(req->kinds, JSON_COMPACT);
    c->own[1] = json_dumps(req->queues, JSON_COMPACT);
    snprintf(c->num[0], sizeof(c->num[0]), "%u", req->max);
    snprintf(c->num[1], sizeof(c->num[1]), "%llu", (unsigned long long)req->lease_ms);
    c->vals[0] = c->own[0];
    c->vals[1] = c->own[1];
    c->vals[2] = c->num[0];
    c->vals[3] = c->num[1];
    submit(c, SQL_PULL_CLAIM, 4, on_claimed);
    return &c->head;
}

/* --- callbacks -------------------------------------------------------------- */

/* What a token says: its attempt (-1 when it is not "<attempt>.<secret>",
 * which matches no attempt: 409) and where its secret starts. */
static long token_attempt(const char *token, const char **secret)
{
    const char *dot = strchr(token, '.');
    long attempt = 0;
    if (dot && dot > token && dot - token <= 9) {
        for (const char *s = token; s < dot && attempt >= 0; s++)
            attempt = *s >= '0' && *s <= '9' ? attempt * 10 + (*s - '0') : -1;
    } else {
        attempt = -1;
    }
    *secret = dot ? dot + 1 : "";
    return attempt;
}

static void answer_stale(struct pp_call *c, bool handoff)
{
    queue_call_answer(&c->head.head,
                      &(struct queue_answer){
                          .status = 409,
                          .code = handoff ? "handoff_pending" : "stale_token",
                          .message = "the token does not hold this job's current attempt "
                                     "(its lease expired and it moved on, or it finished)",
                      });
}

static void on_reported(struct pg_query *q, PGresult *res, const char *err)
{
    struct pp_call *c = q->data;
    if (err)
        queue_answer_failed(&c->head.head, queue_fault_pg(res), "database", err);
    else if (PQntuples(res) != 1)
        queue_answer_failed(&c->head.head, QUEUE_INTERNAL, "database", "short callback result");
    else if (!PQgetisnull(res, 0, 0))
        queue_answer_json(&c->head.head, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
    else if (!PQgetisnull(res, 0, 1))
        answer_stale(c, PQgetvalue(res, 0, 1)[0] == 'w');
    else
        queue_answer_not_found(&c->head.head, "no job with this id");
    call_put(c);
}

static struct queue_call *pp_report(void *st, const struct pull_report *rep, queue_answer_fn fn,
                                    void *data)
{
    struct pg_pull *p = st;
    struct pp_call *c = call_get(p, fn, data);
    const char *secret;
    long attempt = token_attempt(rep->token, &secret);
    snprintf(c->num[0], sizeof(c->num[0]), "%lld", (long long)rep->id);
    snprintf(c->num[1], sizeof(c->num[1]), "%ld", attempt);
    c->vals[0] = c->num[0];
    c->own[0] = xstrdup(secret);
    c->vals[1] = c->own[0];
    c->vals[2] = c->num[1];
    const char *sql = NULL;
    int n = 3;
    switch (rep->what) {
    case PULL_PROGRESS:
        if (rep->percent >= 0) {
            snprintf(c->num[2], sizeof(c->num[2]), "%d", rep->percent);
            c->vals[3] = c->num[2];
        }
        if (rep->step)
            c->vals[4] = c->own[1] = xstrdup(rep->step);
        sql = SQL_PULL_PROGRESS;
        n = 5;
        break;
    case PULL_HEARTBEAT:
        snprintf(c->num[2], sizeof(c->num[2]), "%llu", (unsigned long long)rep->lease_ms);
        c->vals[3] = c->num[2];
        sql = SQL_PULL_HEARTBEAT;
        n = 4;
        break;
    case PULL_COMPLETE:
        if (rep->result)
            c->vals[3] = c->own[1] = xstrdup(rep->result);
        sql = SQL_PULL_COMPLETE;
        n = 4;
        break;
    case PULL_FAIL:
        c->vals[3] = c->own[1] = xstrdup(rep->error ? rep->error : "failed by its worker");
        c->vals[4] = rep->retry ? "true" : "false";
        if (rep->retry_in_ms >= 0) {
            snprintf(c->num[2], sizeof(c->num[2]), "%lld", (long long)rep->retry_in_ms);
            c->vals[5] = c->num[2];
        }
        sql = SQL_PULL_FAIL;
        n = 6;
        break;
    }
    submit(c, sql, n, on_reported);
    return &c->head.head;
}

static void on_finished(struct pg_query *q, PGresult *res, const char *err)
{
    struct pp_call *c = q->data;
    if (err) {
        queue_answer_failed(&c->head.head, queue_fault_pg(res), "database", err);
        call_put(c);
        return;
    }
    int n = PQntuples(res);
    size_t len = sizeof("{\"outcomes\":[]}");
    for (int i = 0; i < n; i++)
        len += 64 + (size_t)PQgetlength(res, i, 0) + (size_t)PQgetlength(res, i, 1);
    char *body = xmalloc(len), *o = body;
    o += sprintf(o, "{\"outcomes\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        if (!PQgetisnull(res, i, 1)) { /* the attempt ended: no lease */
            o += sprintf(o, "{\"id\":%s,\"status\":\"%s\",\"lease_expires_at\":null}",
                         PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            continue;
        }
        const char *why = PQgetisnull(res, i, 2)            ? "not_found"
                          : PQgetvalue(res, i, 2)[0] == 'w' ? "handoff_pending"
                                                            : "stale_token";
        o += sprintf(o, "{\"id\":%s,\"error\":\"%s\"}", PQgetvalue(res, i, 0), why);
    }
    o += sprintf(o, "]}");
    queue_answer_json(&c->head.head, body, (size_t)(o - body));
    free(body);
    call_put(c);
}

/* s as a JSON string literal at o (jansson's encoder; s came out of a
 * JSON body), which has room for 6 bytes per byte of s and 2. */
static char *put_str(char *o, const char *s)
{
    json_t *v = json_string(s);
    o += json_dumpb(v, o, strlen(s) * 6 + 2, JSON_ENCODE_ANY);
    json_decref(v);
    return o;
}

static struct queue_call *pp_finish(void *st, const struct pull_report *reps, unsigned n,
                                    queue_answer_fn fn, void *data)
{
    struct pg_pull *p = st;
    struct pp_call *c = call_get(p, fn, data);
    size_t len = 3;
    for (unsigned i = 0; i < n; i++)
        len += 128 + 6 * strlen(reps[i].token) + (reps[i].result ? strlen(reps[i].result) : 0) +
               (reps[i].error ? 6 * strlen(reps[i].error) : 0);
    char *o = c->own[0] = xmalloc(len);
    *o++ = '[';
    for (unsigned i = 0; i < n; i++) {
        const struct pull_report *r = &reps[i];
        o += sprintf(o, "%s{\"id\":%lld,\"token\":", i ? "," : "", (long long)r->id);
        o = put_str(o, r->token);
        if (r->what == PULL_COMPLETE) {
            o += sprintf(o, ",\"ok\":true,\"result\":%s", r->result ? r->result : "null");
        } else {
            o += sprintf(o, ",\"ok\":false,\"retry\":%s,\"error\":", r->retry ? "true" : "false");
            o = put_str(o, r->error ? r->error : "failed by its worker");
            if (r->retry_in_ms >= 0)
                o += sprintf(o, ",\"retry_in_ms\":%lld", (long long)r->retry_in_ms);
        }
        *o++ = '}';
    }
    *o++ = ']';
    *o = 0;
    c->vals[0] = c->own[0];
    submit(c, SQL_PULL_FINISH, 1, on_finished);
    return &c->head.head;
}

/* --- per loop ----------------------------------------------------------------- */

static void *pp_open(const struct queue_api_conns *conns, const struct config *cfg,
                     void (*wake)(void *data), void *data, const char **why)
{
    /* LISTEN needs a session: the direct URL when DATABASE_URL is a pooler. */
    const char *direct_url =
        *cfg->database_direct_url ? cfg->database_direct_url : cfg->database_url;
    if (!conns->pg) {
        *why = "pull workers need DATABASE_URL (the PostgreSQL queue backend)";
        return NULL;
    }
    struct pg_pull *p = xcalloc(1, sizeof(*p));
    p->loop = conns->loop;
    p->pool = conns->pg;
    pull_watch_init(&p->watch, p->loop, due_check, wake, data, 0);
    list_init(&p->spare);
    struct pg_pool_config pc = {
        .conninfo = direct_url,
        .listen_conninfo = direct_url,
        .size = 1,
        .max_inflight = 4,
    };
    if (pg_pool_init(&p->own, p->loop, &pc) == 0) {
        p->has_own = true;
        p->lis = (struct pg_listener){.channel = "trireme_jobs", .fn = on_notify, .data = p};
        pg_listen(&p->own, &p->lis);
    }
    return p;
}

static void pp_stop(void *st)
{
    struct pg_pull *p = st;
    if (!p || p->watch.stopped)
        return;
    pull_watch_stop(&p->watch);
    if (p->has_own)
        pg_pool_close(&p->own);
}

static void pp_close(void *st)
{
    struct pg_pull *p = st;
    if (!p)
        return;
    if (p->has_own)
        pg_pool_free(&p->own);
    while (!list_empty(&p->spare)) {
        struct pp_call *c = list_entry(p->spare.next, struct pp_call, node);
        list_remove(&c->node);
        free(c);
    }
    free(p);
}

const struct queue_pull_ops pg_pull_ops = {
    .open = pp_open,
    .stop = pp_stop,
    .close = pp_close,
    .watch = pp_watch,
    .claim = pp_claim,
    .report = pp_report,
    .finish = pp_finish,
};
