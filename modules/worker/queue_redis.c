/*
 * queue_redis.c - the worker role on --queue-backend=redis.
 *
 * Jobs arrive through a Stream per queue read by the consumer group
 * "trireme" (scripts and keys: modules/rqueue/rqueue_lua.c). Per loop:
 *
 *   blk   XREADGROUP ... BLOCK on a connection of its own (a blocking
 *         command holds its connection); one read in flight, the next sent
 *         as soon as the last answered while slots are free.
 *   cmd   every script: MARK (the starts of one loop turn) and COMPLETE
 *         (its outcomes; queue_redis_run.c), HEARTBEAT (XCLAIM to ourselves
 *         renews the leases of running entries), PROMOTE (due delayed and
 *         retried jobs onto their streams, on a timer), XAUTOCLAIM of
 *         entries idle past --lease (dead consumers) and START for those.
 *   sub   SUBSCRIBE trireme:cancel: a cancelled running job stops at once.
 *
 * Runs use the same job kinds as the PostgreSQL backend through
 * struct job_backend; time limits, retries with backoff, fencing (worker id,
 * attempt and entry are checked by the completion script) and the drain
 * (hand back what still runs shortly before --grace ends) work the same.
 */
#include "modules/worker/queue_redis.h"

static void on_started(struct rq_call *c, redisReply *reply, const char *err)
{
    struct start_call *s = (struct start_call *)c;
    struct rqw *w = s->w;
    w->starting -= s->n;
    w->starts_inflight--;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 6) {
        /* Unknown whether they started: the entries stay in this consumer's
         * pending list and come back after --lease through XAUTOCLAIM. */
        LOG(LOG_WARN, "worker: starting jobs failed; they return after their lease",
            L_STR("error", err ? err : "unexpected reply"), L_INT("jobs", s->n));
    } else {
        size_t started = reply->elements / 6;
        if (started)
            LOG(LOG_WARN, "lease expired, jobs taken over from a stopped worker",
                L_INT("count", started), L_STR("worker_id", w->id));
        unsigned k = 0;
        for (size_t i = 0; i < started; i++) {
            redisReply **f = reply->element + i * 6;
            long long id = f[0]->type == REDIS_REPLY_STRING ? atoll(f[0]->str) : f[0]->integer;
            while (k < s->n && s->v[k].id != id)
                k++;
            if (k == s->n)
                break; /* the script answers in request order; never here */
            rqw_start_one(w, &s->v[k++], f);
        }
    }
    free(s->v);
    free(s);
    rqw_want_fetch(w);
    rqw_maybe_finish_drain(w);
}

/* Entries of one stream (an XREADGROUP or XAUTOCLAIM answer) into a START
 * call. Returns how many were added. */
static unsigned add_entries(struct start_call *s, unsigned qix, const redisReply *entries)
{
    unsigned added = 0;
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
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
        rq_args_adds(&s->c.args, s->w->qname[qix]);
        rq_args_adds(&s->c.args, se->entry);
        rq_args_addll(&s->c.args, se->id);
        added++;
    }
    return added;
}

static struct start_call *start_new(struct rqw *w, size_t cap, bool claimed)
{
    struct start_call *s = calloc(1, sizeof(*s));
    s->w = w;
    s->claimed = claimed;
    s->v = calloc(cap ? cap : 1, sizeof(*s->v));
    s->c.data = w;
    rq_args_adds(&s->c.args, w->id);
    rq_args_adds(&s->c.args, w->ttl);
    rq_args_adds(&s->c.args, "0"); /* the count, set in start_send */
    return s;
}

static void start_send(struct rqw *w, struct start_call *s)
{
    if (!s->n) {
        rq_args_free(&s->c.args);
        free(s->v);
        free(s);
        return;
    }
    /* Replace the count placeholder (argument 2): rebuild the vector. */
    struct rq_args a = {0};
    const char **v = malloc((size_t)s->c.args.n * sizeof(*v));
    size_t *l = malloc((size_t)s->c.args.n * sizeof(*l));
    rq_args_vectors(&s->c.args, v, l);
    for (int i = 0; i < s->c.args.n; i++) {
        if (i == 2)
            rq_args_addll(&a, s->n);
        else
            rq_args_add(&a, v[i], l[i]);
    }
    free(v);
    free(l);
    rq_args_free(&s->c.args);
    s->c.args = a;
    w->starting += s->n;
    w->starts_inflight++;
    rq_eval(&w->cmd, &s->c, &w->shas, RQ_START, on_started);
}

