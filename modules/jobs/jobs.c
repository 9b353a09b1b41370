/*
 * jobs.c - the job store module: schema at start-up, CLI commands.
 *
 * Not a role: it starts with any role and only acts when DATABASE_URL is
 * set. Migrations run here, before any loop exists, so their blocking
 * libpq calls block nothing.
 */
#include <string.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "modules/jobs/job_input.h"
#include "modules/jobs/migrate.h"
#include "modules/queue/queue.h"
#include "modules/schedules/schedules.h"

int jobs_cli_migrate(int argc, char **argv);
int jobs_cli_enqueue(int argc, char **argv);
int jobs_cli_jobs(int argc, char **argv);
int jobs_cli_leader(int argc, char **argv);

static int jobs_init(struct server *s)
{
    const struct config *cfg = s->cfg;
    if (!*cfg->database_url) {
        const struct queue_backend *qb = queue_backend_of(cfg);
        if (qb->needs & QUEUE_NEEDS_PG)
            LOG(LOG_INFO, "no DATABASE_URL: job API and worker are off",
                L_STR("queue_backend", qb->name));
        else
            LOG(LOG_INFO, "no DATABASE_URL: the sql kind is off (the jobs live elsewhere)",
                L_STR("queue_backend", qb->name));
        return 0;
    }
    if (!cfg->migrate_auto)
        return 0;
    /* Advisory locks need a session: through a transaction pooler only the
     * direct URL can hold one. */
    const char *url = *cfg->database_direct_url ? cfg->database_direct_url : cfg->database_url;
    int applied = 0;
    if (migrate_run(url, &applied))
        return -1;
    LOG(LOG_INFO, "schema up to date", L_INT("applied", applied),
        L_INT("version", migrations_count ? migrations[migrations_count - 1].version : 0));
    return 0;
}

static const struct module_command jobs_commands[] = {
    {"migrate", "apply the database schema (DATABASE_URL) and exit", jobs_cli_migrate},
    {"enqueue", "add a job: trireme enqueue KIND [--payload=JSON] [--queue=Q] ...",
     jobs_cli_enqueue},
    {"jobs", "inspect and control jobs: list, get ID, cancel ID, retry ID", jobs_cli_jobs},
    {"leader", "who leads each election: token, holder, backend, since", jobs_cli_leader},
    {NULL, NULL, NULL},
};

static const struct module_limit jobs_limits[] = {
    {"JOB_NAME_MAX", JOB_NAME_MAX, "bytes", "a job's kind, queue or unique_key"},
    {"JOB_MAX_ATTEMPTS", JOB_MAX_ATTEMPTS, "", "a job's max_attempts"},
    {"JOB_BATCH_MAX", JOB_BATCH_MAX, "", "jobs in one POST /v1/jobs array"},
    {"JOB_DELAY_MAX_MS", JOB_DELAY_MAX_MS, "ms", "a job's delay (10 years)"},
    {"SCHED_NAME_MAX", SCHED_NAME_MAX, "bytes", "a schedule's name"},
    {"SCHED_CRON_MAX", SCHED_CRON_MAX, "bytes", "a cron expression"},
    {"SCHED_ZONE_NAME_MAX", SCHED_ZONE_NAME_MAX, "bytes", "a schedule's time zone name"},
    {"SCHED_CATCHUP_MAX_MS", SCHED_CATCHUP_MAX_MS, "ms", "a schedule's catchup_window"},
    {"SCHED_JITTER_MAX_MS", SCHED_JITTER_MAX_MS, "ms", "a schedule's jitter"},
    {NULL, 0, NULL, NULL},
};

const struct module jobs_module = {
    .name = "jobs",
    .summary = "the PostgreSQL job store: schema, enqueue, status",
    .is_role = false,
    .unmet = queue_backend_unmet, /* the job store is every role's */
    .init = jobs_init,
    .commands = jobs_commands,
    .limits = jobs_limits,
};
