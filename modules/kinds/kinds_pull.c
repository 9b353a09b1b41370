/*
 * kinds_pull.c - pull kinds: declared like any other kind (so an enqueue
 * of an undeclared one still gets its 400), run by external workers that
 * claim them through POST /v1/claim (modules/web/api_pull.c).
 *
 * Their jobs are stored apart from the built-in worker's (a `pull` flag on
 * PostgreSQL, their own streams on Redis: see modules/queue/pull.h), so the
 * worker's claim never sees them. pull_kind_start is only the backstop for
 * a job that reached the worker by another road (an INSERT of the user's
 * own, a schedule written before the kind became a pull kind): it is failed
 * with a message saying so instead of run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"
#include "proto/csv_list.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kinds_file.h"

int pull_kind_parse(json_t *entry, struct declared_kind *d, const char **field, char *msg,
                    size_t cap)
{
    (void)d;
    const char *key;
    json_t *v;
    json_object_foreach(entry, key, v)
    {
        if (strcmp(key, "type")) {
            *field = key;
            snprintf(msg, cap, "is not a field of a pull kind (it has only \"type\")");
            return -1;
        }
    }
    return 0;
}

void pull_kind_start(struct job_run *r)
{
    char msg[200];
    snprintf(msg, sizeof(msg),
             "kind '%s' is run by external workers (POST /v1/claim), not by this worker: "
             "enqueue it through the API",
             r->kind->name);
    job_finish(r, NULL, msg, true);
}

bool job_kind_is_pull(const struct job_kind *k)
{
    return k && k->start == pull_kind_start;
}

int kinds_file_add_pull(struct kinds_file *f, const char *list, char *msg, size_t cap)
{
    const char *at = list, *p;
    size_t n;
    while (csv_next(&at, &p, &n)) {
        if (kinds_file_name_free(f, p, n, "--pull-kinds", msg, cap))
            return -1;
        struct declared_kind *d = kinds_file_append(f, p, n, KIND_TYPE_PULL);
        d->kind.summary = "run by external workers that pull it (POST /v1/claim)";
        d->kind.start = pull_kind_start;
    }
    return 0;
}
