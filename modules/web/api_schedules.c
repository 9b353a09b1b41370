/*
 * api_schedules.c - /v1/schedules: periodic schedules over HTTP.
 *
 *   GET    /v1/schedules          list, by name
 *   POST   /v1/schedules          create (409 when the name exists)
 *   GET    /v1/schedules/{name}   one
 *   PUT    /v1/schedules/{name}   create or replace (201 or 200)
 *   PATCH  /v1/schedules/{name}   change the fields given
 *   DELETE /v1/schedules/{name}   remove (its fire records go with it)
 *   POST   /v1/schedules/{name}/run   enqueue its job now, outside its slots
 *                                     (the job API's enqueue, on either queue
 *                                     backend; the schedule is not touched)
 *
 * Bodies are validated by modules/schedules (the CLI's and --schedules' own
 * check): a bad cron expression, time zone or policy is a 400 naming the
 * field. A committed change reaches every beat through the table's NOTIFY.
 * A database failure is answered with a stable code (503 unavailable with
 * Retry-After, 400 rejected, 500 internal), its text logged with the
 * request id, never sent; while the pool knows the database is down the
 * 503 comes at once (fail_fast queries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/schedules/schedules.h"
#include "modules/schedules/sql.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "proto/urlquery.h"

#define API_QUERY_TIMEOUT_MS 10000

enum sched_call { SC_LIST, SC_GET, SC_CREATE, SC_PUT, SC_PATCH, SC_DELETE, SC_RUN };

struct sched_call_state {
    struct pg_query q;
    struct web_request *r;
    enum sched_call kind;
    char *text;
    char name[SCHED_NAME_MAX + 1];
    const char *vals[2];
};

static void call_abort(struct web_request *r)
{
    ((struct sched_call_state *)r->async)->r = NULL;
}

static void on_run_answer(struct queue_call *qc, const struct queue_answer *ans)
{
    struct web_request *r = qc->data;
    r->on_abort = NULL;
    if (ans->status < 300) {
        web_respond_json(r, 201, ans->body, ans->len);
        return;
    }
    api_respond_failed(r, ans);
}

/* Run now: the schedule's job, as its beat would make it (no unique key:
 * a manual run is not a slot, so it never stands in for one). */
static void run_now(struct web_request *r, const char *name, const char *sched)
{
    json_t *s = json_loads(sched, 0, NULL), *job = json_object();
    static const char *const keep[] = {"queue", "kind", "payload", "priority", "max_attempts"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(s, keep[i]);
        if (v && !json_is_null(v))
            json_object_set(job, keep[i], v);
    }
    json_t *tmo = json_object_get(s, "timeout_ms"); /* the job input takes seconds */
    if (json_is_integer(tmo))
        json_object_set_new(job, "timeout", json_real((double)json_integer_value(tmo) / 1000));
    json_decref(s);
    const char *field = NULL;
    char msg[300];
    json_t *norm = job_input_normalize(job, &field, msg, sizeof(msg));
    json_decref(job);
    if (!norm) { /* e.g. a kind this server does not know */
        char out[400];
        snprintf(out, sizeof(out), "the schedule's job is not valid here: %s: %s",
                 field ? field : "job", msg);
        web_respond_error(r, 409, "conflict", out);
        return;
    }
    LOG(LOG_INFO, "schedule run now through the API", L_STR("name", name),
        L_STRN("request_id", r->id, r->id_len));
    json_t *jobs = json_array();
    json_array_append_new(jobs, norm);
    api_jobs_submit(r, jobs, on_run_answer);
}

static void on_done(struct pg_query *q, PGresult *res, const char *err)
{
    struct sched_call_state *c = container_of(q, struct sched_call_state, q);
    struct web_request *r = c->r;
    if (r) {
        r->on_abort = NULL;
        if (err) {
            enum pg_fault f = pg_fault_of(res);
            LOG(f == PG_FAULT_REJECTED ? LOG_INFO : LOG_WARN, "api query failed",
                L_STR("error", err), L_STRN("request_id", r->id, r->id_len));
            if (f == PG_FAULT_UNAVAILABLE)
                api_respond_unavailable(r, "the database is unavailable; retry later");
            else if (f == PG_FAULT_REJECTED)
                web_respond_error(r, 400, "rejected",
                                  "the database refused a value of this schedule (logged with "
                                  "its request_id)");
            else
                web_respond_error(r, 500, "internal",
                                  "the database call failed (logged with this request_id)");
        } else if (c->kind == SC_LIST) {
            int rows = PQntuples(res);
            char *out = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&out, &len);
            fputs("{\"schedules\":[", f);
            for (int i = 0; i < rows; i++)
                fprintf(f, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
            fputs("]}", f);
            fclose(f);
            web_respond_json(r, 200, out, len);
            free(out);
        } else if (PQntuples(res) == 0) {
            if (c->kind == SC_CREATE)
                web_respond_error(r, 409, "conflict", "a schedule with this name exists");
            else
                web_respond_error(r, 404, "not_found", "no schedule with this name");
        } else if (c->kind == SC_RUN) {
            run_now(r, c->name, PQgetvalue(res, 0, 0));
        } else {
            const char *j = PQgetvalue(res, 0, 0);
            bool created =
                c->kind == SC_CREATE || (c->kind == SC_PUT && PQgetvalue(res, 0, 1)[0] == 't');
            if (c->kind != SC_LIST && c->kind != SC_GET)
                LOG(LOG_INFO, "schedule written through the API", L_STR("name", c->name),
                    L_STR("op", c->kind == SC_DELETE ? "delete"
                                : created            ? "create"
                                                     : "update"),
                    L_STRN("request_id", r->id, r->id_len));
            web_respond_json(r, created ? 201 : 200, j, strlen(j));
        }
    }
    free(c->text);
    free(c);
}

