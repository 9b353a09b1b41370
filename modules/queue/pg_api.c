/*
 * pg_api.c - the API part of the PostgreSQL queue backend: enqueue, get,
 * list, cancel and retry on one loop's pool (queue_api.h).
 *
 * Enqueues are coalesced: calls that arrive while this loop's previous
 * INSERT is committing wait and then go out together in one multi-row
 * INSERT (and the first one of a quiet moment goes at the end of its loop
 * turn, a 0 ms timer). Each call is answered only when its statement has
 * committed, so a 201 always means durable, yet N concurrent enqueues cost
 * about one commit, not N. Every other call is one query.
 *
 * Jobs are validated before they join a batch (job_input.c), so a shared
 * INSERT should never be refused for its values; if the database refuses
 * one anyway (a data or integrity error: say an operator's CHECK), each
 * of its calls is retried alone, so only the guilty one fails. Only that
 * failure path builds per-call statements. A call waits for an INSERT in
 * flight at most until its own deadline (QUEUE_API_TIMEOUT_MS after the first
 * call of its batch arrived), and every statement is fail_fast: while the
 * pool knows the database is down, calls are answered 503 at once.
 *
 * Calls come from a per-loop cache of finished ones (at most
 * PG_API_SPARE_CALLS kept), so a steady load allocates no call structs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/pg.h"
#include "kernel/pg_array.h"
#include "kernel/xalloc.h"
#include "modules/jobs/sql.h"
#include "modules/queue/queue.h"
#include "modules/queue/faults.h"
#include "modules/queue/queue_api.h"

#define PG_API_SPARE_CALLS 64  /* finished calls kept per loop for reuse */
#define PG_API_PARAM_MAX   256 /* one list filter's text, NUL included */

enum pg_call_kind {
    PG_ENQUEUE,
    PG_GET,
    PG_LIST,
    PG_CANCEL,
    PG_RETRY,
    PG_COUNTS,
    PG_GET_MANY,
    PG_ENQUEUE_FILES,
    PG_CHANGES,
};

/* Enqueue and attach in one statement (one transaction), so the job row
 * and its files commit together: $1 as SQL_ENQUEUE_BATCH takes it (one
 * job), $2 the files' ids. A unique_key that matched an existing job
 * (created false) attaches nothing. Columns as SQL_ENQUEUE_BATCH's. */
#define SQL_ENQUEUE_FILES                                                                          \
    "WITH e AS (SELECT ord, id, created FROM trireme.enqueue_batch($1::jsonb)),"                   \
    " a AS (UPDATE trireme.job_files f SET job_id = e.id::text,"                                   \
    " size = coalesce((SELECT sum(octet_length(c.data)) FROM trireme.job_file_chunks c"            \
    " WHERE c.file_id = f.id), 0)"                                                                 \
    " FROM e WHERE e.created AND f.id = ANY($2::bigint[]) AND f.job_id IS NULL RETURNING f.id)"    \
    " SELECT e.ord, e.id, e.created FROM e"

#define SQL_JOB_GET_MANY                                                                           \
    "SELECT " JOB_JSON "::text FROM trireme.jobs j WHERE j.id = ANY($1::bigint[])"

/* Jobs by queue and status, each status read through the (status, id)
 * index and cut at $1 rows: a sample costs at most QUEUE_COUNT_CAP rows per
 * status, whatever the table holds. Rows by queue. */
#define SQL_COUNTS                                                                                 \
    "SELECT queue, status, count(*) FROM ("                                                        \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'pending' LIMIT $1) UNION ALL "        \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'running' LIMIT $1) UNION ALL "        \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'succeeded' LIMIT $1) UNION ALL "      \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'failed' LIMIT $1) UNION ALL "         \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'dead' LIMIT $1) UNION ALL "           \
    "(SELECT queue, status FROM trireme.jobs WHERE status = 'cancelled' LIMIT $1)"                 \
    ") s GROUP BY queue, status ORDER BY queue"

/* The change feed (012_job_changes.sql: job_changes, written by a trigger
 * while events_listen's lease runs). $1 $2 the cursor (updated_at in
 * microseconds since the epoch, id; NULL: now), $3 the limit, $4 the
 * overlap in ms, $5 the lease in ms, $6 how long changes are kept, in s.
 * Each read extends the lease (a new listening period when it had lapsed:
 * `since`) and drops changes older than $6. The first part reads the
 * changes after the cursor; the second reads again the overlap before it,
 * because updated_at = now() is the writer's transaction start: a
 * transaction that commits after a poll can carry a stamp older than that
 * poll's cursor. Each change comes with its job as it is now. The last
 * row (ord 1) is the present and the period's start as cursors. */
