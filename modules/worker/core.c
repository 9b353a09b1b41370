/*
 * core.c - the worker core: runs, slots, limits, retries and the drain,
 * the same on every queue backend; see core.h.
 */
#include "modules/worker/core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/metrics.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/kinds/kind.h"
#include "modules/leader/leader.h"
#include "modules/limits/gcra.h"

static void maybe_finish_drain(struct worker *w);
static void hand_back_parked(struct worker *w);

/* --- the run pool -------------------------------------------------------- */

/* A finished run goes back to w->spare and is reused: the pool grows to the
 * most runs that were alive at once (about --concurrency) and then steady
 * work never allocates. It grows on demand rather than being made at start,
 * so an idle worker with a large --concurrency costs no memory for it. */

static struct worker_run *run_alloc(struct worker *w)
{
    if (!list_empty(&w->spare)) {
        struct list *n = w->spare.next;
        list_remove(n);
        struct worker_run *r = list_entry(n, struct worker_run, node);
        memset(r, 0, w->ops->run_size);
        return r;
    }
    return xcalloc(1, w->ops->run_size);
}

static void run_release(struct worker *w, struct worker_run *r)
{
    loop_timer_cancel(w->loop, &r->soft);
    loop_timer_cancel(w->loop, &r->hard);
    loop_timer_cancel(w->loop, &r->job.handler_timer);
    list_remove(&r->node);
    json_decref(r->job.payload);
    r->job.payload = NULL;
    r->released = true;
    list_append(&w->spare, &r->node);
}

static void free_slot(struct worker *w, struct worker_run *r)
{
    if (!r->slot_freed) {
        r->slot_freed = true;
        w->running--;
        metrics_gauge_add(w->loop->metrics, MG_SLOTS_BUSY, -1);
        /* Parked runs start at the end of the turn, never from inside
         * another run's finish (its caller may be walking w->runs). */
        if (w->nparked)
            loop_timer_in(w->loop, &w->unpark_timer, 0);
    }
}

static void unpark(struct worker *w, struct worker_run *r)
{
    list_remove(&r->wait);
    w->nparked--;
    r->parked = false;
}

/* --- outcomes ------------------------------------------------------------ */

void worker_flush_soon(struct worker *w)
{
    loop_timer_in(w->loop, &w->flush_timer, 0);
}

static void on_flush_timer(struct loop *l, struct timer *t)
{
    struct worker *w = container_of(t, struct worker, flush_timer);
    w->ops->flush(w);
}

static uint64_t retry_delay_ms(struct worker *w, int attempt)
{
    uint64_t d = WORKER_RETRY_BASE_MS;
    for (int i = 1; i < attempt && d < WORKER_RETRY_MAX_MS; i++)
        d *= 2;
    if (d > WORKER_RETRY_MAX_MS)
        d = WORKER_RETRY_MAX_MS;
    /* +-25% jitter, so the retries of a burst do not arrive as a burst. */
    return d * 3 / 4 + loop_random(w->loop) % (d / 2 + 1);
}

/* The run's series of the loop's metrics (kernel/metrics.h). */
static struct metrics_job *run_metrics(struct worker *w, struct worker_run *r)
{
    const char *q = r->job.queue ? r->job.queue : "", *k = r->job.kind->name;
    return metrics_job(w->loop->metrics, q, strlen(q), k, strlen(k));
}

static void count_outcome(struct worker *w, struct worker_run *r, enum worker_verdict v)
{
    if (v != OUTCOME_OK && v != OUTCOME_FAIL && v != OUTCOME_PERMANENT)
        return;
    struct metrics_job *m = run_metrics(w, r);
    bool again = v == OUTCOME_FAIL && r->job.attempt < r->job.max_attempts;
    metrics_add(&m->n[v == OUTCOME_OK ? MJ_SUCCEEDED : MJ_FAILED], 1);
    if (v != OUTCOME_OK)
        metrics_add(&m->n[again ? MJ_RETRIED : MJ_DEAD], 1);
    metrics_observe(&m->run, &metrics_buckets_job, w->loop->now_ns - r->started_ns);
}