static bool ready(struct web_request *r)
{
    if (!web_authorized(r))
        return false;
    if (web_loop_of(r->loop)->has_pg)
        return true;
    api_respond_unavailable(r, "no database is configured (set DATABASE_URL)");
    return false;
}

/* The {name} path parameter, percent-decoded, into out; false after a 400. */
static bool name_param(struct web_request *r, char *out)
{
    size_t n;
    const char *v = web_param(r, "name", &n);
    long dn = v ? urlpath_decode(v, n, out, SCHED_NAME_MAX + 1) : -1;
    if (dn < 0 || !sched_name_valid(out, (size_t)dn)) {
        web_respond_error(r, 400, "invalid_name",
                          "name must be 1 to 200 characters of A-Z a-z 0-9 . _ - : @ +");
        return false;
    }
    return true;
}

static void submit(struct web_request *r, enum sched_call kind, const char *sql, int nparams,
                   const char *name, char *text)
{
    struct sched_call_state *c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->kind = kind;
    c->text = text;
    if (name)
        snprintf(c->name, sizeof(c->name), "%s", name);
    if (kind == SC_CREATE || kind == SC_PUT) {
        c->vals[0] = text;
        c->vals[1] = "api";
    } else if (kind == SC_PATCH) {
        c->vals[0] = text;
        c->vals[1] = c->name;
    } else {
        c->vals[0] = c->name;
    }
    c->q = (struct pg_query){.fn = on_done,
                             .sql = sql,
                             .nparams = nparams,
                             .values = c->vals,
                             .timeout_ms = API_QUERY_TIMEOUT_MS,
                             .retry_safe = kind == SC_LIST || kind == SC_GET,
                             .fail_fast = true};
    r->async = c;
    r->on_abort = call_abort;
    pg_query_submit(&web_loop_of(r->loop)->pg, &c->q);
}

/* Parse and validate the body; NULL after a 400. name: the path's, or NULL. */
static char *body_schedule(struct web_request *r, const char *name, bool partial)
{
    json_t *in = web_json_body(r);
    if (!in)
        return NULL;
    if (name && json_is_object(in)) {
        json_t *given = json_object_get(in, "name");
        if (given && (!json_is_string(given) || strcmp(json_string_value(given), name))) {
            web_respond_error(r, 400, "invalid_schedule",
                              "name in the body differs from the name in the path");
            json_decref(in);
            return NULL;
        }
        if (!partial)
            json_object_set_new(in, "name", json_string(name));
        else
            json_object_del(in, "name");
    }
    const char *field = NULL;
    char why[400], msg[520];
    json_t *norm =
        sched_input_normalize(in, partial, r->loop->srv->cfg->tzdir, &field, why, sizeof(why));
    if (!norm) {
        snprintf(msg, sizeof(msg), "%s %s", field, why);
        LOG(LOG_INFO, "schedule refused", L_STR("field", field), L_STR("error", why),
            L_STRN("request_id", r->id, r->id_len));
        web_respond_error(r, 400, "invalid_schedule", msg);
        json_decref(in);
        return NULL;
    }
    json_decref(in);
    char *text = json_dumps(norm, JSON_COMPACT);
    json_decref(norm);
    return text;
}

void api_schedule_list(struct web_request *r)
{
    if (ready(r))
        submit(r, SC_LIST, SQL_SCHED_LIST, 0, NULL, NULL);
}

void api_schedule_create(struct web_request *r)
{
    if (!ready(r))
        return;
    char *text = body_schedule(r, NULL, false);
    if (!text)
        return;
    json_t *j = json_loads(text, 0, NULL);
    char name[SCHED_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(j, "name")));
    json_decref(j);
    submit(r, SC_CREATE, SQL_SCHED_CREATE, 2, name, text);
}

static void by_name(struct web_request *r, enum sched_call kind)
{
    char name[SCHED_NAME_MAX + 1];
    if (!ready(r) || !name_param(r, name))
        return;
    if (kind == SC_GET || kind == SC_DELETE || kind == SC_RUN) {
        submit(r, kind, kind == SC_DELETE ? SQL_SCHED_DELETE : SQL_SCHED_GET, 1, name, NULL);
        return;
    }
    char *text = body_schedule(r, name, kind == SC_PATCH);
    if (text)
        submit(r, kind, kind == SC_PUT ? SQL_SCHED_PUT : SQL_SCHED_PATCH, 2, name, text);
}

void api_schedule_get(struct web_request *r)
{
    by_name(r, SC_GET);
}

void api_schedule_put(struct web_request *r)
{
    by_name(r, SC_PUT);
}

void api_schedule_patch(struct web_request *r)
{
    by_name(r, SC_PATCH);
}

void api_schedule_delete(struct web_request *r)
{
    by_name(r, SC_DELETE);
}

void api_schedule_run(struct web_request *r)
{
    by_name(r, SC_RUN);
}
