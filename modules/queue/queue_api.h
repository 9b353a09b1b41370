/*
 * queue_api.h - the API part of a queue backend: enqueue, get, list,
 * cancel and retry, asynchronous, on one loop's connections.
 *
 * The caller (the web role's /v1/jobs handlers) validates input before it
 * calls (modules/jobs/job_input.h), so a backend only stores and reads.
 * Every call answers exactly once through its fn with a struct
 * queue_answer, unless the caller forgot it first (its client went away).
 * The answer comes from a later completion, never from inside the call,
 * while the connections are open (the caller closes them only after its
 * last call was answered or forgotten).
 */
#ifndef TRIREME_MODULES_QUEUE_API_H
#define TRIREME_MODULES_QUEUE_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "kernel/metrics.h"

/* Every API statement (PostgreSQL) or command (Redis), enqueue included:
 * past it the call is answered 503. */
#define QUEUE_API_TIMEOUT_MS 10000

struct loop;
struct pg_pool;
struct redis_client;

/* One call's answer: a JSON body to send (status 200 or 201), or an error
 * (400 rejected, 404 not_found, 409 conflict, 500 internal, 503
 * unavailable) with a code and a message meant for the client. A store's
 * own error text is never in the message: it is in detail, for the log
 * (with the request's id), never sent. */
struct queue_answer {
    int status;
    const char *body; /* status < 300 */
    size_t len;
    const char *code, *message; /* status >= 300 */
    const char *detail;         /* NULL, or the store's error text (log only) */
};

struct queue_call;
typedef void (*queue_answer_fn)(struct queue_call *c, const struct queue_answer *a);

/* The head of every call in flight; a backend embeds it first in its own. */
struct queue_call {
    queue_answer_fn fn; /* NULL once forgotten */
    void *data;         /* the caller's */
};

/* The caller no longer wants the answer: fn will not run (the backend
 * still frees the call when its query ends). */
static inline void queue_call_forget(struct queue_call *c)
{
    c->fn = NULL;
}

/* Deliver an answer (backends use this; it skips forgotten calls). */
static inline void queue_call_answer(struct queue_call *c, const struct queue_answer *a)
{
    if (c->fn)
        c->fn(c, a);
}

/* A place in the change feed (changes): the cursor "<us>-<id>" parsed. */
struct queue_cursor {
    int64_t us, id;
};

/* GET /v1/jobs filters; NULL when not given. limit: 1..500. */
struct queue_list_query {
    const char *status, *queue, *kind, *cursor;
    int limit;
};

/* The per-loop connections the calls run on, owned by the caller. */
struct queue_api_conns {
    struct loop *loop;
    struct pg_pool *pg;         /* NULL: no DATABASE_URL */
    struct redis_client *redis; /* NULL: no REDIS_URL */
};

struct queue_api_ops {
    /* Per-loop state (statement batching, script names); NULL when the
     * connections this backend needs are missing (then *why says which,
     * for a 503). Freed by close(). */
    void *(*open)(const struct queue_api_conns *conns, const char **why);
    void (*close)(void *api);

    /* jobs: an array of jobs normalized by job_input_normalize (the call
     * takes the reference). Body: {"id","status","created"} for one
     * (array false) or {"jobs":[...]} (array true); 201 when any was
     * created, 200 when each was already there (unique_key). */
    struct queue_call *(*enqueue)(void *api, json_t *jobs, bool array, queue_answer_fn fn,
                                  void *data);
    /* Enqueue one job (jobs: a one-element array, as enqueue takes it)
     * with files stored before it, unattached, in trireme.job_files
     * (files: their ids as a PostgreSQL array literal): whatever the
     * backend, files live in PostgreSQL (sql/010_files.sql). The files
     * are attached to the job's id before any worker can see the job.
     * Body as enqueue's for one job; when a unique_key matched (created
     * false) no file is attached to that job. 503 without a database. */
    struct queue_call *(*enqueue_files)(void *api, json_t *jobs, const char *files,
                                        queue_answer_fn fn, void *data);
    /* Body: the job as GET /v1/jobs/{id} shows it; 404 when none. */
    struct queue_call *(*get)(void *api, int64_t id, queue_answer_fn fn, void *data);
    /* Body: {"jobs":[...]}: the jobs of ids (at most QUEUE_GET_MANY_MAX)
     * that exist, as get shows them, in no particular order. */
    struct queue_call *(*get_many)(void *api, const int64_t *ids, unsigned n, queue_answer_fn fn,
                                   void *data);
    /* Body: {"jobs":[...],"next_cursor":...}. */
    struct queue_call *(*list)(void *api, const struct queue_list_query *q, queue_answer_fn fn,
                               void *data);
    /* Body: the job after the change; 404 when none, 409 when its status
     * does not allow it. */
    struct queue_call *(*cancel)(void *api, int64_t id, queue_answer_fn fn, void *data);
    struct queue_call *(*retry)(void *api, int64_t id, queue_answer_fn fn, void *data);
    /* Body: {"queues":[{"queue", "<status>": n, ...}], "capped":[...]} by
     * queue_answer_counts: jobs by queue and status, each status counted
     * up to QUEUE_COUNT_CAP jobs, so a sample never reads a whole large
     * table; a status the backend cannot count cheaply is left out. */
    struct queue_call *(*counts)(void *api, queue_answer_fn fn, void *data);
    /* GET /v1/events: the jobs changed after cursor `after` (NULL: from the
     * store's present on), oldest change first. Body:
     * {"changes":[{"cursor":C,"job":<as get shows it now>},...],"now":C,
     * "from":C}. A cursor is "<a>-<b>", two integers ordered as the pair
     * (a, b), a in microseconds. A job changed twice may come twice, each
     * time as it is now. Past the at most `limit` changes after `after`,
     * the answer repeats the changes in the QUEUE_CHANGES_OVERLAP_MS before
     * `after` (at most `limit` more): a store whose writers stamp changes
     * before they commit can show one behind a cursor already answered,
     * and this is where the caller finds it; the caller drops the ones it
     * had. "now": the store's present (where a caller without `after`
     * starts). "from": the oldest cursor the feed answers from (a store
     * that records changes only while someone listens: changes before it
     * are not all there). A call keeps the feed recording for
     * QUEUE_CHANGES_LEASE_MS. NULL op: the backend keeps no feed. */
    struct queue_call *(*changes)(void *api, const struct queue_cursor *after, unsigned limit,
                                  queue_answer_fn fn, void *data);
};

