/*
 * kind_sql.c - `sql`: run a named statement from --sql-jobs.
 *
 * Payload {"statement": "name", "params": [...]}. Only statements the
 * operator declared in server configuration can run; an API client supplies
 * parameters, never SQL. The rows come back as the job's result (a JSON
 * array; DML without RETURNING gives []).
 *
 * Only statements that produce rows (queries; INSERT/UPDATE/DELETE/MERGE
 * with RETURNING) are wrapped as `WITH t AS (<stmt>) SELECT jsonb_agg(t)`:
 * PostgreSQL refuses that wrapper around DML without RETURNING, so such a
 * statement runs as written and its result is [].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/container_of.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind.h"

#define SQL_JOB_MAX_PARAMS 32

struct sql_state {
    char *sql;
    char *vals_text[SQL_JOB_MAX_PARAMS];
    const char *vals[SQL_JOB_MAX_PARAMS];
    int n;
};

static int sql_validate(json_t *p, char *msg, size_t cap)
{
    json_t *st = json_object_get(p, "statement"), *params = json_object_get(p, "params");
    if (!json_is_object(p) || !json_is_string(st) || !json_string_length(st)) {
        snprintf(msg, cap, "must be {\"statement\": \"name\", \"params\": [...]}");
        return -1;
    }
    if (params && (!json_is_array(params) || json_array_size(params) > SQL_JOB_MAX_PARAMS)) {
        snprintf(msg, cap, "params must be an array of at most %d values", SQL_JOB_MAX_PARAMS);
        return -1;
    }
    return 0;
}

static void state_free(struct sql_state *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->vals_text[i]);
    free(s->sql);
    free(s);
}

static void on_rows(struct pg_query *q, PGresult *res, const char *err)
{
    struct job_run *r = container_of(q, struct job_run, handler_query);
    state_free(r->ctx);
    r->ctx = NULL;
    if (err) {
        job_finish(r, NULL, err, false);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        job_finish(r, json_array(), NULL, false); /* ran as written: no rows to report */
        return;
    }
    json_error_t je;
    json_t *rows = json_loads(PQgetvalue(res, 0, 0), 0, &je);
    job_finish(r, rows, rows ? NULL : "result is not JSON", false);
}

/* Whether `stmt` starts with keyword `kw` (after blanks and -- comments). */
static const char *skip_blank(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        return p;
    }
}

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = s; (p = strcasestr(p, w)); p += n)
        if ((p == s || !is_word_char(p[-1])) && !is_word_char(p[n]))
            return true;
    return false;
}

static bool starts_with_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    return !strncasecmp(s, w, n) && !is_word_char(s[n]);
}

/* Can `WITH t AS (stmt) SELECT ... FROM t` run it? Queries, and DML with
 * RETURNING; not DML without it, nor utility statements (CALL, ...). */
static bool yields_rows(const char *stmt)
{
    const char *p = skip_blank(stmt);
    if (starts_with_word(p, "select") || starts_with_word(p, "values") ||
        starts_with_word(p, "table") || starts_with_word(p, "with"))
        return true;
    if (starts_with_word(p, "insert") || starts_with_word(p, "update") ||
        starts_with_word(p, "delete") || starts_with_word(p, "merge"))
        return has_word(p, "returning");
    return false;
}

static void sql_start(struct job_run *r)
{
    char msg[160];
    if (sql_validate(r->payload, msg, sizeof(msg))) {
        job_finish(r, NULL, msg, true);
        return;
    }
    if (!job_pg(r)) { /* the Redis queue backend without DATABASE_URL */
        job_finish(r, NULL, "the sql kind needs DATABASE_URL (PostgreSQL)", true);
        return;
    }
    const char *name = json_string_value(json_object_get(r->payload, "statement"));
    const char *stmt = job_sql_statement(r, name);
    if (!stmt) {
        snprintf(msg, sizeof(msg), "no statement named '%.64s' in --sql-jobs", name);
        job_finish(r, NULL, msg, true);
        return;
    }
    struct sql_state *s = xcalloc(1, sizeof(*s));
    size_t len = strlen(stmt) + 128;
    s->sql = xmalloc(len);
    /* A CTE turns any SELECT or DML ... RETURNING into rows of JSON. */
    if (yields_rows(stmt))
        snprintf(s->sql, len,
                 "WITH t AS (%s) SELECT coalesce(jsonb_agg(t), '[]'::jsonb)::text FROM t", stmt);
    else
        snprintf(s->sql, len, "%s", stmt);
    json_t *params = json_object_get(r->payload, "params");
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v)
    {
        if (json_is_null(v))
            s->vals_text[i] = NULL;
        else if (json_is_string(v))
            s->vals_text[i] = xstrdup(json_string_value(v));
        else
            s->vals_text[i] = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        s->vals[i] = s->vals_text[i];
        s->n = (int)i + 1;
    }
    r->ctx = s;
    r->handler_query = (struct pg_query){.fn = on_rows,
                                         .sql = s->sql,
                                         .nparams = s->n,
                                         .values = s->vals,
                                         .timeout_ms = r->timeout_ms};
    pg_query_submit(job_pg(r), &r->handler_query);
}

static void sql_stop(struct job_run *r)
{
    /* A statement in flight cannot be recalled from a pipeline; its
     * per-query timeout (the job's) bounds it, and on_rows finishes. */
}

const struct job_kind kind_sql = {
    .name = "sql",
    .summary = "runs a named statement from --sql-jobs with the payload's params",
    .validate = sql_validate,
    .start = sql_start,
    .stop = sql_stop,
};
