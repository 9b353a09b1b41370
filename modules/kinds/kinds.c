/*
 * kinds.c - the one table of job kinds built into this binary.
 *
 * Adding a kind: write modules/kinds/kind_<name>.c with a const struct
 * job_kind, and list it here.
 */
#include <string.h>

#include "modules/kinds/kind.h"

extern const struct job_kind kind_noop;
extern const struct job_kind kind_sleep;
extern const struct job_kind kind_sql;

const struct job_kind *const job_kinds[] = {&kind_noop, &kind_sleep, &kind_sql};
const unsigned job_kinds_count = sizeof(job_kinds) / sizeof(job_kinds[0]);

const struct job_kind *job_kind_find(const char *name, size_t len)
{
    for (unsigned i = 0; i < job_kinds_count; i++)
        if (strlen(job_kinds[i]->name) == len && !memcmp(job_kinds[i]->name, name, len))
            return job_kinds[i];
    return NULL;
}