/* --- api_answer.c: answers worded the same on every backend ----------- */

/* An enqueue's body, one job at a time: {"id","status","created"} for one
 * job, {"jobs":[...]} for an array; 201 when any was created, else 200.
 * Each job created counts in trireme_jobs_enqueued_total by its queue and
 * kind, read from jobs[first + i] (the normalized input; NULL: not
 * counted). */
struct queue_enqueued {
    FILE *f;
    char *out;
    size_t len;
    unsigned n;
    bool array, any_created;
    struct metrics *m;
    const json_t *jobs;
    size_t first;
};
void queue_enqueued_begin(struct queue_enqueued *e, bool array, struct metrics *m,
                          const json_t *jobs, size_t first);
void queue_enqueued_add(struct queue_enqueued *e, const char *id, bool created);
void queue_enqueued_answer(struct queue_enqueued *e, struct queue_call *c);

#define QUEUE_GET_MANY_MAX 4096 /* ids in one get_many */
/* How far behind the newest change a changes call looks again for
 * changes that became visible late (see changes). */
#define QUEUE_CHANGES_OVERLAP_MS 2000
/* A changes call keeps the store recording changes this long (then, with
 * nobody reading, writes record nothing again). */
#define QUEUE_CHANGES_LEASE_MS 10000
/* Recorded changes older than this are dropped by the next changes call:
 * as far back as a stream can resume (GET /v1/events). */
#define QUEUE_CHANGES_KEEP_S 600
/* Jobs counted per status (over all queues) by a counts call, at most. */
#define QUEUE_COUNT_CAP 100000
#define QUEUE_NSTATUS   6
/* pending running succeeded failed dead cancelled: a job's statuses. */
extern const char *const queue_statuses[QUEUE_NSTATUS];
/* One queue's jobs by status (queue_statuses' order); -1: not counted. */
struct queue_count {
    const char *queue;
    int64_t n[QUEUE_NSTATUS];
};
/* 200 with the counts body (see counts); capped: bit s set when status s
 * reached QUEUE_COUNT_CAP, so its counts are lower bounds. */
void queue_answer_counts(struct queue_call *c, const struct queue_count *q, unsigned n,
                         unsigned capped);

void queue_answer_json(struct queue_call *c, const char *body, size_t len); /* 200 */
void queue_answer_not_found(struct queue_call *c, const char *message);     /* 404 */
/* 409: the job's status allows no cancel (cancel) or no retry. */
void queue_answer_refused(struct queue_call *c, bool cancel);
/* How a store call failed, for the client: the store could not serve it
 * now (503 unavailable: retry later), it refused this call's values (400
 * rejected: retrying cannot help), or anything else (500 internal). */
enum queue_fault { QUEUE_UNAVAILABLE, QUEUE_REJECTED, QUEUE_INTERNAL };
/* store: "database" or "redis"; err: the store's text (logged, not sent). */
void queue_answer_failed(struct queue_call *c, enum queue_fault f, const char *store,
                         const char *err);

/* The backends' tables (modules/queue/pg_api.c, redis_api.c). */
extern const struct queue_api_ops pg_api_ops;
extern const struct queue_api_ops redis_api_ops;

#endif