/* --- reading ------------------------------------------------------------ */

static void ensure_groups(struct rqw *w);

static int queue_of(struct rqw *w, const char *key)
{
    for (unsigned i = 0; i < w->nq; i++)
        if (!strcmp(w->qkey[i], key))
            return (int)i;
    return -1;
}

static void on_read(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, read_cmd));
    w->reading = false;
    if (w->closed)
        return;
    if (err) {
        if (!strncmp(err, "NOGROUP", 7)) {
            /* The stream or its group is gone (a Redis without persistence
             * restarted, or a FLUSH): make them again. */
            LOG(LOG_WARN, "worker: consumer group missing, creating it again", L_STR("error", err));
            w->groups_ready = false;
            ensure_groups(w);
        } else if (!w->draining) {
            LOG(LOG_WARN, "worker: reading the job streams failed", L_STR("error", err));
            loop_timer_in(w->loop, &w->fetch_timer, FETCH_RETRY_MS);
        }
        rqw_maybe_finish_drain(w);
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
            int q = queue_of(w, s->element[0]->str);
            for (size_t k = 0; q >= 0 && k < s->element[1]->elements; k++)
                rqw_run_fresh(w, (unsigned)q, s->element[1]->element[k]);
        }
        /* Starts still running are recorded at the end of this turn. */
        loop_timer_in(w->loop, &w->flush_timer, 0);
    }
    rqw_want_fetch(w);
    rqw_maybe_finish_drain(w);
}

static void on_client_id(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, id_cmd));
    w->id_inflight = false;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER)
        w->blk_id = reply->integer;
}

void rqw_want_fetch(struct rqw *w)
{
    if (w->draining || w->closed || w->reading || !w->groups_ready)
        return;
    /* Leader mode: standbys stay connected but fetch nothing. */
    if (w->cfg->worker_mode_leader && !leader_is(w->loop->srv))
        return;
    unsigned busy = w->running + w->starting;
    unsigned free_slots = w->limit > busy ? w->limit - busy : 0;
    unsigned want = free_slots < w->cfg->batch_size ? free_slots : w->cfg->batch_size;
    unsigned chunk = w->limit / 4 ? w->limit / 4 : 1;
    if (want == 0 || (busy && want < chunk && want < w->cfg->batch_size))
        return;
    loop_timer_cancel(w->loop, &w->fetch_timer);
    if (!w->blk_id && !w->id_inflight) {
        w->id_inflight = true;
        w->id_cmd = (struct redis_cmd){.fn = on_client_id};
        redis_submitv(&w->blk, &w->id_cmd, 2, (const char *[]){"CLIENT", "ID"});
    }
    /* COUNT is per stream: share the free slots among the queues. */
    unsigned per = want / w->nq ? want / w->nq : 1;
    char count[16], block[24];
    snprintf(count, sizeof(count), "%u", per);
    snprintf(block, sizeof(block), "%llu", (unsigned long long)w->cfg->poll_interval_ms);
    const char *argv[8 + 2 * RQ_MAX_QUEUES];
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
    for (unsigned i = 0; i < w->nq; i++)
        argv[n++] = w->qkey[i];
    for (unsigned i = 0; i < w->nq; i++)
        argv[n++] = ">";
    w->reading = true;
    w->read_cmd =
        (struct redis_cmd){.fn = on_read, .timeout_ms = w->cfg->poll_interval_ms + BLOCK_EXTRA_MS};
    redis_submitv(&w->blk, &w->read_cmd, n, argv);
}

static void on_blk_state(struct redis_client *cl, bool up)
{
    struct rqw *w = cl->data;
    if (!up)
        w->blk_id = 0; /* a new connection has a new id */
}

