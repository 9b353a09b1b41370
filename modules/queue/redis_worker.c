/*
 * redis_worker.c - the worker part of the Redis queue backend
 * (--queue-backend=redis).
 *
 * Jobs arrive through a Stream per queue read by the consumer group
 * "trireme" (scripts and keys: modules/rqueue/rqueue_lua.c). Per loop:
 *
 *   blk   XREADGROUP ... BLOCK on a connection of its own (a blocking
 *         command holds its connection); one read in flight, the next sent
 *         as soon as the last answered while slots are free.
 *   cmd   every script: MARK (the starts of one loop turn) and COMPLETE
 *         (its outcomes; redis_worker_run.c), HEARTBEAT (XCLAIM to ourselves
 *         renews the leases of running entries), PROMOTE (due delayed and
 *         retried jobs onto their streams, on a timer), XAUTOCLAIM of
 *         entries idle past --lease (dead consumers) and START for those.
 *   sub   SUBSCRIBE trireme:cancel: a cancelled running job stops at once.
 *
 * Runs, time limits, retries with backoff and the drain are the worker
 * core's (modules/worker/core.h); fencing (worker id, attempt and entry)
 * is checked by the completion script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/xalloc.h"
#include "modules/queue/redis_worker.h"

/* --- starting deliveries of dead consumers (START) ----------------------- */

#define START_FIELDS 7 /* per started job in START's answer (rqueue_lua.c) */

static void on_started(struct rq_call *c, redisReply *reply, const char *err)
{
    struct start_call *s = (struct start_call *)c;
    struct rqw *q = s->q;
    q->starting -= s->n;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % START_FIELDS) {
        /* Unknown whether they started: the entries stay in this consumer's
         * pending list and come back after --lease through XAUTOCLAIM. */
        LOG(LOG_WARN, "worker: starting jobs failed; they return after their lease",
            L_STR("error", err ? err : "unexpected reply"), L_INT("jobs", s->n));
    } else {
        size_t started = reply->elements / START_FIELDS;
        if (started)
            LOG(LOG_WARN, "lease expired, jobs taken over from a stopped worker",
                L_INT("count", started), L_STR("worker_id", q->w.id));
        unsigned k = 0;
        for (size_t i = 0; i < started; i++) {
            redisReply **f = reply->element + i * START_FIELDS;
            long long id = f[0]->type == REDIS_REPLY_STRING ? atoll(f[0]->str) : f[0]->integer;
            while (k < s->n && s->v[k].id != id)
                k++;
            if (k == s->n)
                break; /* the script answers in request order; never here */
            rqw_start_one(q, &s->v[k++], f);
        }
    }
    free(s->v);
    free(s);
    worker_want(&q->w);
    worker_op_end(&q->w);
}

/* XAUTOCLAIM's entries of one stream into a START call. */
static void start_entries(struct rqw *q, unsigned qix, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY || !entries->elements)
        return;
    struct start_call *s = xcalloc(1, sizeof(*s));
    s->q = q;
    s->v = xcalloc(entries->elements, sizeof(*s->v));
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue; /* an entry deleted meanwhile: nothing to run */
        const redisReply *f = e->element[1];
        long long id = 0;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && !strcmp(f->element[k]->str, "id") &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                id = atoll(f->element[k + 1]->str);
        if (id <= 0)
            continue;
        struct start_entry *se = &s->v[s->n++];
        se->qix = qix;
        snprintf(se->entry, sizeof(se->entry), "%s", e->element[0]->str);
        se->id = id;
    }
    if (!s->n) {
        free(s->v);
        free(s);
        return;
    }
    s->c.data = q;
    rq_args_adds(&s->c.args, q->w.id);
    rq_args_adds(&s->c.args, q->ttl);
    rq_args_addll(&s->c.args, s->n);
    for (unsigned i = 0; i < s->n; i++) {
        rq_args_adds(&s->c.args, q->w.queue[s->v[i].qix]);
        rq_args_adds(&s->c.args, s->v[i].entry);
        rq_args_addll(&s->c.args, s->v[i].id);
    }
    q->starting += s->n;
    worker_op_begin(&q->w);
    rq_eval(&q->cmd, &s->c, &q->shas, RQ_START, on_started);
}

/* --- reading ------------------------------------------------------------- */

static void ensure_groups(struct rqw *q);

static int queue_of(struct rqw *q, const char *key)
{
    for (unsigned i = 0; i < q->w.nqueues; i++)
        if (!strcmp(q->qkey[i], key))
            return (int)i;
    return -1;
}

