/*
 * file.c - --schedules=FILE: declared schedules reconciled at beat start.
 *
 * The file is JSON: {"schedules": [ {schedule}, ... ]} (or the bare array),
 * each entry with the fields POST /v1/schedules takes. In one transaction,
 * every entry is created or updated with source 'file', and schedules with
 * source 'file' the file no longer names are deleted; schedules made
 * through the API or CLI (source 'api') are never touched, and an entry
 * whose name an API schedule already has is skipped with a warning. Runs
 * in the module's init hook, before any loop exists, so blocking libpq is
 * fine here. A bad file stops the start with a line naming entry and field.
 */
#include "kernel/pq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "modules/beat/beat.h"
#include "modules/jobs/cli_pg.h"
#include "modules/schedules/schedules.h"
#include "modules/schedules/sql.h"

static bool exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        char *m = PQresultErrorMessage(r);
        cli_one_line(m);
        LOG(LOG_ERROR, "--schedules: database refused", L_STR("statement", sql), L_STR("error", m));
    }
    PQclear(r);
    return ok;
}

/* The file's entries, validated; NULL (logged) when the file is wrong. */
static json_t *read_entries(const struct config *cfg)
{
    json_error_t je;
    json_t *doc = json_load_file(cfg->schedules_file, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        LOG(LOG_ERROR, "--schedules: not a readable JSON file", L_STR("path", cfg->schedules_file),
            L_STR("error", je.text), L_INT("line", je.line));
        return NULL;
    }
    json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "schedules");
    if (!json_is_array(list)) {
        LOG(LOG_ERROR, "--schedules: expected {\"schedules\": [...]} or an array",
            L_STR("path", cfg->schedules_file));
        json_decref(doc);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *field = NULL;
        char why[400];
        json_t *n = sched_input_normalize(e, false, cfg->tzdir, &field, why, sizeof(why));
        if (!n) {
            char where[64];
            snprintf(where, sizeof(where), "schedules[%zu].%s", i, field);
            LOG(LOG_ERROR, "--schedules: invalid schedule", L_STR("path", cfg->schedules_file),
                L_STR("field", where), L_STR("error", why));
            goto bad;
        }
        json_array_append_new(out, n);
        const char *name = json_string_value(json_object_get(n, "name"));
        for (size_t k = 0; k < i; k++) {
            if (!strcmp(json_string_value(json_object_get(json_array_get(out, k), "name")), name)) {
                LOG(LOG_ERROR, "--schedules: two entries have the same name",
                    L_STR("path", cfg->schedules_file), L_STR("name", name));
                goto bad;
            }
        }
    }
    json_decref(doc);
    return out;
bad:
    json_decref(out);
    json_decref(doc);
    return NULL;
}

int beat_file_reconcile(const struct config *cfg)
{
    if (!*cfg->schedules_file)
        return 0;
    json_t *entries = read_entries(cfg);
    if (!entries)
        return -1;
    const char *why;
    if (pq_load(&why)) {
        LOG(LOG_ERROR, "--schedules: database support unavailable", L_STR("error", why));
        json_decref(entries);
        return -1;
    }
    const char *url = *cfg->database_direct_url ? cfg->database_direct_url : cfg->database_url;
    PGconn *c = PQconnectdb(url);
    int rc = -1, created = 0, applied = 0, skipped = 0, removed = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        char *m = PQerrorMessage(c);
        cli_one_line(m);
        LOG(LOG_ERROR, "--schedules: cannot connect to the database", L_STR("error", m));
        goto out;
    }
    if (!exec_ok(c, "BEGIN"))
        goto out;
    json_t *names = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        char *text = json_dumps(e, JSON_COMPACT);
        const char *vals[2] = {text, "file"};
        PGresult *r = PQexecParams(c, SQL_SCHED_PUT_FILE, 2, NULL, vals, NULL, NULL, 0);
        free(text);
        const char *name = json_string_value(json_object_get(e, "name"));
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char *m = PQresultErrorMessage(r);
            cli_one_line(m);
            LOG(LOG_ERROR, "--schedules: database refused a schedule", L_STR("name", name),
                L_STR("error", m));
            PQclear(r);
            json_decref(names);
            goto out;
        }
        if (PQntuples(r) == 0) {
            LOG(LOG_WARN,
                "--schedules: a schedule made through the API has this name; the "
                "file's entry is ignored",
                L_STR("name", name));
            skipped++;
        } else {
            applied++;
            created += PQgetvalue(r, 0, 1)[0] == 't';
        }
        PQclear(r);
        json_array_append_new(names, json_string(name));
    }
    char *ntext = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    const char *pv[1] = {ntext};
    PGresult *r = PQexecParams(c, SQL_SCHED_PRUNE_FILE, 1, NULL, pv, NULL, NULL, 0);
    free(ntext);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char *m = PQresultErrorMessage(r);
        cli_one_line(m);
        LOG(LOG_ERROR, "--schedules: removing old file entries failed", L_STR("error", m));
        PQclear(r);
        goto out;
    }
    removed = PQntuples(r);
    for (int k = 0; k < removed; k++)
        LOG(LOG_INFO, "--schedules: removed (no longer in the file)",
            L_STR("name", PQgetvalue(r, k, 0)));
    PQclear(r);
    if (!exec_ok(c, "COMMIT"))
        goto out;
    LOG(LOG_INFO, "schedules file reconciled", L_STR("path", cfg->schedules_file),
        L_INT("entries", applied), L_INT("created", created), L_INT("removed", removed),
        L_INT("skipped", skipped));
    rc = 0;
out:
    PQfinish(c);
    json_decref(entries);
    return rc;
}