static void on_group(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    if (err && strncmp(err, "BUSYGROUP", 9)) {
        LOG(LOG_WARN, "worker: creating a consumer group failed; trying again",
            L_STR("error", err));
        w->groups_pending = 0; /* the others answer into a new round */
        loop_timer_in(w->loop, &w->fetch_timer, FETCH_RETRY_MS * 4);
        return;
    }
    if (w->groups_pending && !--w->groups_pending) {
        w->groups_ready = true;
        LOG(LOG_INFO, "worker listening for new jobs", L_STR("backend", "redis"),
            L_STR("queues", w->cfg->queues), L_INT("loop", w->loop->id));
        rqw_want_fetch(w);
    }
}

/* XGROUP CREATE ... 0 MKSTREAM per queue: from the start of the stream, so
 * jobs enqueued before any worker existed are read too. */
static void ensure_groups(struct rqw *w)
{
    if (w->groups_pending || w->closed)
        return;
    w->groups_pending = w->nq;
    for (unsigned i = 0; i < w->nq; i++) {
        w->group_cmd[i] = (struct redis_cmd){.fn = on_group, .data = w, .retry_safe = true};
        const char *argv[] = {"XGROUP", "CREATE", w->qkey[i], RQ_GROUP, "0", "MKSTREAM"};
        redis_submitv(&w->cmd, &w->group_cmd[i], 6, argv);
    }
}

static void on_fetch_timer_or_groups(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, fetch_timer));
    if (!w->groups_ready)
        ensure_groups(w);
    else
        rqw_want_fetch(w);
}

/* --- dead consumers, delayed jobs, leases, cancellation ----------------- */

static void on_autoclaimed(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct claim_cmd *cc = (struct claim_cmd *)c;
    struct rqw *w = cc->w;
    w->claims_inflight--;
    if (err) {
        if (strncmp(err, "NOGROUP", 7))
            LOG(LOG_WARN, "worker: XAUTOCLAIM failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 && !w->draining) {
        const redisReply *entries = reply->element[1];
        struct start_call *s = start_new(w, entries->elements, true);
        add_entries(s, cc->qix, entries);
        start_send(w, s);
    }
    rqw_maybe_finish_drain(w);
}

static void on_consumers(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->consumers_inflight = false;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        LOG(LOG_INFO, "worker: forgot consumers of stopped workers",
            L_INT("count", reply->integer));
    rqw_maybe_finish_drain(w);
}

/* Stopped workers' consumers that own nothing any more. */
static void forget_consumers(struct rqw *w)
{
    if (w->consumers_inflight)
        return;
    memset(&w->consumers, 0, sizeof(w->consumers));
    w->consumers.data = w;
    rq_args_adds(&w->consumers.args, w->id);
    rq_args_addll(&w->consumers.args, (long long)(w->cfg->lease_ms * CONSUMER_IDLE_LEASES));
    for (unsigned i = 0; i < w->nq; i++)
        rq_args_adds(&w->consumers.args, w->qname[i]);
    w->consumers_inflight = true;
    rq_eval(&w->cmd, &w->consumers, &w->shas, RQ_CONSUMERS, on_consumers);
}

static void on_claim_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, claim_timer));
    uint64_t every = w->cfg->lease_ms / 2;
    loop_timer_in(l, t, every / 2 + loop_random(l) % (every / 2 + 1));
    if (w->draining || w->claims_inflight || !w->groups_ready)
        return;
    forget_consumers(w);
    if (w->cfg->worker_mode_leader && !leader_is(w->loop->srv))
        return;
    unsigned busy = w->running + w->starting;
    unsigned free_slots = w->limit > busy ? w->limit - busy : 0;
    if (!free_slots)
        return;
    unsigned per = free_slots / w->nq ? free_slots / w->nq : 1;
    if (per > w->cfg->batch_size)
        per = w->cfg->batch_size;
    char count[16];
    snprintf(count, sizeof(count), "%u", per);
    for (unsigned i = 0; i < w->nq; i++) {
        struct claim_cmd *cc = &w->claim[i];
        cc->w = w;
        cc->qix = i;
        cc->cmd = (struct redis_cmd){.fn = on_autoclaimed};
        const char *argv[] = {"XAUTOCLAIM", w->qkey[i], RQ_GROUP, w->id,
                              w->lease,     "0-0",      "COUNT",  count};
        w->claims_inflight++;
        redis_submitv(&w->cmd, &cc->cmd, 8, argv);
    }
}