static void record_secret(struct worker *w, struct worker_run *r, enum worker_verdict v,
                          json_t *result, const char *error, uint64_t delay_ms, const char *secret)
{
    count_outcome(w, r, v);
    struct worker_outcome o = {
        .verdict = v, .result = result, .error = error, .delay_ms = delay_ms, .secret = secret};
    if (v == OUTCOME_FAIL) { /* delay_ms: a floor the kind asked for (job_retry_after) */
        uint64_t backoff = retry_delay_ms(w, r->job.attempt);
        if (backoff > o.delay_ms)
            o.delay_ms = backoff;
    }
    w->ops->record(w, r, &o);
    if (!w->handing_back)
        worker_flush_soon(w);
}

static void record(struct worker *w, struct worker_run *r, enum worker_verdict v, json_t *result,
                   const char *error, uint64_t delay_ms)
{
    record_secret(w, r, v, result, error, delay_ms, NULL);
}

static void log_outcome(const struct worker_run *r, const char *error, bool permanent,
                        uint64_t now_ns)
{
    uint64_t ms = (now_ns - r->started_ns) / 1000000;
    const struct job_run *j = &r->job;
    if (!r->lost) {
        if (error)
            LOG(LOG_WARN, "job failed", L_INT("job_id", j->id), L_STR("kind", j->kind->name),
                L_INT("attempt", j->attempt), L_INT("max_attempts", j->max_attempts),
                L_STR("error", error),
                L_BOOL("will_retry", !permanent && j->attempt < j->max_attempts),
                L_INT("duration_ms", ms));
        else
            LOG(LOG_INFO, "job completed", L_INT("job_id", j->id), L_STR("kind", j->kind->name),
                L_INT("attempt", j->attempt), L_INT("duration_ms", ms));
    } else if (r->cancelled) {
        LOG(LOG_INFO, "job stopped after cancellation", L_INT("job_id", j->id),
            L_INT("duration_ms", ms));
    }
}

static void finish(struct job_run *j, json_t *result, const char *error, bool permanent,
                   uint64_t not_before_ms)
{
    struct worker_run *r = worker_run_of(j);
    struct worker *w = r->w;
    if (!r->lost)
        record(w, r, error ? (permanent ? OUTCOME_PERMANENT : OUTCOME_FAIL) : OUTCOME_OK, result,
               error, not_before_ms);
    log_outcome(r, error, permanent, w->loop->now_ns);
    json_decref(result);
    free_slot(w, r);
    run_release(w, r);
    worker_want(w);
    maybe_finish_drain(w);
}

void job_finish(struct job_run *j, json_t *result, const char *error, bool permanent)
{
    finish(j, result, error, permanent, 0);
}

void job_retry_after(struct job_run *j, const char *error, uint64_t not_before_ms)
{
    finish(j, NULL, error, false, not_before_ms);
}

bool job_can_hand_off(struct job_run *j)
{
    return worker_run_of(j)->w->ops->can_hand_off;
}

void job_hand_off(struct job_run *j, const char *secret, uint64_t lease_ms)
{
    struct worker_run *r = worker_run_of(j);
    struct worker *w = r->w;
    if (!r->lost) {
        record_secret(w, r, OUTCOME_HANDOFF, NULL, NULL, lease_ms, secret);
        LOG(LOG_INFO, "job handed off to its endpoint", L_INT("job_id", j->id),
            L_STR("kind", j->kind->name), L_INT("attempt", j->attempt), L_INT("lease_ms", lease_ms),
            L_INT("duration_ms", (w->loop->now_ns - r->started_ns) / 1000000));
    }
    free_slot(w, r);
    run_release(w, r);
    worker_want(w);
    maybe_finish_drain(w);
}

void job_progress(struct job_run *j, int percent, const char *step)
{
    struct worker_run *r = worker_run_of(j);
    if (r->lost)
        return;
    r->w->ops->progress(r->w, r, percent < 0 ? 0 : percent > 100 ? 100 : percent, step);
}

/* --- stopping ------------------------------------------------------------ */

static void request_stop(struct worker_run *r)
{
    if (r->stop_requested)
        return;
    r->stop_requested = true;
    if (r->job.kind->stop)
        r->job.kind->stop(&r->job); /* may finish and release r */
}

void worker_run_lose(struct worker *w, struct worker_run *r, const char *why, bool cancelled)
{
    LOG(LOG_WARN, why, L_INT("job_id", r->job.id));
    record(w, r, OUTCOME_DROP, NULL, NULL, 0);
    r->lost = true;
    r->cancelled = cancelled;
    if (r->parked) { /* never started: nothing to stop */
        unpark(w, r);
        job_finish(&r->job, NULL, NULL, false);
        return;
    }
    free_slot(w, r);
    request_stop(r);
}

