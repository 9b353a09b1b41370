/*
 * cli_pg.h - what the short-lived commands that speak blocking libpq
 * (`trireme migrate`, `trireme schedules`, `trireme leader`) and beat's
 * start-up file reconcile share: where the database is, a blocking
 * connection that says why it failed, and libpq messages folded onto one
 * line.
 */
#ifndef TRIREME_MODULES_JOBS_CLI_PG_H
#define TRIREME_MODULES_JOBS_CLI_PG_H

#include "kernel/pq.h"

/* --database-url=, else DATABASE_DIRECT_URL, else DATABASE_URL; NULL if none. */
const char *cli_database_url(int argc, char **argv);
/* A connection, or NULL after one line "trireme CMD: why" on stderr. */
PGconn *cli_connect(const char *cmd, const char *url);
/* libpq's messages end in newlines and carry DETAIL/CONTEXT lines: our
 * errors are one line, so fold them in place. */
void cli_one_line(char *msg);
/* One line "trireme CMD: error" for a failed result, which is cleared; 1. */
int cli_query_failed(const char *cmd, PGresult *r);

#endif
