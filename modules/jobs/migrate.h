/*
 * migrate.h - schema migrations compiled into the binary (from sql/).
 *
 * Applied in version order under a session advisory lock, each in its own
 * transaction, recorded in trireme.schema_migrations. Every file is also
 * idempotent on its own, so a half-recorded run is safe to repeat.
 * This runs before any loop starts (or from `trireme migrate`), so it uses
 * blocking libpq calls: there is no loop to block.
 */
#ifndef TRIREME_MODULES_JOBS_MIGRATE_H
#define TRIREME_MODULES_JOBS_MIGRATE_H

#include <stdio.h>

struct migration {
    unsigned version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migrations_count;

/* Returns 0, or 1 after logging what failed. applied: count newly applied. */
int migrate_run(const char *conninfo, int *applied);

#endif