static void on_read(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *q = container_of(c, struct rqw, read_cmd);
    struct worker *w = &q->w;
    q->reading = false;
    if (w->closed) {
        worker_op_end(w);
        return;
    }
    if (err) {
        if (!strncmp(err, "NOGROUP", 7)) {
            /* The stream or its group is gone (a Redis without persistence
             * restarted, or a FLUSH): make them again. */
            LOG(LOG_WARN, "worker: consumer group missing, creating it again", L_STR("error", err));
            q->groups_ready = false;
            ensure_groups(q);
        } else if (!w->draining) {
            LOG(LOG_WARN, "worker: reading the job streams failed", L_STR("error", err));
            loop_timer_in(w->loop, &q->fetch_timer, FETCH_RETRY_MS);
        }
        worker_op_end(w);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        size_t total = 0;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *s = reply->element[i];
            if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
                total += s->element[1]->elements;
        }
        if (total)
            LOG(LOG_INFO, "jobs fetched", L_INT("count", total), L_STR("worker_id", w->id));
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *s = reply->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
                s->element[0]->type != REDIS_REPLY_STRING ||
                s->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            int qix = queue_of(q, s->element[0]->str);
            for (size_t k = 0; qix >= 0 && k < s->element[1]->elements; k++)
                rqw_run_fresh(q, (unsigned)qix, s->element[1]->element[k]);
        }
        /* Starts still running are recorded at the end of this turn. */
        worker_flush_soon(w);
    }
    worker_want(w);
    worker_op_end(w);
}

static void on_client_id(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *q = container_of(c, struct rqw, id_cmd);
    q->id_inflight = false;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER)
        q->blk_id = reply->integer;
}

static void rqw_fetch(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    if (q->reading || !q->groups_ready)
        return;
    unsigned want = worker_fetch_size(w, q->starting);
    if (!want)
        return;
    loop_timer_cancel(w->loop, &q->fetch_timer);
    if (!q->blk_id && !q->id_inflight) {
        q->id_inflight = true;
        q->id_cmd = (struct redis_cmd){.fn = on_client_id};
        redis_submitv(&q->blk, &q->id_cmd, 2, (const char *[]){"CLIENT", "ID"});
    }
    /* COUNT is per stream: share the free slots among the queues. */
    unsigned per = want / w->nqueues ? want / w->nqueues : 1;
    char count[16], block[24];
    snprintf(count, sizeof(count), "%u", per);
    snprintf(block, sizeof(block), "%llu", (unsigned long long)w->cfg->poll_interval_ms);
    const char *argv[9 + 2 * WORKER_MAX_QUEUES];
    int n = 0;
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = RQ_GROUP;
    argv[n++] = w->id;
    argv[n++] = "COUNT";
    argv[n++] = count;
    argv[n++] = "BLOCK";
    argv[n++] = block;
    argv[n++] = "STREAMS";
    for (unsigned i = 0; i < w->nqueues; i++)
        argv[n++] = q->qkey[i];
    for (unsigned i = 0; i < w->nqueues; i++)
        argv[n++] = ">";
    q->reading = true;
    q->read_cmd =
        (struct redis_cmd){.fn = on_read, .timeout_ms = w->cfg->poll_interval_ms + BLOCK_EXTRA_MS};
    worker_op_begin(w);
    redis_submitv(&q->blk, &q->read_cmd, n, argv);
}

static void on_blk_state(struct redis_client *cl, bool up)
{
    struct rqw *q = cl->data;
    if (!up)
        q->blk_id = 0; /* a new connection has a new id */
}

static void on_group(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *q = c->data;
    if (err && strncmp(err, "BUSYGROUP", 9)) {
        LOG(LOG_WARN, "worker: creating a consumer group failed; trying again",
            L_STR("error", err));
        q->groups_pending = 0; /* the others answer into a new round */
        loop_timer_in(q->w.loop, &q->fetch_timer, FETCH_RETRY_MS * 4);
        return;
    }
    if (q->groups_pending && !--q->groups_pending) {
        q->groups_ready = true;
        LOG(LOG_INFO, "worker listening for new jobs", L_STR("backend", "redis"),
            L_STR("queues", q->w.cfg->queues), L_INT("loop", q->w.loop->id));
        worker_want(&q->w);
    }
}

/* XGROUP CREATE ... 0 MKSTREAM per queue: from the start of the stream, so
 * jobs enqueued before any worker existed are read too. */