struct worker_run *worker_run_find(struct worker *w, int64_t id)
{
    struct list *n;
    list_for_each(n, &w->runs)
    {
        struct worker_run *r = list_entry(n, struct worker_run, node);
        if (r->job.id == id && !r->lost)
            return r;
    }
    return NULL;
}

/* The soft limit (the job's timeout) asks the kind to stop and arms the
 * hard limit; the hard limit never waits for the kind's cooperation: the
 * attempt fails and its slot is taken back even if the kind blocks. */
static void on_soft_limit(struct loop *l, struct timer *t)
{
    struct worker_run *r = container_of(t, struct worker_run, soft);
    LOG(LOG_WARN, "job reached its time limit, asking it to stop", L_INT("job_id", r->job.id),
        L_INT("timeout_ms", r->job.timeout_ms));
    loop_timer_in(l, &r->hard, WORKER_HARD_EXTRA_MS);
    request_stop(r);
}

static void on_hard_limit(struct loop *l, struct timer *t)
{
    struct worker_run *r = container_of(t, struct worker_run, hard);
    struct worker *w = r->w;
    if (r->lost)
        return;
    char msg[128];
    snprintf(msg, sizeof(msg), "hard time limit: still running %d ms after its %llu ms limit",
             WORKER_HARD_EXTRA_MS, (unsigned long long)r->job.timeout_ms);
    LOG(LOG_ERROR, "job did not stop; failing the attempt and freeing its slot",
        L_INT("job_id", r->job.id), L_STR("kind", r->job.kind->name));
    record(w, r, OUTCOME_FAIL, NULL, msg, 0);
    r->lost = true; /* whatever it reports later is not written */
    free_slot(w, r);
    worker_want(w);
}

/* --- starting ------------------------------------------------------------ */

struct worker_run *worker_run_new(struct worker *w)
{
    struct worker_run *r = run_alloc(w);
    r->w = w;
    r->job.loop = w->loop;
    r->job.pg = w->ops->pg ? w->ops->pg(w) : NULL;
    r->started_ns = w->loop->now_ns;
    r->token =
        w->cfg->worker_mode_leader ? leader_election_token(w->loop->srv, ELECTION_WORKER) : 0;
    r->soft.fn = on_soft_limit;
    r->hard.fn = on_hard_limit;
    list_insert(&w->runs, &r->node);
    if (w->running >= w->limit) {
        r->parked = r->slot_freed = true; /* worker_run_start parks it */
        return r;
    }
    w->running++;
    metrics_gauge_add(w->loop->metrics, MG_SLOTS_BUSY, 1);
    return r;
}

static void run_kind(struct worker *w, struct worker_run *r)
{
    r->started_ns = w->loop->now_ns;
    struct metrics_job *m = run_metrics(w, r);
    metrics_add(&m->n[MJ_STARTED], 1);
    if (r->due_ns) /* parked time included: the wait is enqueue to start */
        metrics_observe(&m->wait, &metrics_buckets_wait,
                        r->started_ns > r->due_ns ? r->started_ns - r->due_ns : 0);
    loop_timer_in(w->loop, &r->soft, r->job.timeout_ms);
    r->job.kind->start(&r->job);
    /* r is not reused before this returns: runs are only made by fetches,
     * whose answers come in later turns. */
    w->last_instant = r->released;
}

/* --kind-limits: the shared GCRA script; over the limit the job goes back
 * to wait for its turn without spending an attempt. */
static void on_kind_verdict(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct worker_run *r = container_of(c, struct worker_run, limit_cmd);
    struct worker *w = r->w;
    worker_op_end(w);
    if (r->lost || w->draining) {
        if (!r->lost) {
            record(w, r, OUTCOME_BACK, NULL, NULL, 0);
            r->lost = true;
        }
        job_finish(&r->job, NULL, NULL, false);
        return;
    }
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->integer == 1) {
        if (err)
            LOG(LOG_WARN, "kind limit check failed; running the job anyway", L_STR("error", err),
                L_INT("job_id", r->job.id));
        run_kind(w, r);
        return;
    }
    long long wait = reply->element[1]->integer;
    LOG(LOG_DEBUG, "job deferred by its kind limit", L_INT("job_id", r->job.id),
        L_STR("kind", r->job.kind->name), L_INT("retry_in_ms", wait));
    record(w, r, OUTCOME_DEFER, NULL, NULL, (uint64_t)(wait < 1 ? 1 : wait));
    r->lost = true; /* nothing else is written for this attempt */
    job_finish(&r->job, NULL, NULL, false);
}