#define PG_CURSOR_TS "coalesce(timestamptz 'epoch' + $1::bigint * interval '1 microsecond', now())"
#define PG_US(t)     "(extract(epoch FROM " t ") * 1000000)::bigint"
#define PG_CHANGE_COLS                                                                             \
    "SELECT 0 AS ord, " PG_US(                                                                     \
        "c.updated_at") " AS us, c.id, " JOB_JSON "::text AS job"                                  \
                        " FROM trireme.job_changes c JOIN trireme.jobs j ON j.id = c.id WHERE "
#define SQL_CHANGES                                                                                \
    "WITH l AS (INSERT INTO trireme.events_listen AS e (k, until, since)"                          \
    " VALUES (1, now() + $5::int * interval '1 ms', now()) ON CONFLICT (k) DO UPDATE"              \
    " SET until = EXCLUDED.until, since = CASE WHEN e.until < now() THEN now() ELSE e.since END"   \
    " RETURNING since),"                                                                           \
    " d AS (DELETE FROM trireme.job_changes WHERE updated_at < now() - $6::int * interval '1 s')"  \
    " (" PG_CHANGE_COLS "(c.updated_at, c.id) > (" PG_CURSOR_TS ", coalesce($2::bigint, 0))"       \
    " ORDER BY c.updated_at, c.id LIMIT $3::int) UNION ALL"                                        \
    " (" PG_CHANGE_COLS "$1::bigint IS NOT NULL AND c.updated_at > " PG_CURSOR_TS                  \
    " - $4::int * interval '1 ms' AND (c.updated_at, c.id) <= (" PG_CURSOR_TS ", $2::bigint)"      \
    " ORDER BY c.updated_at DESC, c.id DESC LIMIT $3::int) UNION ALL"                              \
    " SELECT 1, " PG_US("now()") ", " PG_US("l.since") ", NULL FROM l ORDER BY 1, 2, 3"

/* Enqueues bound for one INSERT: jobs holds the rows of every call on
 * calls, in order; a call's rows are [first, first + count). */
struct pg_batch {
    struct pg_query q;
    json_t *jobs; /* NULL: the batch is empty */
    char *text;
    const char *vals[1];
    struct list calls;
    uint64_t deadline_ns; /* first call + QUEUE_API_TIMEOUT_MS: none of its calls waits past it */
};

struct pg_api {
    struct loop *loop;
    struct pg_pool *pool;
    /* Two batches: one filling while the other's INSERT commits. */
    struct pg_batch batch[2];
    struct pg_batch *filling;
    bool inflight; /* the other batch's INSERT is committing */
    struct timer flush;
    struct list live;  /* one-query calls in flight */
    struct list spare; /* finished calls, at most PG_API_SPARE_CALLS */
    unsigned nspare;
    struct pg_array ids; /* get_many's literal, rebuilt per call */
};

struct pg_call {
    struct queue_call head; /* first */
    struct pg_api *api;
    struct list node; /* on its batch, on api->live or on api->spare */
    enum pg_call_kind kind;
    /* PG_ENQUEUE */
    unsigned first, count;
    bool array;
    char *text;   /* its own jobs, when retried alone or with files */
    json_t *mine; /* and as JSON (the metrics read their queue and kind) */
    char *files;  /* PG_ENQUEUE_FILES: the files' ids */
    /* one-query calls */
    struct pg_query q;
    int limit;
    const char *vals[6];
    char buf[6][PG_API_PARAM_MAX];
};

static struct pg_call *call_get(struct pg_api *a, enum pg_call_kind kind, queue_answer_fn fn,
                                void *data)
{
    struct pg_call *c;
    if (list_empty(&a->spare)) {
        c = xmalloc(sizeof(*c));
    } else {
        c = list_entry(a->spare.next, struct pg_call, node);
        list_remove(&c->node);
        a->nspare--;
    }
    c->head = (struct queue_call){.fn = fn, .data = data};
    c->api = a;
    c->kind = kind;
    c->text = NULL;
    c->mine = NULL;
    c->files = NULL;
    list_init(&c->node);
    return c;
}

