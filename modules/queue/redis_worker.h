/*
 * redis_worker.h - the worker part of the Redis queue backend, shared by
 * its two files: redis_worker.c (reading the streams, taking over dead
 * consumers' entries, delayed jobs, leases, cancellation, drain, set-up)
 * and redis_worker_run.c (deliveries into runs; writing starts and
 * outcomes in batches). Scripts and keys: modules/rqueue/rqueue_lua.c.
 */
#ifndef TRIREME_MODULES_QUEUE_REDIS_WORKER_H
#define TRIREME_MODULES_QUEUE_REDIS_WORKER_H

#include "kernel/pg.h"
#include "kernel/redis.h"
#include "modules/jobs/retention.h"
#include "modules/queue/redis_files_sweep.h"
#include "modules/rqueue/rqueue.h"
#include "modules/worker/core.h"

#define BLOCK_EXTRA_MS       5000 /* a blocked read's deadline beyond its BLOCK time */
#define FETCH_RETRY_MS       250  /* after a failed read, before the next */
#define PROMOTE_MAX          1000 /* delayed jobs moved per queue and call */
#define DONE_SWEEP_MAX       2000 /* expired results deleted per PROMOTE call */
#define CONSUMER_IDLE_LEASES 10   /* a consumer owning nothing, idle this many --lease: forgotten */
#define UNBLOCK_TIMEOUT_MS   1000 /* CLIENT UNBLOCK of the blocked read at drain */
#define COMPLETE_RETRY_MS    100  /* a COMPLETE Redis could not take now (LOADING...): sent again */

struct rqw;

/* A run on this backend: which stream entry delivered it. */
struct rrun {
    struct worker_run base; /* first */
    char ref[48];           /* the Stream entry id */
    bool recorded;          /* its start is written (MARK or START) */
};

static inline struct rrun *rrun_of(struct worker_run *r)
{
    return (struct rrun *)r;
}

struct start_entry {
    long long id;
    unsigned qix;
    char entry[48];
};

/* One START script: the deliveries it asked to start. */
struct start_call {
    struct rq_call c; /* first */
    struct rqw *q;
    struct start_entry *v;
    unsigned n;
};

struct claim_cmd {
    struct redis_cmd cmd; /* first */
    struct rqw *q;
    unsigned qix;
};

struct rqw {
    struct worker w; /* first */
    struct redis_client cmd, blk, sub;
    bool cmd_open, blk_open, sub_open;
    struct pg_pool pg; /* the sql kind's and uploads', when DATABASE_URL is set */
    bool has_pg;
    struct retention orphans;             /* loop 0 only: unattached upload files */
    struct redis_files_sweep files_sweep; /* loop 0 only: files whose job is gone */
    struct rq_shas shas;
    char lease[24], ttl[24];
    char qkey[WORKER_MAX_QUEUES][JOB_NAME_MAX + 16];
    unsigned starting; /* entries in START calls in flight */

    /* reading */
    struct redis_cmd group_cmd[WORKER_MAX_QUEUES];
    unsigned groups_pending;
    bool groups_ready;
    struct redis_cmd id_cmd, read_cmd;
    long long blk_id; /* CLIENT ID of the blocking connection, for CLIENT UNBLOCK */
    bool id_inflight, reading;
    struct timer fetch_timer;

    struct rq_call consumers; /* forgetting stopped workers' consumers */
    bool consumers_inflight;
    struct claim_cmd claim[WORKER_MAX_QUEUES];
    unsigned claims_inflight;
    struct timer claim_timer;

    struct rq_call promote;
    bool promote_inflight;
    struct timer promote_timer;

    struct rq_call hb;

    struct redis_cmd subscribe;
    struct redis_cmd unblock_cmd;

    /* outcomes waiting for the next COMPLETE: 7 arguments each */
    struct rq_args done;
    unsigned ndone;
};

static inline struct rqw *rqw_of(struct worker *w)
{
    return (struct rqw *)w;
}

/* redis_worker_run.c */
void rqw_flush(struct worker *w);
void rqw_record(struct worker *w, struct worker_run *r, const struct worker_outcome *o);
void rqw_progress(struct worker *w, struct worker_run *r, int percent, const char *step);
void rqw_start_one(struct rqw *q, const struct start_entry *se, redisReply **f);
void rqw_run_fresh(struct rqw *q, unsigned qix, const redisReply *e);

#endif