static void ensure_groups(struct rqw *q)
{
    if (q->groups_pending || q->w.closed)
        return;
    q->groups_pending = q->w.nqueues;
    for (unsigned i = 0; i < q->w.nqueues; i++) {
        q->group_cmd[i] = (struct redis_cmd){.fn = on_group, .data = q, .retry_safe = true};
        const char *argv[] = {"XGROUP", "CREATE", q->qkey[i], RQ_GROUP, "0", "MKSTREAM"};
        redis_submitv(&q->cmd, &q->group_cmd[i], 6, argv);
    }
}

static void on_fetch_timer(struct loop *l, struct timer *t)
{
    struct rqw *q = container_of(t, struct rqw, fetch_timer);
    if (!q->groups_ready)
        ensure_groups(q);
    else
        worker_want(&q->w);
}

/* --- dead consumers, delayed jobs, leases, cancellation ------------------ */

static void on_autoclaimed(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct claim_cmd *cc = (struct claim_cmd *)c;
    struct rqw *q = cc->q;
    q->claims_inflight--;
    if (err) {
        if (strncmp(err, "NOGROUP", 7))
            LOG(LOG_WARN, "worker: XAUTOCLAIM failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
               !q->w.draining) {
        start_entries(q, cc->qix, reply->element[1]);
    }
    worker_op_end(&q->w);
}

static void on_consumers(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *q = c->data;
    q->consumers_inflight = false;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        LOG(LOG_INFO, "worker: forgot consumers of stopped workers",
            L_INT("count", reply->integer));
    worker_op_end(&q->w);
}

/* Stopped workers' consumers that own nothing any more. */
static void forget_consumers(struct rqw *q)
{
    if (q->consumers_inflight)
        return;
    memset(&q->consumers, 0, sizeof(q->consumers));
    q->consumers.data = q;
    rq_args_adds(&q->consumers.args, q->w.id);
    rq_args_addll(&q->consumers.args, (long long)(q->w.cfg->lease_ms * CONSUMER_IDLE_LEASES));
    for (unsigned i = 0; i < q->w.nqueues; i++)
        rq_args_adds(&q->consumers.args, q->w.queue[i]);
    q->consumers_inflight = true;
    worker_op_begin(&q->w);
    rq_eval(&q->cmd, &q->consumers, &q->shas, RQ_CONSUMERS, on_consumers);
}

static void on_claim_timer(struct loop *l, struct timer *t)
{
    struct rqw *q = container_of(t, struct rqw, claim_timer);
    struct worker *w = &q->w;
    uint64_t every = w->cfg->lease_ms / 2;
    loop_timer_in(l, t, every / 2 + loop_random(l) % (every / 2 + 1));
    if (w->draining || q->claims_inflight || !q->groups_ready)
        return;
    forget_consumers(q);
    if (!worker_may_fetch(w))
        return;
    unsigned free_slots = worker_free_slots(w, q->starting);
    if (!free_slots)
        return;
    unsigned per = free_slots / w->nqueues ? free_slots / w->nqueues : 1;
    if (per > w->cfg->batch_size)
        per = w->cfg->batch_size;
    char count[16];
    snprintf(count, sizeof(count), "%u", per);
    for (unsigned i = 0; i < w->nqueues; i++) {
        struct claim_cmd *cc = &q->claim[i];
        cc->q = q;
        cc->qix = i;
        cc->cmd = (struct redis_cmd){.fn = on_autoclaimed};
        const char *argv[] = {"XAUTOCLAIM", q->qkey[i], RQ_GROUP, w->id,
                              q->lease,     "0-0",      "COUNT",  count};
        q->claims_inflight++;
        worker_op_begin(w);
        redis_submitv(&q->cmd, &cc->cmd, 8, argv);
    }
}

static void on_promoted(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *q = c->data;
    q->promote_inflight = false;
    uint64_t next = q->w.cfg->promote_interval_ms;
    if (err) {
        LOG(LOG_WARN, "worker: promoting delayed jobs failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        long long due = reply->element[1]->integer;
        if (due >= 0 && (uint64_t)due < next)
            next = due ? (uint64_t)due : 1;
    }
    if (!q->w.draining && !q->w.closed)
        loop_timer_in(q->w.loop, &q->promote_timer, next);
    worker_op_end(&q->w);
}

static void on_promote_timer(struct loop *l, struct timer *t)
{
    struct rqw *q = container_of(t, struct rqw, promote_timer);
    if (q->promote_inflight || q->w.draining)
        return;
    memset(&q->promote, 0, sizeof(q->promote));
    q->promote.data = q;
    rq_args_addll(&q->promote.args, PROMOTE_MAX);
    rq_args_addll(&q->promote.args, DONE_SWEEP_MAX);
    for (unsigned i = 0; i < q->w.nqueues; i++)
        rq_args_adds(&q->promote.args, q->w.queue[i]);
    q->promote_inflight = true;
    worker_op_begin(&q->w);
    rq_eval(&q->cmd, &q->promote, &q->shas, RQ_PROMOTE, on_promoted);
}

static void on_heartbeat(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *q = c->data;
    struct worker *w = &q->w;
    if (err) {
        LOG(LOG_WARN, "worker: lease renewal failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            long long id = atoll(reply->element[i]->str ? reply->element[i]->str : "0");
            struct worker_run *r = worker_run_find(w, id);
            if (r && r->hb_gen == w->hb_gen)
                worker_run_lose(w, r, "job lease lost (cancelled or taken over), stopping it",
                                false);
        }
    }
    worker_heartbeat_done(w);
}

static bool rqw_heartbeat(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    struct rq_args body = {0};
    unsigned n = 0;
    struct list *node;
    list_for_each(node, &w->runs)
    {
        struct worker_run *wr = list_entry(node, struct worker_run, node);
        struct rrun *r = rrun_of(wr);
        if (wr->lost || !r->recorded)
            continue;
        wr->hb_gen = w->hb_gen;
        rq_args_addll(&body, wr->job.id);
        rq_args_adds(&body, w->queue[wr->queue_ix]);
        rq_args_adds(&body, r->ref);
        rq_args_addll(&body, wr->job.attempt);
        n++;
    }
    if (!n) {
        rq_args_free(&body);
        return false;
    }
    memset(&q->hb, 0, sizeof(q->hb));
    q->hb.data = q;
    rq_args_adds(&q->hb.args, w->id);
    rq_args_addll(&q->hb.args, n);
    rq_args_append(&q->hb.args, &body);
    rq_args_free(&body);
    rq_eval(&q->cmd, &q->hb, &q->shas, RQ_HEARTBEAT, on_heartbeat);
    return true;
}

static void on_sub_push(struct redis_client *cl, redisReply *m)
{
    struct rqw *q = cl->data;
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || !m->element[0]->str ||
        strcmp(m->element[0]->str, "message") || !m->element[2]->str)
        return;
    struct worker_run *r = worker_run_find(&q->w, atoll(m->element[2]->str));
    if (!r)
        return;
    worker_run_lose(&q->w, r, "job cancelled while running, stopping it", true);
    worker_want(&q->w);
}

static void on_subscribed(struct redis_cmd *c, redisReply *r, const char *err)
{
}

static void on_sub_state(struct redis_client *cl, bool up)
{
    struct rqw *q = cl->data;
    if (!up)
        return;
    q->subscribe = (struct redis_cmd){.fn = on_subscribed};
    redis_submitv(&q->sub, &q->subscribe, 2, (const char *[]){"SUBSCRIBE", RQ_PREFIX "cancel"});
}

/* --- drain --------------------------------------------------------------- */

static void on_unblocked(struct redis_cmd *c, redisReply *reply, const char *err)
{
    worker_op_end(&container_of(c, struct rqw, unblock_cmd)->w);
}

static void rqw_drain(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    loop_timer_cancel(w->loop, &q->fetch_timer);
    loop_timer_cancel(w->loop, &q->promote_timer);
    retention_stop(&q->orphans);
    redis_files_sweep_stop(&q->files_sweep);
    /* A read blocked in Redis would hold the drain for up to its BLOCK
     * time: wake it (it answers nil, having delivered nothing). */
    if (q->reading && q->blk_id) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", q->blk_id);
        q->unblock_cmd = (struct redis_cmd){.fn = on_unblocked, .timeout_ms = UNBLOCK_TIMEOUT_MS};
        worker_op_begin(w);
        redis_submitv(&q->cmd, &q->unblock_cmd, 3, (const char *[]){"CLIENT", "UNBLOCK", id});
    }
}