static void call_put(struct pg_call *c)
{
    struct pg_api *a = c->api;
    list_remove(&c->node);
    free(c->text);
    c->text = NULL;
    json_decref(c->mine);
    c->mine = NULL;
    free(c->files);
    c->files = NULL;
    if (a->nspare >= PG_API_SPARE_CALLS) {
        free(c);
        return;
    }
    list_insert(&a->spare, &c->node);
    a->nspare++;
}

/* Milliseconds left until deadline_ns (at least 1: 0 means no timeout). */
static uint64_t ms_left(struct loop *l, uint64_t deadline_ns)
{
    return deadline_ns > l->now_ns + 1000000 ? (deadline_ns - l->now_ns) / 1000000 : 1;
}

/* --- enqueue ------------------------------------------------------------ */

static void batch_reset(struct pg_batch *b)
{
    json_decref(b->jobs);
    b->jobs = NULL;
    free(b->text);
    b->text = NULL;
}

/* One call's rows of the INSERT's result as its answer. */
static void answer_enqueued(struct pg_call *c, PGresult *res, const json_t *jobs)
{
    if (PQntuples(res) < (int)(c->first + c->count)) {
        queue_answer_failed(&c->head, QUEUE_INTERNAL, "database", "short enqueue result");
        return;
    }
    for (unsigned k = 0; k < c->count; k++)
        if (PQgetisnull(res, (int)(c->first + k), 1)) {
            /* never valid JSON with an empty id: say what happened */
            queue_answer_failed(&c->head, QUEUE_INTERNAL, "database", "enqueue returned no id");
            return;
        }
    struct queue_enqueued e;
    queue_enqueued_begin(&e, c->array, c->api->loop->metrics, jobs, c->first);
    for (unsigned k = 0; k < c->count; k++) {
        int row = (int)(c->first + k);
        queue_enqueued_add(&e, PQgetvalue(res, row, 1), PQgetvalue(res, row, 2)[0] == 't');
    }
    queue_enqueued_answer(&e, &c->head);
}

static void on_enqueued_alone(struct pg_query *q, PGresult *res, const char *err)
{
    struct pg_call *c = container_of(q, struct pg_call, q);
    if (err)
        queue_answer_failed(&c->head, queue_fault_pg(res), "database", err);
    else if (c->head.fn)
        answer_enqueued(c, res, c->mine);
    call_put(c);
}

/* c's jobs (rows of b) as a statement of their own. */
static void retry_alone(struct pg_api *a, struct pg_batch *b, struct pg_call *c)
{
    list_remove(&c->node);
    list_insert(&a->live, &c->node);
    json_t *mine = json_array();
    for (unsigned k = 0; k < c->count; k++)
        json_array_append(mine, json_array_get(b->jobs, c->first + k));
    c->text = json_dumps(mine, JSON_COMPACT);
    c->mine = mine;
    c->first = 0;
    c->vals[0] = c->text;
    c->q = (struct pg_query){
        .fn = on_enqueued_alone,
        .sql = SQL_ENQUEUE_BATCH,
        .nparams = 1,
        .values = c->vals,
        .timeout_ms = ms_left(a->loop, b->deadline_ns),
        .fail_fast = true,
    };
    pg_query_submit(a->pool, &c->q);
}

static void on_enqueued(struct pg_query *q, PGresult *res, const char *err)
{
    struct pg_batch *b = container_of(q, struct pg_batch, q);
    struct pg_api *a = q->data;
    a->inflight = false;
    if (a->filling->jobs) /* what arrived during this commit goes out now, together */
        loop_timer_in(a->loop, &a->flush, 0);
    bool shared = b->calls.next->next != &b->calls;
    bool alone = err && shared && pg_fault_of(res) == PG_FAULT_REJECTED;
    if (alone)
        LOG(LOG_WARN, "database refused a shared enqueue; each request is retried alone",
            L_STR("error", err), L_INT("jobs", (long long)json_array_size(b->jobs)));
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->calls)
    {
        struct pg_call *c = list_entry(pos, struct pg_call, node);
        if (alone && c->head.fn) {
            retry_alone(a, b, c);
            continue;
        }
        if (err)
            queue_answer_failed(&c->head, queue_fault_pg(res), "database", err);
        else if (c->head.fn)
            answer_enqueued(c, res, b->jobs);
        call_put(c);
    }
    batch_reset(b);
}

