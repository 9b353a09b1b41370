/*
 * retention.c - deleting old finished jobs and fired slots (retention.h).
 */
#include "modules/jobs/retention.h"

#include <stdio.h>
#include <stdlib.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/server.h"

/* Any constant works: it only has to be the same for every instance (and
 * differ from migrate.c's). */
#define RETENTION_LOCK_KEY         "7306029601412348418"
#define RETENTION_EFFECTS_LOCK_KEY "7306029601412348419"
#define RETENTION_ORPHANS_LOCK_KEY "7306029601412348420"

/* One batch of one status: the next `batch` rows by id after the cursor
 * (jobs_status_id), deleting those finished before the period. $1 status,
 * $2 period in ms, $3 cursor, $4 batch. Answers: lock taken, rows deleted,
 * the last id read, rows read, and whether a row read was created after the
 * cutoff: ids grow with creation and a job finishes after it is created, so
 * past such a row nothing can be old enough and the pass ends there. The
 * delete checks the row it locks again: a dead job retried meanwhile is not
 * finished any more, or not for long enough. */
static const char SQL_JOBS[] =
    "WITH lk AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(" RETENTION_LOCK_KEY ") AS got),"
    " win AS MATERIALIZED (SELECT id, finished_at, created_at FROM trireme.jobs"
    "   WHERE status = $1 AND id > $3::bigint AND (SELECT got FROM lk) ORDER BY id LIMIT $4::int),"
    " gone AS (DELETE FROM trireme.jobs j USING win WHERE j.id = win.id"
    "   AND win.finished_at < now() - $2::bigint * interval '1 millisecond' AND j.status = $1"
    "   AND j.finished_at < now() - $2::bigint * interval '1 millisecond' RETURNING 1)"
    " SELECT (SELECT got FROM lk), (SELECT count(*) FROM gone), (SELECT coalesce(max(id), 0) FROM "
    "win),"
    "   (SELECT count(*) FROM win),"
    "   (SELECT coalesce(bool_or(created_at >= now() - $2::bigint * interval '1 millisecond'), "
    "false)"
    "    FROM win)";

/* $1: the period in ms; $2: the batch. Per schedule, its oldest slots by
 * the primary key; its latest handled slot (last_fire) always stays. */
static const char SQL_FIRES[] =
    "WITH cand AS (SELECT s.id, o.slot FROM trireme.schedules s CROSS JOIN LATERAL"
    "   (SELECT f.slot FROM trireme.schedule_fires f WHERE f.schedule_id = s.id"
    "     AND f.slot < now() - $1::bigint * interval '1 millisecond' AND f.slot < s.last_fire"
    "     ORDER BY f.slot LIMIT $2::int) o LIMIT $2::int),"
    " gone AS (DELETE FROM trireme.schedule_fires f USING cand"
    "   WHERE f.schedule_id = cand.id AND f.slot = cand.slot RETURNING 1)"
    " SELECT true, (SELECT count(*) FROM gone)";

/* $1: the period in ms; $2: the batch. Oldest first by applied_at. */
static const char SQL_EFFECTS[] =
    "WITH lk AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(" RETENTION_EFFECTS_LOCK_KEY
    ") AS got),"
    " gone AS (DELETE FROM trireme.sql_effects e WHERE e.job_id IN (SELECT job_id"
    "   FROM trireme.sql_effects WHERE (SELECT got FROM lk)"
    "   AND applied_at < now() - $1::bigint * interval '1 millisecond'"
    "   ORDER BY applied_at LIMIT $2::int) RETURNING 1)"
    " SELECT (SELECT got FROM lk), (SELECT count(*) FROM gone)";

/* $1: the period in ms; $2: the batch. Upload files never attached to a
 * job (job_id NULL: sql/010), oldest first (job_files_orphans); their
 * chunks cascade. */
static const char SQL_ORPHANS[] =
    "WITH lk AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(" RETENTION_ORPHANS_LOCK_KEY
    ") AS got),"
    " gone AS (DELETE FROM trireme.job_files f WHERE f.id IN (SELECT id"
    "   FROM trireme.job_files WHERE (SELECT got FROM lk) AND job_id IS NULL"
    "   AND created_at < now() - $1::bigint * interval '1 millisecond'"
    "   ORDER BY created_at LIMIT $2::int) AND f.job_id IS NULL RETURNING 1)"
    " SELECT (SELECT got FROM lk), (SELECT count(*) FROM gone)";

static const char *const STATUS[RETENTION_STATUSES] = {"succeeded", "dead", "cancelled"};