static void rqw_close(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    loop_timer_cancel(w->loop, &q->claim_timer);
    loop_timer_cancel(w->loop, &q->promote_timer);
    loop_timer_cancel(w->loop, &q->fetch_timer);
    retention_stop(&q->orphans);
    redis_files_sweep_stop(&q->files_sweep);
    redis_client_close(&q->blk);
    redis_client_close(&q->sub);
    redis_client_close(&q->cmd);
    if (q->has_pg)
        pg_pool_close(&q->pg);
}

static void rqw_free(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    if (q->blk_open)
        redis_client_free(&q->blk);
    if (q->sub_open)
        redis_client_free(&q->sub);
    if (q->cmd_open)
        redis_client_free(&q->cmd);
    if (q->has_pg)
        pg_pool_free(&q->pg);
    retention_stop(&q->orphans);
    redis_files_sweep_free(&q->files_sweep);
    rq_args_free(&q->done);
    rq_args_free(&q->promote.args);
    rq_args_free(&q->hb.args);
    rq_args_free(&q->consumers.args);
}

/* --- set-up -------------------------------------------------------------- */

static const char *rqw_unmet(const struct config *cfg)
{
    return *cfg->redis_url ? NULL : "--queue-backend=redis needs REDIS_URL";
}

static int rqw_open(struct worker *w)
{
    struct rqw *q = rqw_of(w);
    const struct config *cfg = w->cfg;
    struct loop *l = w->loop;
    for (unsigned i = 0; i < w->nqueues; i++)
        snprintf(q->qkey[i], sizeof(q->qkey[i]), RQ_PREFIX "q:%s", w->queue[i]);
    snprintf(q->lease, sizeof(q->lease), "%llu", (unsigned long long)cfg->lease_ms);
    snprintf(q->ttl, sizeof(q->ttl), "%llu", (unsigned long long)cfg->result_ttl_ms);
    rq_shas_init(&q->shas);
    q->fetch_timer.fn = on_fetch_timer;
    q->claim_timer.fn = on_claim_timer;
    q->promote_timer.fn = on_promote_timer;

    struct redis_url u;
    const char *err;
    redis_url_parse(cfg->redis_url, &u, &err); /* validated at config load */
    int rc = redis_client_init(&q->cmd, l, &u, REDIS_COMMANDS, "queue");
    if (rc < 0)
        return rc;
    q->cmd_open = true;
    q->blk.data = q;
    q->blk.on_state = on_blk_state;
    if ((rc = redis_client_init(&q->blk, l, &u, REDIS_COMMANDS, "queue-read")) < 0)
        return rc;
    q->blk_open = true;
    q->sub.data = q;
    q->sub.on_push = on_sub_push;
    q->sub.on_state = on_sub_state;
    if ((rc = redis_client_init(&q->sub, l, &u, REDIS_PUBSUB, "queue-cancel")) < 0)
        return rc;
    q->sub_open = true;
    if (*cfg->database_url) {
        struct pg_pool_config pc = {
            .conninfo = cfg->database_url, .size = cfg->pg_pool, .max_inflight = 64};
        if ((rc = pg_pool_init(&q->pg, l, &pc)) < 0)
            return rc;
        q->has_pg = true;
        /* uploads' files live in PostgreSQL: the two sweeps the job's
         * deletion cannot trigger on this backend */
        if (l->id == 0) {
            retention_start(&q->orphans, l, &q->pg, RETENTION_ORPHANS);
            redis_files_sweep_start(&q->files_sweep, l, &q->pg, &q->cmd, &q->shas);
        }
    }
    ensure_groups(q);
    loop_timer_in(l, &q->claim_timer, 1000 + loop_random(l) % 1000);
    loop_timer_in(l, &q->promote_timer, 0);
    LOG(LOG_INFO, "worker started", L_STR("backend", "redis"), L_STR("worker_id", w->id),
        L_STR("queues", cfg->queues), L_INT("concurrency", w->limit),
        L_INT("batch_size", cfg->batch_size), L_INT("lease_ms", cfg->lease_ms),
        L_INT("result_ttl_ms", cfg->result_ttl_ms));
    return 0;
}

static struct pg_pool *rqw_pg(struct worker *w)
{
    return rqw_of(w)->has_pg ? &rqw_of(w)->pg : NULL;
}

static struct redis_client *rqw_redis(struct worker *w)
{
    return &rqw_of(w)->cmd;
}

const struct queue_worker_ops redis_worker_ops = {
    .worker_size = sizeof(struct rqw),
    .run_size = sizeof(struct rrun),
    .can_hand_off = true,
    .unmet = rqw_unmet,
    .open = rqw_open,
    .fetch = rqw_fetch,
    .record = rqw_record,
    .flush = rqw_flush,
    .progress = rqw_progress,
    .heartbeat = rqw_heartbeat,
    .drain = rqw_drain,
    .close = rqw_close,
    .free = rqw_free,
    .pg = rqw_pg,
    .redis = rqw_redis,
};