/* b waited for the INSERT in flight past its first call's deadline. */
static void expire_batch(struct pg_batch *b)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->calls)
    {
        struct pg_call *c = list_entry(pos, struct pg_call, node);
        queue_answer_failed(&c->head, QUEUE_UNAVAILABLE, "database",
                            "timed out behind the enqueue in flight");
        call_put(c);
    }
    batch_reset(b);
}

static void flush_batch(struct loop *l, struct timer *t)
{
    struct pg_api *a = container_of(t, struct pg_api, flush);
    struct pg_batch *b = a->filling;
    /* One INSERT in flight per loop: calls arriving meanwhile wait for it
     * and then share the next one (group commit sized by the load), but
     * never past their deadline. */
    if (!b->jobs)
        return;
    if (a->inflight) {
        if (l->now_ns >= b->deadline_ns)
            expire_batch(b);
        else
            loop_timer_in(l, &a->flush, ms_left(l, b->deadline_ns));
        return;
    }
    a->filling = b == &a->batch[0] ? &a->batch[1] : &a->batch[0];
    a->inflight = true;
    b->text = json_dumps(b->jobs, JSON_COMPACT);
    b->vals[0] = b->text;
    b->q = (struct pg_query){
        .fn = on_enqueued,
        .data = a,
        .sql = SQL_ENQUEUE_BATCH,
        .nparams = 1,
        .values = b->vals,
        .timeout_ms = ms_left(l, b->deadline_ns),
        .fail_fast = true,
    };
    pg_query_submit(a->pool, &b->q);
}

static struct queue_call *pg_enqueue(void *api, json_t *jobs, bool array, queue_answer_fn fn,
                                     void *data)
{
    struct pg_api *a = api;
    struct pg_batch *b = a->filling;
    if (!b->jobs) {
        b->jobs = json_array();
        b->deadline_ns = a->loop->now_ns + QUEUE_API_TIMEOUT_MS * 1000000ull;
        loop_timer_in(a->loop, &a->flush, 0);
    }
    struct pg_call *c = call_get(a, PG_ENQUEUE, fn, data);
    c->first = (unsigned)json_array_size(b->jobs);
    c->count = (unsigned)json_array_size(jobs);
    c->array = array;
    list_append(&b->calls, &c->node);
    json_array_extend(b->jobs, jobs);
    json_decref(jobs);
    return &c->head;
}

/* --- one-query calls ------------------------------------------------------ */

