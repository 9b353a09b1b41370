/*
 * cli_pg.c - the database plumbing the blocking CLI commands share (see
 * cli_pg.h).
 */
#include "modules/jobs/cli_pg.h"

#include <stdio.h>
#include <string.h>

#include "modules/jobs/cli_flags.h"

const char *cli_database_url(int argc, char **argv)
{
    const char *u = cli_setting(argc, argv, "--database-url=", "DATABASE_DIRECT_URL");
    return u ? u : cli_setting(0, NULL, "", "DATABASE_URL");
}

void cli_one_line(char *m)
{
    size_t n = strlen(m);
    while (n && m[n - 1] == '\n')
        m[--n] = 0;
    for (char *p = m; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

PGconn *cli_connect(const char *cmd, const char *url)
{
    if (!url) {
        fprintf(stderr, "trireme %s: set DATABASE_URL (or --database-url=...)\n", cmd);
        return NULL;
    }
    const char *why;
    if (pq_load(&why)) {
        fprintf(stderr, "trireme %s: %s\n", cmd, why);
        return NULL;
    }
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        char *m = PQerrorMessage(c);
        cli_one_line(m);
        fprintf(stderr, "trireme %s: cannot connect to the database: %s\n", cmd, m);
        PQfinish(c);
        return NULL;
    }
    return c;
}

int cli_query_failed(const char *cmd, PGresult *r)
{
    char *m = PQresultErrorMessage(r);
    cli_one_line(m);
    fprintf(stderr, "trireme %s: %s\n", cmd, m);
    PQclear(r);
    return 1;
}
