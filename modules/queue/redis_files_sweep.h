/*
 * redis_files_sweep.h - on the Redis backend, deleting uploaded files whose
 * job is gone.
 *
 * Uploads live in PostgreSQL (sql/010_files.sql) whatever the queue
 * backend, so on Redis no trigger can delete a job's files with it: the
 * job is a hash that expires after --result-ttl (or never came to be,
 * when the enqueue after the files were attached failed). Every
 * --retention-interval, one worker loop walks the job ids files are
 * attached to, --retention-batch at a time in job_id order (the
 * (job_id, name) index), asks Redis which of them have no hash and were
 * reserved longer than --retention-upload-orphans ago (rq_lua_files_gone),
 * and deletes those files, chunks cascading. Ids that are jobs of
 * trireme.jobs are never looked at (a database shared with the
 * PostgreSQL backend keeps its files). Deleting is idempotent, so workers
 * running passes at the same time only repeat each other.
 */
#ifndef TRIREME_MODULES_QUEUE_REDIS_FILES_SWEEP_H
#define TRIREME_MODULES_QUEUE_REDIS_FILES_SWEEP_H

#include <stdbool.h>

#include "kernel/pg.h"
#include "kernel/pg_array.h"
#include "kernel/redis.h"
#include "kernel/timer.h"
#include "modules/rqueue/rqueue.h"

struct redis_files_sweep {
    struct loop *loop;
    struct pg_pool *pg;
    struct redis_client *redis;
    const struct rq_shas *shas;
    struct timer timer;
    struct pg_query q; /* the listing, then the delete */
    struct rq_call rq; /* which are gone */
    const char *vals[2];
    char cursor[24]; /* the last job id read this pass ("" at its start) */
    char batch[12];
    unsigned read; /* ids the last listing gave */
    struct pg_array gone;
    bool running, inflight;
};

/* Start the passes (nothing when --retention-upload-orphans is 0). */
void redis_files_sweep_start(struct redis_files_sweep *s, struct loop *l, struct pg_pool *pg,
                             struct redis_client *redis, const struct rq_shas *shas);
/* No new step; one in flight ends with its connection. */
void redis_files_sweep_stop(struct redis_files_sweep *s);
void redis_files_sweep_free(struct redis_files_sweep *s);

#endif
