/*
 * queue_redis.h - the worker on --queue-backend=redis, shared by its two
 * files: queue_redis.c (reading the streams, taking over dead consumers'
 * entries, delayed jobs, leases, cancellation, drain, set-up) and
 * queue_redis_run.c (runs: starting them with the job kinds, time limits,
 * kind limits, and writing their starts and outcomes in batches).
 */
#ifndef TRIREME_MODULES_WORKER_QUEUE_REDIS_H
#define TRIREME_MODULES_WORKER_QUEUE_REDIS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/jobs/job_input.h"
#include "modules/leader/leader.h"
#include "modules/limits/gcra.h"
#include "modules/registry.h"
#include "modules/rqueue/rqueue.h"
#include "modules/worker/kind_limits.h"
#include "modules/worker/run.h"
#include "modules/worker/worker.h"

#define RQ_MAX_QUEUES        32
#define RETRY_BASE_MS        1000
#define RETRY_MAX_MS         (3600 * 1000)
#define BLOCK_EXTRA_MS       5000 /* a blocked read's deadline beyond its BLOCK time */
#define FETCH_RETRY_MS       250  /* after a failed read, before the next */
#define PROMOTE_MAX          1000 /* delayed jobs moved per queue and call */
#define CONSUMER_IDLE_LEASES 10   /* a consumer owning nothing, idle this many --lease: forgotten */

struct rqw;

struct start_entry {
    long long id;
    unsigned qix;
    char entry[48];
};

/* One START script: the deliveries it asked to start. */
struct start_call {
    struct rq_call c; /* first */
    struct rqw *w;
    struct start_entry *v;
    unsigned n;
    bool claimed; /* from XAUTOCLAIM: a dead consumer's */
};

struct claim_cmd {
    struct redis_cmd cmd; /* first */
    struct rqw *w;
    unsigned qix;
};

struct rqw {
    struct loop *loop;
    const struct config *cfg;
    struct redis_client cmd, blk, sub;
    struct pg_pool pg; /* the sql kind's, when DATABASE_URL is set */
    bool has_pg;
    struct rq_shas shas;
    char id[128];
    char lease[24], ttl[24];
    char qname[RQ_MAX_QUEUES][JOB_NAME_MAX + 1];
    char qkey[RQ_MAX_QUEUES][JOB_NAME_MAX + 16];
    unsigned nq;
    unsigned limit, running, starting;
    struct job_run *runs;

    /* reading */
    struct redis_cmd group_cmd[RQ_MAX_QUEUES];
    unsigned groups_pending;
    bool groups_ready;
    struct redis_cmd id_cmd, read_cmd;
    long long blk_id; /* CLIENT ID of the blocking connection, for CLIENT UNBLOCK */
    bool id_inflight, reading;
    struct timer fetch_timer;
    unsigned starts_inflight;

    struct rq_call consumers; /* forgetting stopped workers' consumers */
    bool consumers_inflight;
    struct claim_cmd claim[RQ_MAX_QUEUES];
    unsigned claims_inflight;
    struct timer claim_timer;

    struct rq_call promote;
    bool promote_inflight;
    struct timer promote_timer;

    struct rq_call hb;
    bool hb_inflight;
    uint64_t hb_gen;
    struct timer hb_timer;

    struct redis_cmd subscribe;

    /* outcomes waiting for the next COMPLETE: 7 arguments each */
    struct rq_args done;
    unsigned ndone;
    struct timer flush_timer;
    unsigned flushes_inflight, marks_inflight;

    bool has_limits;
    bool draining, handing_back, closed;
    struct timer drain_timer;
    struct redis_cmd unblock_cmd;
    bool unblock_inflight;
};

/* One delivery to run: from a fresh entry's fields, or START's answer. */
struct delivery {
    long long id;
    unsigned qix;
    const char *entry;
    const char *kind, *payload, *timeout;
    size_t kind_len, payload_len, timeout_len;
    int attempt, max_attempts;
    bool recorded;
};

static inline struct rqw *rqw_of(struct job_run *r)
{
    return r->owner;
}

/* queue_redis.c */
void rqw_want_fetch(struct rqw *w);
void rqw_maybe_finish_drain(struct rqw *w);

/* queue_redis_run.c */
void rqw_on_flush_timer(struct loop *l, struct timer *t);
void rqw_flush_done(struct rqw *w);
void rqw_record(struct rqw *w, struct job_run *r, const char *how, const char *data, size_t len,
                uint64_t delay_ms);
void rqw_start_one(struct rqw *w, const struct start_entry *se, redisReply **f);
void rqw_run_fresh(struct rqw *w, unsigned qix, const redisReply *e);
void rqw_lose(struct rqw *w, struct job_run *r, const char *why, bool cancelled);
void rqw_free_slot(struct rqw *w, struct job_run *r);
void rqw_run_free(struct rqw *w, struct job_run *r);

#endif
