/*
 * cli_queue.h - one call of the queue backend's API (queue_api.h) made by
 * a short-lived command (`trireme enqueue`, `trireme jobs`): the same
 * backend code the web role's /v1/jobs runs, on a loop of the command's
 * own with the same per-loop connections, so a backend's logic exists
 * once. The command validates its input before (job_input.h), as the web
 * role does.
 */
#ifndef TRIREME_MODULES_JOBS_CLI_QUEUE_H
#define TRIREME_MODULES_JOBS_CLI_QUEUE_H

#include <stdbool.h>

#include "modules/queue/queue_api.h"

/* Makes the call on api through ops, answering to fn with data. */
typedef struct queue_call *(*cli_queue_start)(const struct queue_api_ops *ops, void *api, void *arg,
                                              queue_answer_fn fn, void *data);
/* Shows the answer (stdout, or one line on stderr); the exit code. */
typedef int (*cli_queue_done)(void *arg, const struct queue_answer *a);

/* One of the settings cli_queue_run reads, which the commands accept
 * besides their own: --database-url=, --redis-url=, --queue-backend=,
 * --result-ttl=. */
bool cli_queue_flag(const char *a);

/* Picks the backend (--queue-backend=, QUEUE_BACKEND, postgres when
 * unset; 2 after one line when there is none of that name), connects what it needs
 * (--database-url=, DATABASE_DIRECT_URL, DATABASE_URL; --redis-url=, REDIS_URL; a cancelled job's
 * result lives --result-ttl=, TRIREME_RESULT_TTL, as `trireme run` has it), makes the call and
 * returns done's exit code: or 1 after one line "trireme CMD: why" on stderr when a setting is
 * missing or a connection cannot be made, as soon as its first attempt fails. */
int cli_queue_run(const char *cmd, int argc, char **argv, cli_queue_start start,
                  cli_queue_done done, void *arg);

#endif
