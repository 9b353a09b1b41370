/*
 * redis_files_sweep.c - deleting uploaded files whose Redis job is gone
 * (redis_files_sweep.h).
 */
#include "modules/queue/redis_files_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/server.h"
#include "modules/jobs/retention.h"

/* $1 the cursor, $2 the batch: the next distinct job ids files are
 * attached to, skipping the PostgreSQL backend's jobs (and any id that is
 * not a number: not one of ours). */
#define SQL_LIST                                                                                   \
    "SELECT DISTINCT f.job_id FROM trireme.job_files f WHERE f.job_id > $1"                        \
    " AND f.job_id ~ '^[0-9]{1,18}$' AND NOT EXISTS (SELECT 1 FROM trireme.jobs j"                 \
    " WHERE j.id = f.job_id::bigint) ORDER BY f.job_id LIMIT $2::int"
#define SQL_DELETE                                                                                 \
    "WITH d AS (DELETE FROM trireme.job_files WHERE job_id = ANY($1::text[]) RETURNING 1)"         \
    " SELECT count(*) FROM d"

static void list_next(struct redis_files_sweep *s);

static void pass_over(struct redis_files_sweep *s)
{
    s->cursor[0] = '\0';
    loop_timer_in(s->loop, &s->timer, s->loop->srv->cfg->retention_interval_ms);
}

/* After a batch: the next one at once if the listing was full. */
static void batch_over(struct redis_files_sweep *s)
{
    if (s->read >= s->loop->srv->cfg->retention_batch)
        loop_timer_in(s->loop, &s->timer, RETENTION_AGAIN_MS);
    else
        pass_over(s);
}

static void failed(struct redis_files_sweep *s, const char *step, const char *err)
{
    LOG(LOG_WARN, "upload sweep: failed; trying again next pass", L_STR("step", step),
        L_STR("error", err));
    pass_over(s);
}

static void on_deleted(struct pg_query *q, PGresult *res, const char *err)
{
    struct redis_files_sweep *s = container_of(q, struct redis_files_sweep, q);
    s->inflight = false;
    if (!s->running)
        return;
    if (err) {
        failed(s, "delete", err);
        return;
    }
    LOG(LOG_INFO, "retention: old rows deleted", L_STR("table", "job_files"),
        L_STR("status", "job gone"), L_INT("rows", atoll(PQgetvalue(res, 0, 0))),
        L_INT("jobs", s->gone.n));
    batch_over(s);
}

static void on_gone(struct rq_call *rq, redisReply *reply, const char *err)
{
    struct redis_files_sweep *s = container_of(rq, struct redis_files_sweep, rq);
    if (!s->running) {
        s->inflight = false;
        return;
    }
    if (!err && (!reply || reply->type != REDIS_REPLY_ARRAY))
        err = "unexpected answer";
    if (err) {
        s->inflight = false;
        failed(s, "redis", err);
        return;
    }
    pg_array_begin(&s->gone);
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            pg_array_text(&s->gone, reply->element[i]->str, reply->element[i]->len);
    if (!s->gone.n) {
        s->inflight = false;
        batch_over(s);
        return;
    }
    s->vals[0] = pg_array_end(&s->gone);
    s->q = (struct pg_query){
        .fn = on_deleted, .sql = SQL_DELETE, .nparams = 1, .values = s->vals, .retry_safe = true};
    pg_query_submit(s->pg, &s->q);
}

static void on_listed(struct pg_query *q, PGresult *res, const char *err)
{
    struct redis_files_sweep *s = container_of(q, struct redis_files_sweep, q);
    if (!s->running) {
        s->inflight = false;
        return;
    }
    if (err) {
        s->inflight = false;
        failed(s, "list", err);
        return;
    }
    int rows = PQntuples(res);
    s->read = (unsigned)rows;
    if (!rows) {
        s->inflight = false;
        pass_over(s);
        return;
    }
    snprintf(s->cursor, sizeof(s->cursor), "%s", PQgetvalue(res, rows - 1, 0));
    rq_args_addll(&s->rq.args, (long long)s->loop->srv->cfg->retention_orphans_ms);
    for (int i = 0; i < rows; i++)
        rq_args_add(&s->rq.args, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    rq_eval(s->redis, &s->rq, s->shas, RQ_FILES_GONE, on_gone);
}

static void list_next(struct redis_files_sweep *s)
{
    snprintf(s->batch, sizeof(s->batch), "%u", s->loop->srv->cfg->retention_batch);
    s->vals[0] = s->cursor;
    s->vals[1] = s->batch;
    s->q = (struct pg_query){
        .fn = on_listed, .sql = SQL_LIST, .nparams = 2, .values = s->vals, .retry_safe = true};
    s->inflight = true;
    pg_query_submit(s->pg, &s->q);
}

static void on_timer(struct loop *l, struct timer *t)
{
    struct redis_files_sweep *s = container_of(t, struct redis_files_sweep, timer);
    (void)l;
    if (s->running && !s->inflight)
        list_next(s);
}

void redis_files_sweep_start(struct redis_files_sweep *s, struct loop *l, struct pg_pool *pg,
                             struct redis_client *redis, const struct rq_shas *shas)
{
    const struct config *cfg = l->srv->cfg;
    if (s->running || !cfg->retention_orphans_ms)
        return;
    s->loop = l;
    s->pg = pg;
    s->redis = redis;
    s->shas = shas;
    s->cursor[0] = '\0';
    s->timer.fn = on_timer;
    s->running = true;
    /* spread, as retention's passes are */
    uint64_t first = cfg->retention_interval_ms;
    loop_timer_in(l, &s->timer, first / 2 + loop_random(l) % (first / 2 + 1));
}

void redis_files_sweep_stop(struct redis_files_sweep *s)
{
    if (!s->running)
        return;
    s->running = false;
    loop_timer_cancel(s->loop, &s->timer);
}

void redis_files_sweep_free(struct redis_files_sweep *s)
{
    redis_files_sweep_stop(s);
    rq_args_free(&s->rq.args);
    pg_array_free(&s->gone);
}
