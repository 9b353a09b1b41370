/*
 * pg_beat.c - the beat part of the PostgreSQL queue backend: one statement
 * per batch, trireme.fire_schedules() (sql/005).
 *
 * It locks the batch's schedules, leaves out slots already in
 * trireme.schedule_fires, and inserts each remaining slot's job together
 * with its (schedule, slot) row, in one transaction: a slot has one job
 * however many beats fire it, and a batch whose answer was lost is fired
 * again safely. It reads each schedule's definition as it commits (a
 * disabled schedule fires nothing) and decides overlap from the status of
 * the schedule's last job.
 */
#include <stdlib.h>

#include "kernel/container_of.h"
#include "kernel/pg.h"
#include "kernel/xalloc.h"
#include "modules/queue/beat_fires.h"

struct pg_beat {
    struct pg_pool *pg;
    struct pg_query q;
    struct queue_beat_batch *b;
    struct beat_fires params;
};

static const enum beat_fires_col fire_cols[] = {BF_IDS, BF_SLOTS, BF_JITTER, BF_REASONS, BF_NEXT};

static void *pg_beat_open(const struct queue_beat_conns *conns)
{
    struct pg_beat *p = xcalloc(1, sizeof(*p));
    p->pg = conns->pg;
    return p;
}

/* The connection is the caller's: nothing of its own to close. */
static void pg_beat_close(void *qb)
{
}

static void pg_beat_free(void *qb)
{
    struct pg_beat *p = qb;
    beat_fires_free(&p->params);
    free(p);
}

static void on_fired(struct pg_query *q, PGresult *res, const char *err)
{
    struct pg_beat *p = container_of(q, struct pg_beat, q);
    struct queue_beat_batch *b = p->b;
    p->b = NULL;
    if (err) {
        b->done(b, err, "beat: firing due slots failed, retrying");
        return;
    }
    beat_fires_apply(b->v, b->n, res);
    for (unsigned i = 0; i < b->n; i++)
        b->v[i].created = b->v[i].outcome == QUEUE_BEAT_FIRED;
    b->done(b, NULL, NULL);
}

static void pg_beat_fire(void *qb, struct queue_beat_batch *b)
{
    struct pg_beat *p = qb;
    p->b = b;
    beat_fires_sort(b->v, b->n);
    beat_fires_params(&p->params, b->v, b->n, fire_cols, 5);
    p->q = (struct pg_query){.fn = on_fired,
                             .sql = SQL_BEAT_FIRE,
                             .nparams = 5,
                             .values = p->params.vals,
                             .timeout_ms = QUEUE_BEAT_TIMEOUT_MS};
    pg_query_submit(p->pg, &p->q);
}

/* Nothing of a batch waits here: its one statement answers by itself. */
static void pg_beat_cancel(void *qb)
{
}

const struct queue_beat_ops pg_beat_ops = {
    .wants_job = false,
    .open = pg_beat_open,
    .close = pg_beat_close,
    .free = pg_beat_free,
    .fire = pg_beat_fire,
    .cancel = pg_beat_cancel,
};