static void check_kind_limit(struct worker *w, struct worker_run *r, const struct kind_limit *kl)
{
    char bucket[128], interval[32], burst[32];
    snprintf(bucket, sizeof(bucket), "trireme:kindlimit:%s", kl->kind);
    gcra_args(kl->limit, kl->window_ms, interval, burst);
    const char *argv[] = {"EVAL", GCRA_SCRIPT, "1", bucket, interval, burst};
    r->limit_cmd = (struct redis_cmd){.fn = on_kind_verdict, .timeout_ms = WORKER_LIMIT_CHECK_MS};
    worker_op_begin(w);
    redis_submitv(w->limits_redis, &r->limit_cmd, 6, argv);
}

/* A run with a slot: its kind's limit checked (--kind-limits), then started. */
static void run_begin(struct worker *w, struct worker_run *r)
{
    const struct kind_limit *kl =
        w->limits && w->limits_redis ? kind_limit_find(w->limits, r->job.kind->name) : NULL;
    if (kl)
        check_kind_limit(w, r, kl);
    else
        run_kind(w, r);
}

void worker_run_start(struct worker *w, struct worker_run *r, const char *kind, size_t kind_len,
                      const char *payload, size_t payload_len)
{
    if (r->job.max_attempts < 1)
        r->job.max_attempts = 1;
    r->job.queue = w->queue[r->queue_ix < w->nqueues ? r->queue_ix : 0];
    r->job.kind = job_kind_find(kind ? kind : "", kind ? kind_len : 0);
    if (!r->job.timeout_ms)
        r->job.timeout_ms = r->job.kind && r->job.kind->timeout_ms ? r->job.kind->timeout_ms
                                                                   : w->cfg->job_timeout_ms;
    json_error_t je;
    r->job.payload = payload ? json_loadb(payload, payload_len, JSON_DECODE_ANY, &je) : NULL;
    if (!r->job.kind) {
        static const struct job_kind unknown = {.name = "unknown"};
        r->job.kind = &unknown;
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown job kind '%.*s' (not built into this worker)",
                 kind ? (int)(kind_len > 200 ? 200 : kind_len) : 0, kind ? kind : "");
        w->last_instant = true;
        job_finish(&r->job, NULL, msg, true);
        return;
    }
    if (!r->job.payload) {
        w->last_instant = true;
        job_finish(&r->job, NULL, "payload is not valid JSON", true);
        return;
    }
    if (r->parked) {
        list_append(&w->parked, &r->wait);
        w->nparked++;
        if (w->draining) /* a claim answered after the drain began */
            hand_back_parked(w);
        return;
    }
    run_begin(w, r);
}

/* End of a turn in which slots were freed: parked runs take them, oldest
 * first. */
static void on_unpark_timer(struct loop *l, struct timer *t)
{
    struct worker *w = container_of(t, struct worker, unpark_timer);
    while (w->nparked && w->running < w->limit && !w->draining) {
        struct worker_run *r = list_entry(w->parked.next, struct worker_run, wait);
        unpark(w, r);
        r->slot_freed = false;
        w->running++;
        metrics_gauge_add(w->loop->metrics, MG_SLOTS_BUSY, 1);
        run_begin(w, r);
    }
}

/* --- fetching ------------------------------------------------------------ */

unsigned worker_free_slots(const struct worker *w, unsigned pending)
{
    unsigned busy = w->running + pending;
    return w->limit > busy ? w->limit - busy : 0;
}

unsigned worker_fetch_size(const struct worker *w, unsigned pending)
{
    unsigned busy = w->running + pending;
    unsigned free_slots = worker_free_slots(w, pending);
    unsigned batch = w->cfg->batch_size;
    /* Jobs that finish within their start hold no slot (core.h): a whole
     * batch, and no more in flight, so at most a batch can end up parked. */
    if (w->last_instant && !w->running && !w->nparked)
        return pending < batch ? batch - pending : 0;
    unsigned want = free_slots < batch ? free_slots : batch;
    /* Refill in chunks, not a round trip per job, unless nothing runs. */
    unsigned chunk = w->limit / 4 ? w->limit / 4 : 1;
    if (want == 0 || (busy && want < chunk && want < batch))
        return 0;
    return want;
}

