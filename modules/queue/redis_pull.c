/*
 * redis_pull.c - the pull part of the Redis queue backend (pull.h): claims
 * of pull kinds' jobs, the job callbacks, and the wake-up of waiting
 * claims, each one script (modules/queue/redis_pull_lua.c says the keys).
 *
 * Waiting claims cost nothing per client: this loop SUBSCRIBEs to
 * trireme:pull (published when a pull job becomes due: enqueue, retry,
 * hand-back), and its due check for pull_watch.h is one script. That check
 * also reaps expired pull leases (back to pending, the attempt counted), so
 * loop 0 of each web role runs it every quarter of --lease even when nobody
 * waits, as the worker's reaper does on PostgreSQL. Secrets come from
 * getrandom(2): 128 bits per attempt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/redis.h"
#include "kernel/xalloc.h"
#include "modules/queue/faults.h"
#include "modules/queue/pull.h"
#include "modules/queue/pull_watch.h"
#include "modules/queue/queue_api.h"
#include "modules/rqueue/rqueue.h"
#include "proto/rfc3339.h"

#define REDIS_PULL_TIMEOUT_MS 10000 /* every script */
#define SECRET_HEX            32    /* 128 bits */

struct redis_pull {
    struct loop *loop;
    struct redis_client *cl; /* the web loop's */
    struct redis_client sub; /* SUBSCRIBE trireme:pull */
    bool has_sub;
    struct redis_cmd subscribe;
    struct rq_shas shas;
    uint64_t ttl_ms;
    struct pull_watch watch; /* loop 0's also reaps, even when nobody waits */
    struct rq_call due;
};

struct rp_call {
    struct pull_call head; /* first */
    struct redis_pull *p;
    struct rq_call rq;
    int64_t id;   /* a callback's job */
    int64_t *ids; /* finish: its jobs */
    unsigned nids;
};

static struct rp_call *call_new(struct redis_pull *p, queue_answer_fn fn, void *data)
{
    struct rp_call *c = xcalloc(1, sizeof(*c));
    c->head.head = (struct queue_call){.fn = fn, .data = data};
    c->p = p;
    c->rq.cmd.timeout_ms = REDIS_PULL_TIMEOUT_MS;
    return c;
}

/* --- waking waiting claims ---------------------------------------------------- */

static void on_due(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_pull *p = container_of(rq, struct redis_pull, due);
    pull_watch_answer(&p->watch,
                      !err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1);
}

static void due_check(struct pull_watch *w)
{
    struct redis_pull *p = container_of(w, struct redis_pull, watch);
    memset(&p->due, 0, sizeof(p->due));
    p->due.cmd.timeout_ms = REDIS_PULL_TIMEOUT_MS;
    rq_args_addll(&p->due.args, (long long)p->ttl_ms);
    rq_eval(p->cl, &p->due, &p->shas, RQ_PULL_DUE, on_due);
}

static void on_push(struct redis_client *cl, redisReply *m)
{
    struct redis_pull *p = cl->data;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->str &&
        !strcmp(m->element[0]->str, "message"))
        pull_watch_poke(&p->watch);
}

static void on_subscribed(struct redis_cmd *c, redisReply *r, const char *err)
{
}

static void on_sub_state(struct redis_client *cl, bool up)
{
    struct redis_pull *p = cl->data;
    if (!up)
        return;
    p->subscribe = (struct redis_cmd){.fn = on_subscribed};
    redis_submitv(&p->sub, &p->subscribe, 2, (const char *[]){"SUBSCRIBE", RQ_PREFIX "pull"});
    pull_watch_poke(&p->watch); /* what was published while the connection was down */
}

static void rp_watch(void *st, bool on)
{
    struct redis_pull *p = st;
    pull_watch_set(&p->watch, on);
}

/* --- claim ---------------------------------------------------------------------- */

static void on_handed_back(struct rq_call *rq, redisReply *reply, const char *err)
{
    (void)reply;
    (void)err; /* a lost hand-back leaves the lease to expire: the next claim reaps it */
    free(container_of(rq, struct rp_call, rq));
}

