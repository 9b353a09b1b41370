/*
 * api_jobs.c - /v1/jobs: enqueue, status, list, cancel, retry.
 *
 * Enqueues are coalesced: POST /v1/jobs requests that arrive while this
 * loop's previous INSERT is committing wait and then go out together in
 * one multi-row INSERT (and the first one of a quiet moment goes at the
 * end of its loop turn, a 0 ms timer). Each request is answered only when
 * its statement has committed, so a 201 always means durable, yet N
 * concurrent requests cost about one commit, not N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/jobs/job_input.h"
#include "modules/jobs/sql.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

#define API_QUERY_TIMEOUT_MS 10000
#define LIST_DEFAULT 50
#define LIST_MAX 500

static bool need_db(struct web_request *r)
{
    if (web_loop_of(r->loop)->has_pg)
        return true;
    web_respond_error(r, 503, "unavailable", "no database is configured (set DATABASE_URL)");
    return false;
}

static void db_error(struct web_request *r, const char *err)
{
    char msg[600];
    snprintf(msg, sizeof(msg), "database: %s", err);
    LOG(LOG_WARN, "api query failed", L_STR("error", err), L_STRN("request_id", r->id, r->id_len));
    web_respond_error(r, 503, "unavailable", msg);
}

/* --- POST /v1/jobs ------------------------------------------------------ */

struct enqueue_item {
    struct web_request *r; /* NULL once the client went away */
    unsigned first, count;
    bool array;
};

struct enqueue_batch {
    struct pg_query q;
    struct web_loop *wl;
    json_t *jobs;
    char *text;
    const char *vals[1];
    struct enqueue_item *items;
    unsigned nitems, cap;
};

static void enqueue_abort(struct web_request *r)
{
    struct enqueue_batch *b = r->async;
    for (unsigned i = 0; i < b->nitems; i++)
        if (b->items[i].r == r)
            b->items[i].r = NULL;
}

static void batch_free(struct enqueue_batch *b)
{
    json_decref(b->jobs);
    free(b->text);
    free(b->items);
    free(b);
}

static void on_enqueued(struct pg_query *q, PGresult *res, const char *err)
{
    struct enqueue_batch *b = (struct enqueue_batch *)q;
    struct web_loop *wl = b->wl;
    wl->batch_inflight = false;
    if (wl->batch) /* what arrived during this commit goes out now, together */
        loop_timer_in(wl->loop, &wl->batch_timer, 0);
    for (unsigned i = 0; i < b->nitems; i++) {
        struct enqueue_item *it = &b->items[i];
        if (!it->r)
            continue;
        it->r->on_abort = NULL;
        if (err || PQntuples(res) < (int)(it->first + it->count)) {
            db_error(it->r, err ? err : "short enqueue result");
            continue;
        }
        bool missing = false;
        for (unsigned k = 0; k < it->count; k++)
            missing |= PQgetisnull(res, (int)(it->first + k), 1);
        if (missing) { /* never valid JSON with an empty id: say what happened */
            db_error(it->r, "enqueue returned no id");
            continue;
        }
        bool any_created = false;
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (it->array)
            fputs("{\"jobs\":[", f);
        for (unsigned k = 0; k < it->count; k++) {
            int row = (int)(it->first + k);
            bool created = PQgetvalue(res, row, 2)[0] == 't';
            any_created |= created;
            fprintf(f, "%s{\"id\":%s,\"status\":\"pending\",\"created\":%s}", k ? "," : "",
                    PQgetvalue(res, row, 1), created ? "true" : "false");
        }
        if (it->array)
            fputs("]}", f);
        fclose(f);
        web_respond_json(it->r, any_created ? 201 : 200, out, len);
        free(out);
    }
    batch_free(b);
}

static void flush_batch(struct loop *l, struct timer *t)
{
    struct web_loop *wl = (struct web_loop *)((char *)t - offsetof(struct web_loop, batch_timer));
    struct enqueue_batch *b = wl->batch;
    /* One INSERT in flight per loop: requests arriving meanwhile wait for
     * it and then share the next one (group commit sized by the load). */
    if (!b || wl->batch_inflight)
        return;
    wl->batch = NULL;
    wl->batch_inflight = true;
    b->text = json_dumps(b->jobs, JSON_COMPACT);
    b->vals[0] = b->text;
    b->q.fn = on_enqueued;
    b->q.sql = SQL_ENQUEUE_BATCH;
    b->q.nparams = 1;
    b->q.values = b->vals;
    b->q.timeout_ms = API_QUERY_TIMEOUT_MS;
    pg_query_submit(&wl->pg, &b->q);
}

