/*
 * kinds.c - the registry of job kinds: the built-in table, then the kinds
 * the --kinds file declared.
 *
 * Adding a built-in kind: write modules/kinds/kind_<name>.c with a const
 * struct job_kind, and list it here. The declared set is one pointer,
 * written only by job_kinds_declare() while no loop thread runs (the kinds
 * module's init and cleanup) and read-only in between, the same contract
 * as struct config: every thread sees it without a lock.
 */
#include <string.h>

#include "modules/kinds/kind.h"
#include "modules/kinds/kinds_file.h"

extern const struct job_kind kind_noop;
extern const struct job_kind kind_sleep;
extern const struct job_kind kind_sql;

static const struct job_kind *const builtin[] = {&kind_noop, &kind_sleep, &kind_sql};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

static const struct kinds_file *declared;

void job_kinds_declare(const struct kinds_file *f)
{
    declared = f;
}

unsigned job_kinds_count(void)
{
    return (unsigned)NBUILTIN + (declared ? declared->n : 0);
}

const struct job_kind *job_kind_at(unsigned i)
{
    if (i < NBUILTIN)
        return builtin[i];
    i -= (unsigned)NBUILTIN;
    return declared && i < declared->n ? &declared->v[i].kind : NULL;
}

const struct job_kind *job_kind_builtin(const char *name, size_t len)
{
    for (unsigned i = 0; i < NBUILTIN; i++)
        if (strlen(builtin[i]->name) == len && !memcmp(builtin[i]->name, name, len))
            return builtin[i];
    return NULL;
}

const struct job_kind *job_kind_find(const char *name, size_t len)
{
    const struct job_kind *k = job_kind_builtin(name, len);
    if (k || !declared)
        return k;
    for (unsigned i = 0; i < declared->n; i++)
        if (strlen(declared->v[i].kind.name) == len && !memcmp(declared->v[i].kind.name, name, len))
            return &declared->v[i].kind;
    return NULL;
}