static void on_promoted(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->promote_inflight = false;
    uint64_t next = w->cfg->promote_interval_ms;
    if (err) {
        LOG(LOG_WARN, "worker: promoting delayed jobs failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        long long due = reply->element[1]->integer;
        if (due >= 0 && (uint64_t)due < next)
            next = due ? (uint64_t)due : 1;
    }
    if (!w->draining && !w->closed)
        loop_timer_in(w->loop, &w->promote_timer, next);
    rqw_maybe_finish_drain(w);
}

static void on_promote_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, promote_timer));
    if (w->promote_inflight || w->draining)
        return;
    memset(&w->promote, 0, sizeof(w->promote));
    w->promote.data = w;
    rq_args_addll(&w->promote.args, PROMOTE_MAX);
    for (unsigned i = 0; i < w->nq; i++)
        rq_args_adds(&w->promote.args, w->qname[i]);
    w->promote_inflight = true;
    rq_eval(&w->cmd, &w->promote, &w->shas, RQ_PROMOTE, on_promoted);
}

static void on_heartbeat(struct rq_call *c, redisReply *reply, const char *err)
{
    struct rqw *w = c->data;
    w->hb_inflight = false;
    if (err) {
        LOG(LOG_WARN, "worker: lease renewal failed", L_STR("error", err));
    } else if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            long long id = atoll(reply->element[i]->str ? reply->element[i]->str : "0");
            for (struct job_run *r = w->runs; r; r = r->next)
                if (r->id == id && !r->lost && r->hb_gen == w->hb_gen) {
                    rqw_lose(w, r, "job lease lost (cancelled or taken over), stopping it", false);
                    break;
                }
        }
    }
    rqw_want_fetch(w);
    rqw_maybe_finish_drain(w);
}

static void on_hb_timer(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, hb_timer));
    loop_timer_in(l, t, w->cfg->lease_ms / 3);
    if (w->hb_inflight || !w->runs || w->handing_back)
        return;
    memset(&w->hb, 0, sizeof(w->hb));
    w->hb.data = w;
    rq_args_adds(&w->hb.args, w->id);
    rq_args_adds(&w->hb.args, "0");
    unsigned n = 0;
    w->hb_gen++;
    struct rq_args body = {0};
    for (struct job_run *r = w->runs; r; r = r->next) {
        if (r->lost || !r->recorded)
            continue;
        r->hb_gen = w->hb_gen;
        rq_args_addll(&body, r->id);
        rq_args_adds(&body, w->qname[r->queue_ix]);
        rq_args_adds(&body, r->ref);
        rq_args_addll(&body, r->attempt);
        n++;
    }
    if (!n) {
        rq_args_free(&w->hb.args);
        rq_args_free(&body);
        return;
    }
    rq_args_free(&w->hb.args);
    rq_args_adds(&w->hb.args, w->id);
    rq_args_addll(&w->hb.args, n);
    rq_args_append(&w->hb.args, &body);
    rq_args_free(&body);
    w->hb_inflight = true;
    rq_eval(&w->cmd, &w->hb, &w->shas, RQ_HEARTBEAT, on_heartbeat);
}

static void on_sub_push(struct redis_client *cl, redisReply *r)
{
    struct rqw *w = cl->data;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[0]->str ||
        strcmp(r->element[0]->str, "message") || !r->element[2]->str)
        return;
    long long id = atoll(r->element[2]->str);
    for (struct job_run *run = w->runs; run; run = run->next)
        if (run->id == id && !run->lost) {
            rqw_lose(w, run, "job cancelled while running, stopping it", true);
            rqw_want_fetch(w);
            return;
        }
}

static void on_subscribed(struct redis_cmd *c, redisReply *r, const char *err)
{
}

static void on_sub_state(struct redis_client *cl, bool up)
{
    struct rqw *w = cl->data;
    if (!up)
        return;
    w->subscribe = (struct redis_cmd){.fn = on_subscribed};
    redis_submitv(&w->sub, &w->subscribe, 2, (const char *[]){"SUBSCRIBE", RQ_PREFIX "cancel"});
}

/* --- drain -------------------------------------------------------------- */

