/*
 * sql_statements.h - the named statements of --sql-jobs, which the `sql`
 * kind runs: a file of `name: SQL` lines ('#' comments), read once at
 * start, read-only afterwards.
 */
#ifndef TRIREME_MODULES_KINDS_SQL_STATEMENTS_H
#define TRIREME_MODULES_KINDS_SQL_STATEMENTS_H

struct sql_statements {
    struct sql_statement {
        char *name, *sql;
    } * v;
    unsigned n;
};

/* path "" loads nothing. 0, or -1 after a log line naming the problem. */
int sql_statements_load(const char *path, struct sql_statements *st);
const char *sql_statements_find(const struct sql_statements *st, const char *name);
void sql_statements_free(struct sql_statements *st);

#endif