static const char *str_of(const redisReply *r, char *tmp, size_t cap)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        snprintf(tmp, cap, "%lld", r->integer);
        return tmp;
    }
    return r->str ? r->str : "";
}

static void on_claimed(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct rp_call *c = container_of(rq, struct rp_call, rq);
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 8) {
        queue_answer_failed(&c->head.head, err ? queue_fault_redis(reply, err) : QUEUE_INTERNAL,
                            "redis", err ? err : "unexpected claim answer");
        free(c);
        return;
    }
    size_t n = reply->elements / 8;
    char t[8][32];
    if (!c->head.head.fn) { /* its client went away: give the jobs back */
        if (!n) {
            free(c);
            return;
        }
        struct rp_call *b = call_new(c->p, NULL, NULL);
        rq_args_addll(&b->rq.args, (long long)n);
        for (size_t i = 0; i < n; i++) {
            redisReply **e = reply->element + i * 8;
            rq_args_adds(&b->rq.args, str_of(e[0], t[0], sizeof(t[0])));
            rq_args_adds(&b->rq.args, str_of(e[3], t[3], sizeof(t[3])));
            rq_args_adds(&b->rq.args, str_of(e[6], t[6], sizeof(t[6])));
        }
        rq_eval(c->p->cl, &b->rq, &c->p->shas, RQ_PULL_BACK, on_handed_back);
        free(c);
        return;
    }
    json_t *jobs = json_array();
    for (size_t i = 0; i < n; i++) {
        redisReply **e = reply->element + i * 8;
        const char *payload = str_of(e[5], t[5], sizeof(t[5]));
        json_t *pj = json_loads(payload, JSON_DECODE_ANY, NULL);
        char token[PULL_TOKEN_MAX + 1], when[40];
        snprintf(token, sizeof(token), "%s.%s", str_of(e[3], t[3], sizeof(t[3])),
                 str_of(e[6], t[6], sizeof(t[6])));
        rfc3339_format_ms(e[7]->integer, when, sizeof(when));
        json_array_append_new(
            jobs,
            json_pack("{s:I, s:s, s:s, s:I, s:I, s:o, s:s, s:s}", "id",
                      (json_int_t)strtoll(str_of(e[0], t[0], sizeof(t[0])), NULL, 10), "kind",
                      str_of(e[1], t[1], sizeof(t[1])), "queue", str_of(e[2], t[2], sizeof(t[2])),
                      "attempt", (json_int_t)strtoll(str_of(e[3], t[3], sizeof(t[3])), NULL, 10),
                      "max_attempts",
                      (json_int_t)strtoll(str_of(e[4], t[4], sizeof(t[4])), NULL, 10), "payload",
                      pj ? pj : json_string(payload), "token", token, "lease_expires_at", when));
    }
    json_t *all = json_pack("{s:o}", "jobs", jobs);
    char *body = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(all);
    c->head.njobs = (unsigned)n;
    queue_answer_json(&c->head.head, body, strlen(body));
    free(body);
    free(c);
}

static struct pull_call *rp_claim(void *st, const struct pull_claim_req *req, queue_answer_fn fn,
                                  void *data)
{
    struct redis_pull *p = st;
    struct rp_call *c = call_new(p, fn, data);
    struct rq_args *a = &c->rq.args;
    rq_args_addll(a, (long long)req->lease_ms);
    rq_args_addll(a, (long long)p->ttl_ms);
    rq_args_addll(a, req->max);
    size_t i;
    json_t *v;
    rq_args_addll(a, (long long)json_array_size(req->kinds));
    json_array_foreach(req->kinds, i, v) rq_args_adds(a, json_string_value(v));
    rq_args_addll(a, (long long)json_array_size(req->queues));
    json_array_foreach(req->queues, i, v) rq_args_adds(a, json_string_value(v));
    for (unsigned k = 0; k < req->max; k++) {
        unsigned char raw[SECRET_HEX / 2];
        char hex[SECRET_HEX + 1];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            abort(); /* the kernel's CSPRNG never fails once booted */
        for (size_t b = 0; b < sizeof(raw); b++)
            snprintf(hex + 2 * b, 3, "%02x", raw[b]);
        rq_args_adds(a, hex);
    }
    rq_eval(p->cl, &c->rq, &p->shas, RQ_PULL_CLAIM, on_claimed);
    return &c->head;
}

