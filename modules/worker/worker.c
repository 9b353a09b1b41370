/*
 * worker.c - the worker role as a module: its process-wide settings
 * (--kind-limits, --sql-jobs) and one worker core per loop on the queue
 * backend chosen at start (modules/worker/core.h, modules/queue/).
 */
#include <stdlib.h>

#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/kinds/sql_statements.h"
#include "modules/queue/queue.h"
#include "modules/registry.h"
#include "modules/worker/core.h"

/* Process-wide, built by worker_init, read-only afterwards. */
struct worker_shared {
    struct sql_statements sql;
    struct kind_limits limits;
};

const char *job_sql_statement(struct job_run *r, const char *name)
{
    const struct worker_shared *sh = r->loop->srv->module_state[MODULE_WORKER];
    return sh ? sql_statements_find(&sh->sql, name) : NULL;
}

static const char *worker_unmet(const struct config *cfg)
{
    return queue_backend_of(cfg)->worker->unmet(cfg);
}

static int worker_init(struct server *s)
{
    struct worker_shared *sh = xcalloc(1, sizeof(*sh));
    s->module_state[MODULE_WORKER] = sh;
    char msg[200];
    if (kind_limits_parse(s->cfg->kind_limits, &sh->limits, msg, sizeof(msg))) {
        LOG(LOG_ERROR, "--kind-limits is not valid", L_STR("error", msg));
        return -1;
    }
    return sql_statements_load(s->cfg->sql_jobs, &sh->sql);
}

static int worker_start(struct loop *l)
{
    const struct worker_shared *sh = l->srv->module_state[MODULE_WORKER];
    struct worker *w;
    int rc = worker_open(l, queue_backend_of(l->srv->cfg)->worker, &sh->limits, &w);
    if (rc == 0)
        l->modules[MODULE_WORKER] = w;
    return rc;
}

static void worker_stop(struct loop *l)
{
    worker_drain(l->modules[MODULE_WORKER]);
}

static void worker_wake(struct loop *l)
{
    struct worker *w = l->modules[MODULE_WORKER];
    if (w && w->cfg->worker_mode_leader)
        worker_want(w); /* leadership may have changed */
}

static void worker_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        worker_free(s->loops[i].modules[MODULE_WORKER]);
        s->loops[i].modules[MODULE_WORKER] = NULL;
    }
    struct worker_shared *sh = s->module_state[MODULE_WORKER];
    if (sh)
        sql_statements_free(&sh->sql);
    free(sh);
    s->module_state[MODULE_WORKER] = NULL;
}

static const struct module_limit worker_limits[] = {
    {"WORKER_MAX_QUEUES", WORKER_MAX_QUEUES, "", "queues in --queues"},
    {"WORKER_RETRY_BASE_MS", WORKER_RETRY_BASE_MS, "ms",
     "a failed attempt's first retry delay, doubled per attempt (+-25%)"},
    {"WORKER_RETRY_MAX_MS", WORKER_RETRY_MAX_MS, "ms", "the retry delay's ceiling"},
    {"WORKER_HARD_EXTRA_MS", WORKER_HARD_EXTRA_MS, "ms",
     "after a job's time limit, until its attempt fails and its slot is freed"},
    {"WORKER_LIMIT_CHECK_MS", WORKER_LIMIT_CHECK_MS, "ms", "a --kind-limits check in Redis"},
    {NULL, 0, NULL, NULL},
};

const struct module worker_module = {
    .name = "worker",
    .summary = "runs jobs from PostgreSQL (FOR UPDATE SKIP LOCKED) or Redis Streams: leases, "
               "retries, time limits",
    .is_role = true,
    .unmet = worker_unmet,
    .init = worker_init,
    .start = worker_start,
    .stop = worker_stop,
    .wake = worker_wake,
    .cleanup = worker_cleanup,
    .limits = worker_limits,
};