static void answer_list(struct pg_call *c, PGresult *res)
{
    int rows = PQntuples(res);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fputs("{\"jobs\":[", f);
    for (int i = 0; i < rows; i++)
        fprintf(f, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    if (c->limit < 0)
        fputs("]}", f);
    else if (rows == c->limit && rows > 0)
        fprintf(f, "],\"next_cursor\":\"%s\"}", PQgetvalue(res, rows - 1, 1));
    else
        fputs("],\"next_cursor\":null}", f);
    fclose(f);
    queue_answer_json(&c->head, out, len);
    free(out);
}

static void answer_counts(struct pg_call *c, PGresult *res)
{
    int rows = PQntuples(res);
    struct queue_count *qs = xcalloc((size_t)rows + 1, sizeof(*qs));
    unsigned n = 0;
    int64_t total[QUEUE_NSTATUS] = {0};
    for (int i = 0; i < rows; i++) {
        const char *queue = PQgetvalue(res, i, 0);
        if (!n || strcmp(qs[n - 1].queue, queue)) {
            qs[n].queue = queue;
            memset(qs[n].n, 0, sizeof(qs[n].n));
            n++;
        }
        for (unsigned s = 0; s < QUEUE_NSTATUS; s++)
            if (!strcmp(PQgetvalue(res, i, 1), queue_statuses[s])) {
                qs[n - 1].n[s] = strtoll(PQgetvalue(res, i, 2), NULL, 10);
                total[s] += qs[n - 1].n[s];
            }
    }
    unsigned capped = 0;
    for (unsigned s = 0; s < QUEUE_NSTATUS; s++)
        if (total[s] >= QUEUE_COUNT_CAP)
            capped |= 1u << s;
    queue_answer_counts(&c->head, qs, n, capped);
    free(qs);
}

/* {"changes":[{"cursor","job"}...],"now","from"}: rows ord 0, then the
 * present and the listening period's start. */
static void answer_changes(struct pg_call *c, PGresult *res)
{
    int rows = PQntuples(res);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fputs("{\"changes\":[", f);
    const char *now = "0", *since = "0";
    for (int i = 0, n = 0; i < rows; i++) {
        if (PQgetvalue(res, i, 0)[0] == '1') {
            now = PQgetvalue(res, i, 1);
            since = PQgetvalue(res, i, 2);
            continue;
        }
        fprintf(f, "%s{\"cursor\":\"%s-%s\",\"job\":%s}", n++ ? "," : "", PQgetvalue(res, i, 1),
                PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
    }
    fprintf(f, "],\"now\":\"%s-0\",\"from\":\"%s-0\"}", now, since);
    fclose(f);
    queue_answer_json(&c->head, out, len);
    free(out);
}

static void on_done(struct pg_query *q, PGresult *res, const char *err)
{
    struct pg_call *c = container_of(q, struct pg_call, q);
    bool changes = c->kind == PG_CANCEL || c->kind == PG_RETRY;
    if (!c->head.fn) {
        /* forgotten: nothing to answer */
    } else if (err) {
        queue_answer_failed(&c->head, queue_fault_pg(res), "database", err);
    } else if (c->kind == PG_LIST) {
        answer_list(c, res);
    } else if (c->kind == PG_COUNTS) {
        answer_counts(c, res);
    } else if (c->kind == PG_CHANGES) {
        answer_changes(c, res);
    } else if (c->kind == PG_GET_MANY) {
        c->limit = -1; /* no cursor */
        answer_list(c, res);
    } else if (c->kind == PG_ENQUEUE_FILES) {
        answer_enqueued(c, res, c->mine);
    } else if (PQntuples(res) == 0) {
        queue_answer_not_found(&c->head, "no job with this id");
    } else if (changes && PQgetvalue(res, 0, 1)[0] != 't') {
        queue_answer_refused(&c->head, c->kind == PG_CANCEL);
    } else {
        const char *j = PQgetvalue(res, 0, 0);
        queue_answer_json(&c->head, j, strlen(j));
    }
    call_put(c);
}

static struct pg_call *query_new(struct pg_api *a, enum pg_call_kind kind, const char *sql,
                                 int nparams, queue_answer_fn fn, void *data)
{
    struct pg_call *c = call_get(a, kind, fn, data);
    c->q = (struct pg_query){
        .fn = on_done,
        .sql = sql,
        .nparams = nparams,
        .values = c->vals,
        .timeout_ms = QUEUE_API_TIMEOUT_MS,
        .retry_safe = kind == PG_GET || kind == PG_LIST || kind == PG_COUNTS ||
                      kind == PG_GET_MANY || kind == PG_CHANGES,
        .fail_fast = true,
    };
    list_insert(&a->live, &c->node);
    return c;
}

static struct queue_call *one_job(void *api, enum pg_call_kind kind, const char *sql, int64_t id,
                                  queue_answer_fn fn, void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, kind, sql, 1, fn, data);
    snprintf(c->buf[0], sizeof(c->buf[0]), "%lld", (long long)id);
    c->vals[0] = c->buf[0];
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

static struct queue_call *pg_get(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    return one_job(api, PG_GET, SQL_JOB_GET, id, fn, data);
}

static struct queue_call *pg_cancel(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    return one_job(api, PG_CANCEL, SQL_JOB_CANCEL, id, fn, data);
}

static struct queue_call *pg_retry(void *api, int64_t id, queue_answer_fn fn, void *data)
{
    return one_job(api, PG_RETRY, SQL_JOB_RETRY, id, fn, data);
}

static struct queue_call *pg_list(void *api, const struct queue_list_query *lq, queue_answer_fn fn,
                                  void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, PG_LIST, SQL_JOB_LIST, 5, fn, data);
    c->limit = lq->limit;
    /* $1 status, $2 queue, $3 kind, $4 limit, $5 cursor; NULL: any */
    const char *const given[5] = {lq->status, lq->queue, lq->kind, NULL, lq->cursor};
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            snprintf(c->buf[i], sizeof(c->buf[i]), "%d", lq->limit);
        else if (given[i])
            snprintf(c->buf[i], sizeof(c->buf[i]), "%s", given[i]);
        c->vals[i] = i == 3 || given[i] ? c->buf[i] : NULL;
    }
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

static struct queue_call *pg_get_many(void *api, const int64_t *ids, unsigned n, queue_answer_fn fn,
                                      void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, PG_GET_MANY, SQL_JOB_GET_MANY, 1, fn, data);
    pg_array_begin(&a->ids);
    for (unsigned i = 0; i < n; i++)
        pg_array_int(&a->ids, ids[i]);
    c->text = xstrdup(pg_array_end(&a->ids));
    c->vals[0] = c->text;
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

static struct queue_call *pg_enqueue_files(void *api, json_t *jobs, const char *files,
                                           queue_answer_fn fn, void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, PG_ENQUEUE_FILES, SQL_ENQUEUE_FILES, 2, fn, data);
    c->first = 0;
    c->count = 1;
    c->array = false;
    c->mine = jobs;
    c->text = json_dumps(jobs, JSON_COMPACT);
    c->files = xstrdup(files);
    c->vals[0] = c->text;
    c->vals[1] = c->files;
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

static struct queue_call *pg_counts(void *api, queue_answer_fn fn, void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, PG_COUNTS, SQL_COUNTS, 1, fn, data);
    snprintf(c->buf[0], sizeof(c->buf[0]), "%d", QUEUE_COUNT_CAP);
    c->vals[0] = c->buf[0];
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

static struct queue_call *pg_changes(void *api, const struct queue_cursor *after, unsigned limit,
                                     queue_answer_fn fn, void *data)
{
    struct pg_api *a = api;
    struct pg_call *c = query_new(a, PG_CHANGES, SQL_CHANGES, 6, fn, data);
    bool given = after != NULL;
    snprintf(c->buf[0], sizeof(c->buf[0]), "%lld", given ? (long long)after->us : 0LL);
    snprintf(c->buf[1], sizeof(c->buf[1]), "%lld", given ? (long long)after->id : 0LL);
    snprintf(c->buf[2], sizeof(c->buf[2]), "%u", limit);
    snprintf(c->buf[3], sizeof(c->buf[3]), "%d", QUEUE_CHANGES_OVERLAP_MS);
    snprintf(c->buf[4], sizeof(c->buf[4]), "%d", QUEUE_CHANGES_LEASE_MS);
    snprintf(c->buf[5], sizeof(c->buf[5]), "%d", QUEUE_CHANGES_KEEP_S);
    for (int i = 0; i < 6; i++)
        c->vals[i] = given || i >= 2 ? c->buf[i] : NULL;
    pg_query_submit(a->pool, &c->q);
    return &c->head;
}

/* --- per loop ------------------------------------------------------------- */

static void *pg_open(const struct queue_api_conns *conns, const char **why)
{
    if (!conns->pg) {
        *why = "no database is configured (set DATABASE_URL)";
        return NULL;
    }
    struct pg_api *a = xcalloc(1, sizeof(*a));
    a->loop = conns->loop;
    a->pool = conns->pg;
    for (int i = 0; i < 2; i++)
        list_init(&a->batch[i].calls);
    a->filling = &a->batch[0];
    a->flush.fn = flush_batch;
    list_init(&a->live);
    list_init(&a->spare);
    return a;
}

static void free_calls(struct list *head)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, head)
    {
        list_remove(pos);
        struct pg_call *c = list_entry(pos, struct pg_call, node);
        free(c->text);
        json_decref(c->mine);
        free(c->files);
        free(c);
    }
}

/* After the loop ended: what a forced exit left in flight goes too. */
static void pg_close(void *api)
{
    struct pg_api *a = api;
    if (!a)
        return;
    for (int i = 0; i < 2; i++) {
        free_calls(&a->batch[i].calls);
        batch_reset(&a->batch[i]);
    }
    free_calls(&a->live);
    free_calls(&a->spare);
    pg_array_free(&a->ids);
    free(a);
}

const struct queue_api_ops pg_api_ops = {
    .open = pg_open,
    .close = pg_close,
    .enqueue = pg_enqueue,
    .enqueue_files = pg_enqueue_files,
    .get = pg_get,
    .list = pg_list,
    .cancel = pg_cancel,
    .retry = pg_retry,
    .counts = pg_counts,
    .get_many = pg_get_many,
    .changes = pg_changes,
};