/* --- callbacks ------------------------------------------------------------------ */

static void answer_stale(struct queue_call *qc, bool handoff)
{
    queue_call_answer(qc, &(struct queue_answer){
                              .status = 409,
                              .code = handoff ? "handoff_pending" : "stale_token",
                              .message = "the token does not hold this job's current attempt "
                                         "(its lease expired and it moved on, or it finished)",
                          });
}

static void on_reported(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct rp_call *c = container_of(rq, struct rp_call, rq);
    struct queue_call *qc = &c->head.head;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || !reply->elements ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        queue_answer_failed(qc, err ? queue_fault_redis(reply, err) : QUEUE_INTERNAL, "redis",
                            err ? err : "unexpected callback answer");
    } else if (reply->element[0]->integer == 1 && reply->elements == 3) {
        char tmp[32], when[40] = "";
        const char *lease = str_of(reply->element[2], tmp, sizeof(tmp));
        if (*lease)
            rfc3339_format_ms(strtoll(lease, NULL, 10), when, sizeof(when));
        json_t *j = json_pack("{s:I, s:s, s:s?}", "id", (json_int_t)c->id, "status",
                              str_of(reply->element[1], tmp, sizeof(tmp)), "lease_expires_at",
                              *when ? when : NULL);
        char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        queue_answer_json(qc, body, strlen(body));
        free(body);
    } else if (reply->element[0]->integer == 0 || reply->element[0]->integer == -2) {
        answer_stale(qc, reply->element[0]->integer == -2);
    } else {
        queue_answer_not_found(qc, "no job with this id (or its result expired)");
    }
    free(c);
}

/* The script's arguments after the first: id, secret, attempt, what. */
static void add_head(struct rq_args *a, const struct pull_report *rep)
{
    static const char *const what[] = {"progress", "heartbeat", "complete", "fail"};
    const char *dot = strchr(rep->token, '.');
    rq_args_addll(a, (long long)rep->id);
    rq_args_adds(a, dot ? dot + 1 : "");
    if (dot)
        rq_args_add(a, rep->token, (size_t)(dot - rep->token));
    else
        rq_args_adds(a, "-");
    rq_args_adds(a, what[rep->what]);
}

static struct queue_call *rp_report(void *st, const struct pull_report *rep, queue_answer_fn fn,
                                    void *data)
{
    struct redis_pull *p = st;
    struct rp_call *c = call_new(p, fn, data);
    struct rq_args *a = &c->rq.args;
    c->id = rep->id;
    add_head(a, rep);
    switch (rep->what) {
    case PULL_PROGRESS:
        if (rep->percent >= 0)
            rq_args_addll(a, rep->percent);
        else
            rq_args_adds(a, "");
        rq_args_adds(a, rep->step ? rep->step : "");
        rq_args_adds(a, "");
        break;
    case PULL_HEARTBEAT:
        rq_args_addll(a, (long long)rep->lease_ms);
        rq_args_adds(a, "");
        rq_args_adds(a, "");
        break;
    case PULL_COMPLETE:
        rq_args_adds(a, rep->result ? rep->result : "");
        rq_args_adds(a, "");
        rq_args_adds(a, "");
        break;
    case PULL_FAIL:
        rq_args_adds(a, rep->error ? rep->error : "failed by its worker");
        rq_args_adds(a, rep->retry ? "1" : "0");
        if (rep->retry_in_ms >= 0)
            rq_args_addll(a, (long long)rep->retry_in_ms);
        else
            rq_args_adds(a, "");
        break;
    }
    rq_args_addll(a, (long long)p->ttl_ms);
    rq_eval(p->cl, &c->rq, &p->shas, RQ_PULL_REPORT, on_reported);
    return &c->head.head;
}