json_t *api_jobs_parse(struct web_request *r, bool *array_out)
{
    json_error_t jerr;
    json_t *in = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        char msg[256];
        snprintf(msg, sizeof(msg), "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        web_respond_error(r, 400, "invalid_json", msg);
        return NULL;
    }
    bool array = json_is_array(in);
    size_t n = array ? json_array_size(in) : 1;
    if (array && (n == 0 || n > JOB_BATCH_MAX)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "a job array holds 1 to %d jobs", JOB_BATCH_MAX);
        web_respond_error(r, 400, "invalid_job", msg);
        json_decref(in);
        return NULL;
    }
    json_t *norm = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *field = NULL;
        char why[300], msg[400];
        json_t *j =
            job_input_normalize(array ? json_array_get(in, i) : in, &field, why, sizeof(why));
        if (!j) {
            if (array)
                snprintf(msg, sizeof(msg), "jobs[%zu].%s %s", i, field, why);
            else
                snprintf(msg, sizeof(msg), "%s %s", field, why);
            web_respond_error(r, 400, "invalid_job", msg);
            json_decref(norm);
            json_decref(in);
            return NULL;
        }
        json_array_append_new(norm, j);
    }
    json_decref(in);
    *array_out = array;
    return norm;
}

void api_enqueue(struct web_request *r)
{
    if (r->loop->srv->cfg->queue_backend == QUEUE_REDIS) {
        rq_api_enqueue(r);
        return;
    }
    if (!web_authorized(r) || !need_db(r))
        return;
    bool array;
    json_t *norm = api_jobs_parse(r, &array);
    if (!norm)
        return;
    size_t n = json_array_size(norm);

    struct web_loop *wl = web_loop_of(r->loop);
    struct enqueue_batch *b = wl->batch;
    if (!b) {
        b = calloc(1, sizeof(*b));
        b->wl = wl;
        b->jobs = json_array();
        wl->batch = b;
        wl->batch_timer.fn = flush_batch;
        loop_timer_in(r->loop, &wl->batch_timer, 0);
    }
    if (b->nitems == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = realloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->nitems++] = (struct enqueue_item){
        .r = r, .first = (unsigned)json_array_size(b->jobs), .count = (unsigned)n, .array = array};
    json_array_extend(b->jobs, norm);
    json_decref(norm);
    r->async = b;
    r->on_abort = enqueue_abort;
}

/* --- one-query endpoints ------------------------------------------------ */

enum call_kind { CALL_GET, CALL_LIST, CALL_CANCEL, CALL_RETRY };

struct api_call {
    struct pg_query q;
    struct web_request *r;
    enum call_kind kind;
    int limit;
    const char *vals[5];
    char buf[5][256];
};

static void call_abort(struct web_request *r)
{
    ((struct api_call *)r->async)->r = NULL;
}

static void on_call(struct pg_query *q, PGresult *res, const char *err)
{
    struct api_call *c = (struct api_call *)q;
    struct web_request *r = c->r;
    if (!r) {
        free(c);
        return;
    }
    r->on_abort = NULL;
    if (err) {
        db_error(r, err);
    } else if (c->kind == CALL_LIST) {
        int rows = PQntuples(res);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        fputs("{\"jobs\":[", f);
        for (int i = 0; i < rows; i++)
            fprintf(f, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
        if (rows == c->limit && rows > 0)
            fprintf(f, "],\"next_cursor\":\"%s\"}", PQgetvalue(res, rows - 1, 1));
        else
            fputs("],\"next_cursor\":null}", f);
        fclose(f);
        web_respond_json(r, 200, out, len);
        free(out);
    } else if (PQntuples(res) == 0) {
        web_respond_error(r, 404, "not_found", "no job with this id");
    } else if ((c->kind == CALL_CANCEL || c->kind == CALL_RETRY) && PQgetvalue(res, 0, 1)[0] != 't') {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s",
                 c->kind == CALL_CANCEL ? "only pending or running jobs can be cancelled"
                                        : "only dead, failed or cancelled jobs can be retried");
        web_respond_error(r, 409, "conflict", msg);
    } else {
        const char *j = PQgetvalue(res, 0, 0);
        web_respond_json(r, 200, j, strlen(j));
    }
    free(c);
}

static struct api_call *call_new(struct web_request *r, enum call_kind kind, const char *sql,
                                 int nparams)
{
    struct api_call *c = calloc(1, sizeof(*c));
    c->r = r;
    c->kind = kind;
    c->q.fn = on_call;
    c->q.sql = sql;
    c->q.nparams = nparams;
    c->q.values = c->vals;
    c->q.timeout_ms = API_QUERY_TIMEOUT_MS;
    c->q.retry_safe = kind == CALL_GET || kind == CALL_LIST;
    r->async = c;
    r->on_abort = call_abort;
    return c;
}

