/*
 * retention.h - deleting what is old: finished jobs (succeeded, dead,
 * cancelled) from trireme.jobs, and fired slots from trireme.schedule_fires,
 * after the periods --retention-* name.
 *
 * Every --retention-interval a pass walks the finished jobs of each status
 * in id order, --retention-batch rows per statement, one statement in
 * flight, and ends where the rows were created after the cutoff (nothing
 * past them can be old enough), so a pass reads only the rows old enough
 * to be looked at, by index, never the table. Fired slots: per schedule,
 * its oldest slots by primary key. One process deletes at a time: jobs under
 * a transaction-scoped advisory lock (any worker may run a pass; the others
 * skip theirs), fires on the elected beat only.
 */
#ifndef TRIREME_MODULES_JOBS_RETENTION_H
#define TRIREME_MODULES_JOBS_RETENTION_H

#include <stdbool.h>

#include "kernel/pg.h"
#include "kernel/timer.h"

#define RETENTION_AGAIN_MS 50 /* pause between the batches of a pass */

/* What a retention deletes: finished jobs (the PostgreSQL backend's worker),
 * fired slots (the elected beat), or the sql kind's once-rows (sql/007,
 * after --retention-succeeded; any worker with a database), or the files
 * of uploads that never became a job (sql/010, --retention-upload-orphans;
 * the worker of either backend, with a database). */
enum retention_table { RETENTION_JOBS, RETENTION_FIRES, RETENTION_EFFECTS, RETENTION_ORPHANS };

#define RETENTION_STATUSES 3 /* succeeded, dead, cancelled */

struct retention {
    struct loop *loop;
    struct pg_pool *pg;
    enum retention_table table;
    struct pg_query q;
    struct timer timer;
    uint64_t period_ms[RETENTION_STATUSES]; /* fires, effects: [0] */
    long long cursor;                       /* jobs: the last id read this pass */
    unsigned status;                        /* jobs: the status this pass is at */
    const char *vals[4];
    char arg[4][24];
    bool running, inflight;
};

/* Start deleting on this loop's pool; nothing when every period is 0. */
void retention_start(struct retention *r, struct loop *l, struct pg_pool *pg,
                     enum retention_table table);
/* Stop: no new batch. One in flight still answers (or is abandoned with
 * its pool); retention_busy() says whether it is. */
void retention_stop(struct retention *r);
static inline bool retention_busy(const struct retention *r)
{
    return r->inflight;
}

#endif
