/*
 * run.h - what a run does the same on every queue backend (worker.c on
 * PostgreSQL, queue_redis_run.c on Redis): time limits, stop requests and
 * the outcome's log line.
 *
 * The soft limit (the job's timeout) asks the kind to stop and arms the
 * hard limit; the hard limit never waits for the job's cooperation: the
 * backend's handler fails the attempt and takes the slot back (a Celery
 * soft limit that never fires while a task blocks is what this prevents).
 */
#ifndef TRIREME_MODULES_WORKER_RUN_H
#define TRIREME_MODULES_WORKER_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel/timer.h"
#include "modules/worker/worker.h"

#define HARD_LIMIT_EXTRA_MS 5000 /* after the soft limit, before the slot is taken back */

/* Ask the kind to stop (once): soft limit, cancellation or shutdown. */
void job_request_stop(struct job_run *r);
/* Set the run's limit timers: the shared soft limit and the backend's
 * on_hard (which starts with job_hard_limit_reason). */
void job_limits_init(struct job_run *r, timer_fn on_hard);
/* Stamp the start, arm the soft limit, start the kind. */
void job_run_start(struct job_run *r, struct loop *l);
/* The hard limit passed: log it and write the attempt's error into msg. */
void job_hard_limit_reason(const struct job_run *r, char *msg, size_t cap);
/* "job completed", "job failed" (will it retry?) or, for a run that lost
 * its job, "job stopped after cancellation". */
void job_log_outcome(const struct job_run *r, const char *error, bool permanent, uint64_t now_ns);

#endif
