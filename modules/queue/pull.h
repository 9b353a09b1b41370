/*
 * pull.h - the pull part of a queue backend: jobs of pull kinds, claimed by
 * external workers through POST /v1/claim and reported on through the job
 * callbacks (/v1/jobs/{id}/progress|heartbeat|complete|fail).
 *
 * The built-in worker never sees these jobs: each backend stores them apart
 * from the ones its worker claims (PostgreSQL: a `pull` column outside the
 * worker's partial dequeue index, sql/008_pull.sql), so its hot claim costs
 * exactly what it did.
 *
 * A claim leases each job it answers to one attempt and hands out a token
 * "<attempt>.<secret>": 122 random bits per attempt, of which the store
 * keeps only a hash beside the attempt number. Every callback is fenced by
 * both, as the built-in worker's writes are by its id and attempt: once the
 * lease expired and the reaper or another claim moved on, or the job
 * finished, the token no longer matches and the call changes nothing (409).
 *
 * The callbacks also finish jobs of http kinds whose endpoint answered 202:
 * the worker writes the hand-off (the row's worker_id becomes the hash of
 * the token it sent with the request, under the kind's lease), and from
 * then on such a job is fenced exactly as a pulled one; failed with a retry
 * or reaped, it goes back to the built-in worker's queue. A callback may
 * come before the hand-off is written: the backend then answers
 * "handoff_pending" and the caller asks again (api_callbacks.c).
 *
 * Calls answer once through their fn, as queue_api.h's do. A claim whose
 * caller forgot it (the client went away) hands its jobs straight back.
 */
#ifndef TRIREME_MODULES_QUEUE_PULL_H
#define TRIREME_MODULES_QUEUE_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "modules/queue/queue_api.h"

struct config;

#define PULL_CLAIM_DEFAULT   1    /* jobs per claim without "max" */
#define PULL_CLAIM_MAX       1000 /* the largest "max" */
#define PULL_LEASE_DEFAULT_S 30   /* "lease" (and a heartbeat's) when not given */
#define PULL_LEASE_MAX_S     3600 /* the longest "lease" */
#define PULL_WAIT_MAX_S      60   /* the longest long-poll "wait" */
#define PULL_NAMES_MAX       32   /* kinds, and queues, in one claim */
#define PULL_TOKEN_MAX       96   /* a token's length */
#define PULL_STEP_MAX        500  /* a progress step's length */
#define PULL_RECHECK_MS      1000 /* waiting claims: the shared check for due jobs */
#define PULL_OUTCOMES_MAX    1000 /* outcomes in one POST /v1/outcomes */
/* A callback for an attempt an http kind's endpoint answered 202 may come
 * before the worker wrote the hand-off: it is tried again every
 * PULL_HANDOFF_RECHECK_MS for at most PULL_HANDOFF_WAIT_MS before the 409. */
#define PULL_HANDOFF_RECHECK_MS 100
#define PULL_HANDOFF_WAIT_MS    5000

/* kinds and queues: JSON arrays of strings (the call keeps no reference). */
struct pull_claim_req {
    json_t *kinds, *queues;
    unsigned max;
    uint64_t lease_ms;
};

struct pull_call {
    struct queue_call head; /* first */
    unsigned njobs;         /* in a 200 answer: {"jobs":[...]} */
};

enum pull_report_what { PULL_PROGRESS, PULL_HEARTBEAT, PULL_COMPLETE, PULL_FAIL };

/* One callback; strings are copied by the call. */
struct pull_report {
    enum pull_report_what what;
    int64_t id;
    const char *token;
    int percent;         /* progress: 0..100, or -1 (keep) */
    const char *step;    /* progress: or NULL */
    uint64_t lease_ms;   /* heartbeat */
    const char *result;  /* complete: JSON text, or NULL */
    const char *error;   /* fail */
    bool retry;          /* fail: false ends the job (failed) */
    int64_t retry_in_ms; /* fail: -1 = the built-in backoff */
};

struct queue_pull_ops {
    /* Per-loop state; NULL with *why when the connections are missing.
     * wake(data) is called while watching, when jobs may be waiting. */
    void *(*open)(const struct queue_api_conns *conns, const struct config *cfg,
                  void (*wake)(void *data), void *data, const char **why);
    void (*stop)(void *st);  /* the web loop drains: close own connections */
    void (*close)(void *st); /* after the loop ended */
    void (*watch)(void *st, bool on);
    /* 200 {"jobs":[...]} (possibly empty: njobs 0) or an error. */
    struct pull_call *(*claim)(void *st, const struct pull_claim_req *req, queue_answer_fn fn,
                               void *data);
    /* 200 {"id","status"[,"lease_expires_at"]}; 409 stale token ("stale_token",
     * or "handoff_pending": this attempt still runs under the built-in
     * worker, its 202's hand-off not written yet); 404 no job. */
    struct queue_call *(*report)(void *st, const struct pull_report *rep, queue_answer_fn fn,
                                 void *data);
    /* Many PULL_COMPLETE/PULL_FAIL reports of distinct jobs at once, in one
     * statement or script: 200 {"outcomes":[...]}, one per report in order,
     * {"id","status"} or {"id","error"} with error "stale_token",
     * "handoff_pending" or "not_found"; an error status only when none was
     * applied. */
    struct queue_call *(*finish)(void *st, const struct pull_report *reps, unsigned n,
                                 queue_answer_fn fn, void *data);
};

extern const struct queue_pull_ops pg_pull_ops;
extern const struct queue_pull_ops redis_pull_ops;

#endif