static void on_finished(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct rp_call *c = container_of(rq, struct rp_call, rq);
    struct queue_call *qc = &c->head.head;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * c->nids) {
        queue_answer_failed(qc, err ? queue_fault_redis(reply, err) : QUEUE_INTERNAL, "redis",
                            err ? err : "unexpected answer to many outcomes");
    } else {
        json_t *out = json_array();
        for (unsigned i = 0; i < c->nids; i++) {
            const redisReply *code = reply->element[2 * i];
            char tmp[32];
            long long v = code->type == REDIS_REPLY_INTEGER ? code->integer : -1;
            json_array_append_new(
                out, v == 1 ? json_pack("{s:I, s:s, s:n}", "id", (json_int_t)c->ids[i], "status",
                                        str_of(reply->element[2 * i + 1], tmp, sizeof(tmp)),
                                        "lease_expires_at")
                            : json_pack("{s:I, s:s}", "id", (json_int_t)c->ids[i], "error",
                                        v == 0    ? "stale_token"
                                        : v == -2 ? "handoff_pending"
                                                  : "not_found"));
        }
        json_t *j = json_pack("{s:o}", "outcomes", out);
        char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        queue_answer_json(qc, body, strlen(body));
        free(body);
    }
    free(c->ids);
    free(c);
}

static struct queue_call *rp_finish(void *st, const struct pull_report *reps, unsigned n,
                                    queue_answer_fn fn, void *data)
{
    struct redis_pull *p = st;
    struct rp_call *c = call_new(p, fn, data);
    struct rq_args *a = &c->rq.args;
    c->ids = xmalloc(n * sizeof(*c->ids));
    c->nids = n;
    rq_args_addll(a, (long long)p->ttl_ms);
    rq_args_addll(a, n);
    for (unsigned i = 0; i < n; i++) {
        const struct pull_report *r = &reps[i];
        c->ids[i] = r->id;
        add_head(a, r);
        if (r->what == PULL_COMPLETE) {
            rq_args_adds(a, r->result ? r->result : "");
            rq_args_adds(a, "");
            rq_args_adds(a, "");
        } else {
            rq_args_adds(a, r->error ? r->error : "failed by its worker");
            rq_args_adds(a, r->retry ? "1" : "0");
            if (r->retry_in_ms >= 0)
                rq_args_addll(a, (long long)r->retry_in_ms);
            else
                rq_args_adds(a, "");
        }
    }
    rq_eval(p->cl, &c->rq, &p->shas, RQ_PULL_FINISH, on_finished);
    return &c->head.head;
}

/* --- per loop ----------------------------------------------------------------------- */

static void *rp_open(const struct queue_api_conns *conns, const struct config *cfg,
                     void (*wake)(void *data), void *data, const char **why)
{
    if (!conns->redis) {
        *why = "pull workers on the Redis queue backend need REDIS_URL";
        return NULL;
    }
    struct redis_pull *p = xcalloc(1, sizeof(*p));
    p->loop = conns->loop;
    p->cl = conns->redis;
    p->ttl_ms = cfg->result_ttl_ms;
    uint64_t reap_ms = cfg->lease_ms / 4 > 250 ? cfg->lease_ms / 4 : 250;
    pull_watch_init(&p->watch, p->loop, due_check, wake, data, p->loop->id == 0 ? reap_ms : 0);
    rq_shas_init(&p->shas);
    struct redis_url u;
    const char *err;
    if (redis_url_parse(cfg->redis_url, &u, &err) == 0) {
        p->sub.data = p;
        p->sub.on_push = on_push;
        p->sub.on_state = on_sub_state;
        if (redis_client_init(&p->sub, p->loop, &u, REDIS_PUBSUB, "pull-wake") == 0)
            p->has_sub = true;
    }
    return p;
}

static void rp_stop(void *st)
{
    struct redis_pull *p = st;
    if (!p || p->watch.stopped)
        return;
    pull_watch_stop(&p->watch);
    if (p->has_sub)
        redis_client_close(&p->sub);
}

static void rp_close(void *st)
{
    struct redis_pull *p = st;
    if (!p)
        return;
    if (p->has_sub)
        redis_client_free(&p->sub);
    free(p);
}

const struct queue_pull_ops redis_pull_ops = {
    .open = rp_open,
    .stop = rp_stop,
    .close = rp_close,
    .watch = rp_watch,
    .claim = rp_claim,
    .report = rp_report,
    .finish = rp_finish,
};