static void close_worker(struct rqw *w)
{
    if (w->closed)
        return;
    w->closed = true;
    loop_timer_cancel(w->loop, &w->hb_timer);
    loop_timer_cancel(w->loop, &w->claim_timer);
    loop_timer_cancel(w->loop, &w->promote_timer);
    loop_timer_cancel(w->loop, &w->fetch_timer);
    loop_timer_cancel(w->loop, &w->drain_timer);
    loop_timer_cancel(w->loop, &w->flush_timer);
    redis_client_close(&w->blk);
    redis_client_close(&w->sub);
    redis_client_close(&w->cmd);
    if (w->has_pg)
        pg_pool_close(&w->pg);
    leader_worker_drained(w->loop->srv);
}

void rqw_maybe_finish_drain(struct rqw *w)
{
    if (!w->draining || w->closed)
        return;
    if (w->running || w->reading || w->starts_inflight || w->claims_inflight ||
        w->promote_inflight || w->hb_inflight || w->unblock_inflight || w->marks_inflight ||
        w->consumers_inflight)
        return;
    if (w->ndone) {
        w->handing_back = false;
        rqw_flush_done(w);
        return;
    }
    if (w->flushes_inflight)
        return;
    LOG(LOG_INFO, "worker drained", L_INT("loop", w->loop->id));
    close_worker(w);
}

static void on_drain_deadline(struct loop *l, struct timer *t)
{
    struct rqw *w = (struct rqw *)((char *)t - offsetof(struct rqw, drain_timer));
    if (w->closed || !w->running)
        return;
    /* Hand back what still runs, in one COMPLETE, while there is time to
     * say so: the next worker starts them now, not after --lease. */
    w->handing_back = true;
    unsigned n = 0;
    for (struct job_run *r = w->runs, *next; r; r = next) {
        next = r->next; /* job_request_stop may free r */
        if (r->lost)
            continue;
        rqw_record(w, r, "back", "", 0, 0);
        n++;
        r->lost = true;
        job_request_stop(r);
    }
    LOG(LOG_WARN, "grace period ending: unfinished jobs handed back to the queue",
        L_INT("jobs", n));
    w->running = 0; /* what the kinds still report is not written */
    w->handing_back = false;
    rqw_flush_done(w);
    rqw_maybe_finish_drain(w);
}

static void on_unblocked(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rqw *w = (struct rqw *)((char *)c - offsetof(struct rqw, unblock_cmd));
    w->unblock_inflight = false;
    rqw_maybe_finish_drain(w);
}

void queue_redis_stop(struct loop *l)
{
    struct rqw *w = l->modules[MODULE_WORKER];
    if (!w || w->draining)
        return;
    w->draining = true;
    loop_timer_cancel(l, &w->fetch_timer);
    loop_timer_cancel(l, &w->promote_timer);
    LOG(LOG_INFO, "worker draining: no new jobs, waiting for running ones",
        L_INT("running", w->running), L_INT("loop", l->id));
    /* A read blocked in Redis would hold the drain for up to its BLOCK
     * time: wake it (it answers nil, having delivered nothing). */
    if (w->reading && w->blk_id) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", w->blk_id);
        w->unblock_inflight = true;
        w->unblock_cmd = (struct redis_cmd){.fn = on_unblocked, .timeout_ms = 1000};
        redis_submitv(&w->cmd, &w->unblock_cmd, 3, (const char *[]){"CLIENT", "UNBLOCK", id});
    }
    uint64_t grace = w->cfg->grace_ms, margin = grace / 10 < 1000 ? grace / 10 : 1000;
    loop_timer_in(l, &w->drain_timer, grace - margin);
    rqw_maybe_finish_drain(w);
}

/* --- set-up ------------------------------------------------------------- */

/* 0, or -1 after a log line naming what is wrong with --queues. */
static int parse_queues(struct rqw *w, const char *csv)
{
    for (const char *p = csv; *p;) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t n = len;
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (n > JOB_NAME_MAX || (n && w->nq == RQ_MAX_QUEUES)) {
            LOG(LOG_ERROR,
                n > JOB_NAME_MAX ? "worker: a queue name in --queues is too long"
                                 : "worker: --queues names too many queues for "
                                   "the Redis backend",
                L_INT("max_name", JOB_NAME_MAX), L_INT("max_queues", RQ_MAX_QUEUES));
            return -1;
        }
        if (n) {
            memcpy(w->qname[w->nq], s, n);
            w->qname[w->nq][n] = 0;
            snprintf(w->qkey[w->nq], sizeof(w->qkey[0]), RQ_PREFIX "q:%s", w->qname[w->nq]);
            w->nq++;
        }
        p += len + (p[len] ? 1 : 0);
    }
    if (!w->nq) {
        LOG(LOG_ERROR, "worker: --queues names no queue", L_STR("queues", csv));
        return -1;
    }
    return 0;
}

