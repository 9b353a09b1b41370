/*
 * migrate.c - applying the embedded migrations (see migrate.h).
 */
#include "modules/jobs/migrate.h"

#include "kernel/pq.h"
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"

/* Any constant works: it only has to be the same for every instance. */
#define MIGRATE_LOCK_KEY "7306029601412348417"

static int exec_ok(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
        LOG(LOG_ERROR, "migration failed", L_STR("step", what), L_STR("error", msg));
    }
    PQclear(r);
    return ok ? 0 : 1;
}

int migrate_run(const char *conninfo, int *applied)
{
    *applied = 0;
    const char *why;
    if (pq_load(&why)) {
        LOG(LOG_ERROR, "migration: database support unavailable", L_STR("error", why));
        return 1;
    }
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
        LOG(LOG_ERROR, "migration: cannot connect to the database", L_STR("error", msg));
        PQfinish(c);
        return 1;
    }
    int rc = exec_ok(c, "SET client_min_messages = warning", "settings") ||
             exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "advisory lock") ||
             exec_ok(c,
                     "CREATE SCHEMA IF NOT EXISTS trireme;"
                     "CREATE TABLE IF NOT EXISTS trireme.schema_migrations ("
                     " version int PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     "migrations table");
    for (unsigned i = 0; !rc && i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        char q[128];
        snprintf(q, sizeof(q), "SELECT 1 FROM trireme.schema_migrations WHERE version = %u",
                 m->version);
        PGresult *r = PQexec(c, q);
        int done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        if (done)
            continue;
        char rec[256];
        snprintf(rec, sizeof(rec),
                 "INSERT INTO trireme.schema_migrations (version, name) VALUES (%u, '%s')",
                 m->version, m->name);
        rc = exec_ok(c, "BEGIN", m->name) || exec_ok(c, m->sql, m->name) ||
             exec_ok(c, rec, m->name) || exec_ok(c, "COMMIT", m->name);
        if (rc) {
            PQclear(PQexec(c, "ROLLBACK"));
            break;
        }
        (*applied)++;
        LOG(LOG_INFO, "migration applied", L_INT("version", m->version), L_STR("name", m->name));
    }
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    PQfinish(c);
    return rc;
}