/* The next batch of this pass, or false when the pass is over. */
static bool send_batch(struct retention *r)
{
    const struct config *cfg = r->loop->srv->cfg;
    if (r->table == RETENTION_JOBS) {
        while (r->status < RETENTION_STATUSES && !r->period_ms[r->status])
            r->status++;
        if (r->status == RETENTION_STATUSES)
            return false;
        r->vals[0] = STATUS[r->status];
        snprintf(r->arg[1], sizeof(r->arg[1]), "%llu", (unsigned long long)r->period_ms[r->status]);
        snprintf(r->arg[2], sizeof(r->arg[2]), "%lld", r->cursor);
        snprintf(r->arg[3], sizeof(r->arg[3]), "%u", cfg->retention_batch);
        for (int i = 1; i < 4; i++)
            r->vals[i] = r->arg[i];
    } else {
        snprintf(r->arg[0], sizeof(r->arg[0]), "%llu", (unsigned long long)r->period_ms[0]);
        snprintf(r->arg[1], sizeof(r->arg[1]), "%u", cfg->retention_batch);
        r->vals[0] = r->arg[0];
        r->vals[1] = r->arg[1];
    }
    r->inflight = true;
    pg_query_submit(r->pg, &r->q);
    return true;
}

static void next_pass(struct retention *r)
{
    r->status = 0;
    r->cursor = 0;
    loop_timer_in(r->loop, &r->timer, r->loop->srv->cfg->retention_interval_ms);
}

static void on_timer(struct loop *l, struct timer *t)
{
    struct retention *r = container_of(t, struct retention, timer);
    if (r->running && !r->inflight && !send_batch(r))
        next_pass(r);
}

/* After a batch of jobs: where the pass goes on, or false when it is over. */
static bool jobs_advance(struct retention *r, PGresult *res)
{
    long long last = atoll(PQgetvalue(res, 0, 2)), read = atoll(PQgetvalue(res, 0, 3));
    bool frontier = PQgetvalue(res, 0, 4)[0] == 't';
    if (PQgetvalue(res, 0, 0)[0] != 't')
        return false; /* another process is on it: its pass, not ours */
    if (frontier || read < (long long)r->loop->srv->cfg->retention_batch) {
        r->status++; /* this status is done: the next one, from the start */
        r->cursor = 0;
        return r->status < RETENTION_STATUSES;
    }
    r->cursor = last;
    return true;
}

static void on_batch(struct pg_query *q, PGresult *res, const char *err)
{
    struct retention *r = container_of(q, struct retention, q);
    r->inflight = false;
    if (!r->running)
        return;
    static const char *const table[] = {"jobs", "schedule_fires", "sql_effects", "job_files"};
    const char *what = table[r->table];
    if (err) {
        LOG(LOG_WARN, "retention: deleting old rows failed; trying again next pass",
            L_STR("table", what), L_STR("error", err));
        next_pass(r);
        return;
    }
    long long n = atoll(PQgetvalue(res, 0, 1));
    if (n)
        LOG(LOG_INFO, "retention: old rows deleted", L_STR("table", what),
            L_STR("status", r->table == RETENTION_JOBS ? STATUS[r->status] : "any"),
            L_INT("rows", n));
    bool more = r->table == RETENTION_JOBS ? jobs_advance(r, res)
                                           : n >= (long long)r->loop->srv->cfg->retention_batch;
    if (more)
        loop_timer_in(r->loop, &r->timer, RETENTION_AGAIN_MS);
    else
        next_pass(r);
}

void retention_start(struct retention *r, struct loop *l, struct pg_pool *pg,
                     enum retention_table table)
{
    const struct config *cfg = l->srv->cfg;
    if (r->running)
        return;
    if (table == RETENTION_JOBS) {
        r->period_ms[0] = cfg->retention_succeeded_ms;
        r->period_ms[1] = cfg->retention_dead_ms;
        r->period_ms[2] = cfg->retention_cancelled_ms;
    } else {
        r->period_ms[0] = table == RETENTION_FIRES     ? cfg->retention_fires_ms
                          : table == RETENTION_ORPHANS ? cfg->retention_orphans_ms
                                                       : cfg->retention_succeeded_ms;
    }
    if (!r->period_ms[0] && !r->period_ms[1] && !r->period_ms[2])
        return;
    r->loop = l;
    r->pg = pg;
    r->table = table;
    r->status = 0;
    r->cursor = 0;
    r->q = (struct pg_query){.fn = on_batch,
                             .sql = table == RETENTION_JOBS      ? SQL_JOBS
                                    : table == RETENTION_FIRES   ? SQL_FIRES
                                    : table == RETENTION_ORPHANS ? SQL_ORPHANS
                                                                 : SQL_EFFECTS,
                             .nparams = table == RETENTION_JOBS ? 4 : 2,
                             .values = r->vals,
                             .retry_safe = true};
    r->timer.fn = on_timer;
    r->running = true;
    /* The first pass after a while, spread: instances started together do
     * not all look at once. */
    uint64_t first = cfg->retention_interval_ms;
    loop_timer_in(l, &r->timer, first / 2 + loop_random(l) % (first / 2 + 1));
}

void retention_stop(struct retention *r)
{
    if (!r->running)
        return;
    r->running = false;
    loop_timer_cancel(r->loop, &r->timer);
}
