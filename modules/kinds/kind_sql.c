/*
 * kind_sql.c - `sql`: run a named statement from --sql-jobs.
 *
 * Payload {"statement": "name", "params": [...]}. Only statements the
 * operator declared in server configuration can run; an API client supplies
 * parameters, never SQL. The rows come back as the job's result (a JSON
 * array; DML without RETURNING gives []).
 *
 * Once per job: the statement runs inside a CTE that also inserts the
 * job's row into trireme.sql_effects (sql/007), in one statement, so its
 * effect and that row commit together. An attempt after one that committed
 * (its completion lost to a restart, a dropped connection or an expired
 * lease) finds the row, is rolled back whole by SQLSTATE TR001, and the job
 * succeeds with the result the first attempt stored. Statements that
 * produce rows (queries; DML with RETURNING) give them as the result; DML
 * without RETURNING gives []. Utility statements (CALL, DO, ...) cannot
 * live in a CTE: they run as written, at least once like any job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind.h"

#define SQL_JOB_MAX_PARAMS 32

#define SQL_ALREADY_RAN "TR001" /* trireme.sql_effect_once: an earlier attempt committed */

struct sql_state {
    char *sql;
    char *vals_text[SQL_JOB_MAX_PARAMS + 1]; /* the payload's params, then the job id */
    const char *vals[SQL_JOB_MAX_PARAMS + 1];
    int n;
};

static const char SQL_STORED_RESULT[] =
    "SELECT result::text FROM trireme.sql_effects WHERE job_id = $1::bigint";

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

static void on_rows(struct pg_query *q, PGresult *res, const char *err);

/* An earlier attempt ran the statement: its stored result is this job's. */
static void stored_result(struct job_run *r)
{
    struct sql_state *s = r->ctx;
    s->vals[0] = s->vals[s->n - 1]; /* the job id, last of the statement's */
    r->handler_query = (struct pg_query){.fn = on_rows,
                                         .sql = SQL_STORED_RESULT,
                                         .nparams = 1,
                                         .values = s->vals,
                                         .timeout_ms = r->timeout_ms,
                                         .retry_safe = true};
    pg_query_submit(job_pg(r), &r->handler_query);
}

static void on_rows(struct pg_query *q, PGresult *res, const char *err)
{
    struct job_run *r = container_of(q, struct job_run, handler_query);
    const char *state = err && res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, SQL_ALREADY_RAN)) {
        LOG(LOG_INFO, "sql job: an earlier attempt committed the statement; its result stands",
            L_INT("job_id", r->id), L_INT("attempt", r->attempt));
        stored_result(r);
        return;
    }
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

enum wrap { WRAP_NONE, WRAP_DML, WRAP_ROWS };

/* What a CTE can hold: queries and DML with RETURNING as rows, DML without
 * it as a statement only (PostgreSQL refuses to read rows it does not
 * return), utility statements (CALL, DO, ...) not at all. MERGE is no CTE
 * before PostgreSQL 17: it runs as written. */
static enum wrap wrap_of(const char *stmt)
{
    const char *p = skip_blank(stmt);
    if (starts_with_word(p, "select") || starts_with_word(p, "values") ||
        starts_with_word(p, "table") || starts_with_word(p, "with"))
        return WRAP_ROWS;
    if (starts_with_word(p, "insert") || starts_with_word(p, "update") ||
        starts_with_word(p, "delete"))
        return has_word(p, "returning") ? WRAP_ROWS : WRAP_DML;
    return WRAP_NONE;
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
    json_t *params = json_object_get(r->payload, "params");
    int id_param = (int)json_array_size(params) + 1;
    size_t len = strlen(stmt) + 512;
    s->sql = xmalloc(len);
    switch (wrap_of(stmt)) {
    case WRAP_ROWS:
        snprintf(s->sql, len,
                 "WITH t AS (%s), once AS (INSERT INTO trireme.sql_effects (job_id, result)"
                 " SELECT $%d::bigint, coalesce(jsonb_agg(t), '[]'::jsonb) FROM t"
                 " ON CONFLICT (job_id) DO NOTHING RETURNING result)"
                 " SELECT trireme.sql_effect_once((SELECT result FROM once))::text",
                 stmt, id_param);
        break;
    case WRAP_DML:
        snprintf(s->sql, len,
                 "WITH t AS (%s), once AS (INSERT INTO trireme.sql_effects (job_id, result)"
                 " VALUES ($%d::bigint, '[]'::jsonb) ON CONFLICT (job_id) DO NOTHING"
                 " RETURNING result)"
                 " SELECT trireme.sql_effect_once((SELECT result FROM once))::text",
                 stmt, id_param);
        break;
    case WRAP_NONE:
        snprintf(s->sql, len, "%s", stmt);
        id_param = 0;
        break;
    }
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
    if (id_param) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)r->id);
        s->vals_text[s->n] = xstrdup(id);
        s->vals[s->n] = s->vals_text[s->n];
        s->n++;
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