bool worker_may_fetch(const struct worker *w)
{
    if (w->draining || w->closed)
        return false;
    /* Leader mode: standbys stay hot (connected, listening) but fetch nothing. */
    return !w->cfg->worker_mode_leader || leader_election_is(w->loop->srv, ELECTION_WORKER);
}

void worker_want(struct worker *w)
{
    if (worker_may_fetch(w))
        w->ops->fetch(w);
}

/* --- drain --------------------------------------------------------------- */

void worker_op_begin(struct worker *w)
{
    w->inflight++;
}

void worker_op_end(struct worker *w)
{
    w->inflight--;
    maybe_finish_drain(w);
}

/* --- leases -------------------------------------------------------------- */

static void on_hb_timer(struct loop *l, struct timer *t)
{
    struct worker *w = container_of(t, struct worker, hb_timer);
    loop_timer_in(l, t, w->cfg->lease_ms / 3);
    if (w->hb_inflight || w->handing_back)
        return;
    w->hb_gen++;
    if (w->ops->heartbeat(w)) {
        w->hb_inflight = true;
        worker_op_begin(w);
    }
}

void worker_heartbeat_done(struct worker *w)
{
    w->hb_inflight = false;
    worker_want(w);
    worker_op_end(w);
}

static void close_worker(struct worker *w)
{
    if (w->closed)
        return;
    w->closed = true;
    loop_timer_cancel(w->loop, &w->drain_timer);
    loop_timer_cancel(w->loop, &w->flush_timer);
    loop_timer_cancel(w->loop, &w->unpark_timer);
    loop_timer_cancel(w->loop, &w->hb_timer);
    w->ops->close(w);
    if (w->has_own_redis)
        redis_client_close(&w->own_redis);
    if (w->loop->srv)
        leader_drained(w->loop->srv, ELECTION_WORKER);
}

static void maybe_finish_drain(struct worker *w)
{
    if (!w->draining || w->closed || w->handing_back || w->running || w->inflight)
        return;
    w->ops->flush(w); /* what is still buffered goes out first */
    if (w->inflight)
        return;
    LOG(LOG_INFO, "worker drained", L_INT("loop", w->loop->id));
    close_worker(w);
}

/* Shortly before --grace ends, what still runs goes straight back to the
 * queue (the next worker starts it now, not after a lease), while there is
 * time to say so. */
static void on_drain_deadline(struct loop *l, struct timer *t)
{
    struct worker *w = container_of(t, struct worker, drain_timer);
    if (w->closed || !w->running)
        return;
    w->handing_back = true;
    unsigned n = 0;
    struct list *node, *tmp;
    list_for_each_safe(node, tmp, &w->runs)
    {
        struct worker_run *r = list_entry(node, struct worker_run, node);
        if (r->lost)
            continue;
        record(w, r, OUTCOME_BACK, NULL, NULL, 0);
        r->lost = true;
        free_slot(w, r);
        n++;
    }
    LOG(LOG_WARN, "grace period ending: unfinished jobs handed back to the queue",
        L_INT("jobs", n));
    w->handing_back = false;
    w->ops->flush(w);
    /* Ask them to stop only now: a kind that stops at once finishes its run,
     * and what it reports is no longer written. */
    list_for_each_safe(node, tmp, &w->runs)
    {
        struct worker_run *r = list_entry(node, struct worker_run, node);
        if (!r->stop_requested)
            request_stop(r);
    }
    maybe_finish_drain(w);
}

/* Parked runs never started: at a drain they go straight back, all in one
 * write, for the next worker to start at once. */
static void hand_back_parked(struct worker *w)
{
    if (!w->nparked)
        return;
    LOG(LOG_INFO, "jobs waiting for a slot handed back to the queue", L_INT("jobs", w->nparked),
        L_INT("loop", w->loop->id));
    w->handing_back = true; /* one flush for all, after the loop */
    while (w->nparked) {
        struct worker_run *r = list_entry(w->parked.next, struct worker_run, wait);
        unpark(w, r);
        record(w, r, OUTCOME_BACK, NULL, NULL, 0);
        r->lost = true;
        job_finish(&r->job, NULL, NULL, false);
    }
    w->handing_back = false;
    w->ops->flush(w);
}

