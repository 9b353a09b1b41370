/*
 * sql_statements.c - reading --sql-jobs; see sql_statements.h.
 */
#include "modules/kinds/sql_statements.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/xalloc.h"

#define SQL_STATEMENT_LINE_MAX 8192 /* bytes of one `name: SQL` line */

int sql_statements_load(const char *path, struct sql_statements *st)
{
    if (!*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        LOG(LOG_ERROR, "worker: cannot read --sql-jobs file", L_STR("path", path),
            L_STR("error", strerror(errno)));
        return -1;
    }
    char line[SQL_STATEMENT_LINE_MAX];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            LOG(LOG_ERROR, "worker: --sql-jobs line is not `name: SQL`", L_STR("path", path),
                L_INT("line", lineno));
            fclose(f);
            return -1;
        }
        *colon = 0;
        char *sql = colon + 1;
        while (*sql == ' ')
            sql++;
        st->v = xrealloc(st->v, (st->n + 1) * sizeof(*st->v));
        st->v[st->n].name = xstrdup(line);
        st->v[st->n].sql = xstrdup(sql);
        st->n++;
    }
    fclose(f);
    LOG(LOG_INFO, "worker: named SQL statements loaded", L_STR("path", path),
        L_INT("count", st->n));
    return 0;
}

const char *sql_statements_find(const struct sql_statements *st, const char *name)
{
    for (unsigned i = 0; st && i < st->n; i++)
        if (!strcmp(st->v[i].name, name))
            return st->v[i].sql;
    return NULL;
}

void sql_statements_free(struct sql_statements *st)
{
    for (unsigned i = 0; i < st->n; i++) {
        free(st->v[i].name);
        free(st->v[i].sql);
    }
    free(st->v);
    st->v = NULL;
    st->n = 0;
}