int queue_redis_start(struct loop *l)
{
    struct server *s = l->srv;
    const struct config *cfg = s->cfg;
    struct rqw *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    l->modules[MODULE_WORKER] = w;
    w->loop = l;
    w->cfg = cfg;
    unsigned loops = (unsigned)s->nloops;
    w->limit = cfg->concurrency / loops + (cfg->concurrency % loops > (unsigned)l->id);
    if (!w->limit)
        w->limit = 1;
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%d:%d:%08llx", host, getpid(), l->id,
             (unsigned long long)(loop_random(l) & 0xffffffffu));
    snprintf(w->lease, sizeof(w->lease), "%llu", (unsigned long long)cfg->lease_ms);
    snprintf(w->ttl, sizeof(w->ttl), "%llu", (unsigned long long)cfg->result_ttl_ms);
    if (parse_queues(w, cfg->queues))
        return -1;
    rq_shas_init(&w->shas);
    w->flush_timer.fn = rqw_on_flush_timer;
    w->fetch_timer.fn = on_fetch_timer_or_groups;
    w->claim_timer.fn = on_claim_timer;
    w->promote_timer.fn = on_promote_timer;
    w->hb_timer.fn = on_hb_timer;
    w->drain_timer.fn = on_drain_deadline;
    w->has_limits = worker_kind_limits(s) != NULL;

    struct redis_url u;
    const char *err;
    redis_url_parse(cfg->redis_url, &u, &err); /* validated at config load */
    if (redis_client_init(&w->cmd, l, &u, REDIS_COMMANDS, "queue") < 0)
        return -1;
    w->blk.data = w;
    w->blk.on_state = on_blk_state;
    if (redis_client_init(&w->blk, l, &u, REDIS_COMMANDS, "queue-read") < 0)
        return -1;
    w->sub.data = w;
    w->sub.on_push = on_sub_push;
    w->sub.on_state = on_sub_state;
    if (redis_client_init(&w->sub, l, &u, REDIS_PUBSUB, "queue-cancel") < 0)
        return -1;
    if (*cfg->database_url) {
        struct pg_pool_config pc = {
            .conninfo = cfg->database_url, .size = cfg->pg_pool, .max_inflight = 64};
        if (pg_pool_init(&w->pg, l, &pc) < 0)
            return -1;
        w->has_pg = true;
    }
    ensure_groups(w);
    loop_timer_in(l, &w->hb_timer, cfg->lease_ms / 3);
    loop_timer_in(l, &w->claim_timer, 1000 + loop_random(l) % 1000);
    loop_timer_in(l, &w->promote_timer, 0);
    LOG(LOG_INFO, "worker started", L_STR("backend", "redis"), L_STR("worker_id", w->id),
        L_STR("queues", cfg->queues), L_INT("concurrency", w->limit),
        L_INT("batch_size", cfg->batch_size), L_INT("lease_ms", cfg->lease_ms),
        L_INT("result_ttl_ms", cfg->result_ttl_ms));
    return 0;
}

void queue_redis_wake(struct loop *l)
{
    struct rqw *w = l->modules[MODULE_WORKER];
    if (w && w->cfg->worker_mode_leader)
        rqw_want_fetch(w); /* leadership may have changed */
}

void queue_redis_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        struct rqw *w = s->loops[i].modules[MODULE_WORKER];
        if (!w)
            continue;
        while (w->runs)
            rqw_run_free(w, w->runs);
        redis_client_free(&w->blk);
        redis_client_free(&w->sub);
        redis_client_free(&w->cmd);
        if (w->has_pg)
            pg_pool_free(&w->pg);
        rq_args_free(&w->done);
        rq_args_free(&w->promote.args);
        rq_args_free(&w->hb.args);
        rq_args_free(&w->consumers.args);
        free(w);
        s->loops[i].modules[MODULE_WORKER] = NULL;
    }
}