void worker_drain(struct worker *w)
{
    if (!w || w->draining)
        return;
    w->draining = true;
    retention_stop(&w->effects);
    LOG(LOG_INFO, "worker draining: no new jobs, waiting for running ones",
        L_INT("running", w->running), L_INT("loop", w->loop->id));
    w->ops->drain(w);
    hand_back_parked(w);
    uint64_t grace = w->cfg->grace_ms, margin = grace / 10 < 1000 ? grace / 10 : 1000;
    loop_timer_in(w->loop, &w->drain_timer, grace - margin);
    maybe_finish_drain(w);
}

/* --- set-up -------------------------------------------------------------- */

/* --queues into w->queue; 0, or -1 after a log line naming the problem. */
static int parse_queues(struct worker *w, const char *csv)
{
    for (const char *p = csv; *p;) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t n = len;
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (n > JOB_NAME_MAX || (n && w->nqueues == WORKER_MAX_QUEUES)) {
            LOG(LOG_ERROR,
                n > JOB_NAME_MAX ? "worker: a queue name in --queues is too long"
                                 : "worker: --queues names too many queues",
                L_INT("max_name", JOB_NAME_MAX), L_INT("max_queues", WORKER_MAX_QUEUES));
            return -1;
        }
        if (n) {
            memcpy(w->queue[w->nqueues], s, n);
            w->queue[w->nqueues][n] = 0;
            w->nqueues++;
        }
        p += len + (p[len] ? 1 : 0);
    }
    if (!w->nqueues) {
        LOG(LOG_ERROR, "worker: --queues names no queue", L_STR("queues", csv));
        return -1;
    }
    return 0;
}

int worker_open(struct loop *l, const struct queue_worker_ops *ops,
                const struct kind_limits *limits, struct worker **out)
{
    int rc;
    const struct config *cfg = l->srv->cfg;
    struct worker *w = xcalloc(1, ops->worker_size);
    w->loop = l;
    w->cfg = cfg;
    w->ops = ops;
    list_init(&w->runs);
    list_init(&w->spare);
    list_init(&w->parked);
    unsigned loops = (unsigned)l->srv->nloops;
    w->limit = cfg->concurrency / loops + (cfg->concurrency % loops > (unsigned)l->id);
    if (!w->limit)
        w->limit = 1;
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%d:%d:%08llx", host, getpid(), l->id,
             (unsigned long long)(loop_random(l) & 0xffffffffu));
    w->flush_timer.fn = on_flush_timer;
    w->drain_timer.fn = on_drain_deadline;
    w->unpark_timer.fn = on_unpark_timer;
    w->hb_timer.fn = on_hb_timer;
    w->limits = limits && limits->n ? limits : NULL;
    if (parse_queues(w, cfg->queues)) {
        worker_free(w);
        return -EINVAL;
    }
    if ((rc = ops->open(w)) < 0) {
        ops->free(w); /* open() leaves what it made for free() */
        worker_free(w);
        return rc;
    }
    w->opened = true;
    metrics_gauge_add(l->metrics, MG_SLOTS_LIMIT, w->limit);
    struct pg_pool *pg = ops->pg ? ops->pg(w) : NULL;
    if (pg && l->id == 0)
        retention_start(&w->effects, l, pg, RETENTION_EFFECTS);
    w->limits_redis = ops->redis ? ops->redis(w) : NULL;
    if (w->limits && !w->limits_redis) {
        struct redis_url u;
        const char *err;
        redis_url_parse(cfg->redis_url, &u, &err); /* validated at config load */
        if ((rc = redis_client_init(&w->own_redis, l, &u, REDIS_COMMANDS, "worker")) < 0) {
            worker_free(w);
            return rc;
        }
        w->has_own_redis = true;
        w->limits_redis = &w->own_redis;
    }
    if (ops->heartbeat)
        loop_timer_in(l, &w->hb_timer, cfg->lease_ms / 3);
    *out = w;
    return 0;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    retention_stop(&w->effects);
    while (!list_empty(&w->runs))
        run_release(w, list_entry(w->runs.next, struct worker_run, node));
    if (w->opened)
        w->ops->free(w);
    if (w->has_own_redis)
        redis_client_free(&w->own_redis);
    while (!list_empty(&w->spare)) {
        struct list *n = w->spare.next;
        list_remove(n);
        free(list_entry(n, struct worker_run, node));
    }
    free(w);
}