bool api_job_id_param(struct web_request *r, char out[32])
{
    size_t n;
    const char *id = web_param(r, "id", &n);
    bool ok = id && n > 0 && n <= 18;
    for (size_t i = 0; ok && i < n; i++)
        ok = id[i] >= '0' && id[i] <= '9';
    if (!ok) {
        web_respond_error(r, 400, "invalid_id", "id must be a positive integer");
        return false;
    }
    memcpy(out, id, n);
    out[n] = 0;
    return true;
}

static void one_job(struct web_request *r, enum call_kind kind, const char *sql)
{
    char id[32];
    if (!web_authorized(r) || !need_db(r) || !api_job_id_param(r, id))
        return;
    struct api_call *c = call_new(r, kind, sql, 1);
    strcpy(c->buf[0], id);
    c->vals[0] = c->buf[0];
    pg_query_submit(&web_loop_of(r->loop)->pg, &c->q);
}

void api_job_get(struct web_request *r)
{
    if (r->loop->srv->cfg->queue_backend == QUEUE_REDIS) {
        rq_api_one(r, RQ_API_GET);
        return;
    }
    one_job(r, CALL_GET, SQL_JOB_GET);
}

void api_job_cancel(struct web_request *r)
{
    if (r->loop->srv->cfg->queue_backend == QUEUE_REDIS) {
        rq_api_one(r, RQ_API_CANCEL);
        return;
    }
    one_job(r, CALL_CANCEL, SQL_JOB_CANCEL);
}

void api_job_retry(struct web_request *r)
{
    if (r->loop->srv->cfg->queue_backend == QUEUE_REDIS) {
        rq_api_one(r, RQ_API_RETRY);
        return;
    }
    one_job(r, CALL_RETRY, SQL_JOB_RETRY);
}

bool api_list_params(struct web_request *r, struct api_list_params *p)
{
    static const char *const names[] = {"status", "queue", "kind", "limit", "cursor"};
    for (int i = 0; i < 5; i++) {
        p->have[i] = web_query(r, names[i], p->v[i], sizeof(p->v[i]));
        if (p->have[i] < 0) {
            char msg[96];
            snprintf(msg, sizeof(msg), "query parameter %s is malformed or too long", names[i]);
            web_respond_error(r, 400, "invalid_query", msg);
            return false;
        }
    }
    static const char *const statuses[] = {"pending", "running", "succeeded",
                                           "failed",  "dead",    "cancelled"};
    if (p->have[0]) {
        bool ok = false;
        for (int i = 0; i < 6; i++)
            ok |= !strcmp(p->v[0], statuses[i]);
        if (!ok) {
            web_respond_error(r, 400, "invalid_query",
                              "status must be one of pending, running, succeeded, failed, dead, "
                              "cancelled");
            return false;
        }
    }
    int limit = LIST_DEFAULT;
    if (p->have[3]) {
        char *end;
        long lv = strtol(p->v[3], &end, 10);
        if (*end || lv < 1 || lv > LIST_MAX) {
            web_respond_error(r, 400, "invalid_query", "limit must be an integer from 1 to 500");
            return false;
        }
        limit = (int)lv;
    }
    if (p->have[4]) {
        bool ok = *p->v[4] && strlen(p->v[4]) <= 18;
        for (const char *c = p->v[4]; ok && *c; c++)
            ok = *c >= '0' && *c <= '9';
        if (!ok) {
            web_respond_error(r, 400, "invalid_query", "cursor must be a next_cursor value");
            return false;
        }
    }
    p->limit = limit;
    return true;
}

void api_job_list(struct web_request *r)
{
    if (r->loop->srv->cfg->queue_backend == QUEUE_REDIS) {
        rq_api_list(r);
        return;
    }
    if (!web_authorized(r) || !need_db(r))
        return;
    struct api_list_params p;
    if (!api_list_params(r, &p))
        return;
    int limit = p.limit;
    struct api_call *c = call_new(r, CALL_LIST, SQL_JOB_LIST, 5);
    c->limit = limit;
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            snprintf(c->buf[3], sizeof(c->buf[3]), "%d", limit);
        else if (p.have[i])
            memcpy(c->buf[i], p.v[i], sizeof(c->buf[i]));
        c->vals[i] = (i == 3 || p.have[i]) ? c->buf[i] : NULL;
    }
    pg_query_submit(&web_loop_of(r->loop)->pg, &c->q);
}
