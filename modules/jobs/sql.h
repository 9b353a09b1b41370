/*
 * sql.h - every statement the job store runs, in one place.
 *
 * All parameterized, all single statements (pipeline mode and transaction
 * poolers need both). Rows come back as JSON text built by PostgreSQL, so
 * the API, the CLI and the worker render a job one way.
 */
#ifndef TRIREME_MODULES_JOBS_SQL_H
#define TRIREME_MODULES_JOBS_SQL_H

/* One job as the API shows it. */
#define JOB_JSON                                                                                   \
    "jsonb_build_object('id', j.id, 'queue', j.queue, 'kind', j.kind, 'payload', j.payload,"       \
    " 'status', j.status, 'priority', j.priority, 'attempts', j.attempts,"                        \
    " 'max_attempts', j.max_attempts, 'timeout_ms', j.timeout_ms, 'run_at', j.run_at,"             \
    " 'progress_percent', j.progress_percent, 'current_step', j.current_step,"                    \
    " 'result', j.result, 'last_error', j.last_error, 'unique_key', j.unique_key,"                 \
    " 'worker_id', j.worker_id, 'lease_until', j.lease_until, 'created_at', j.created_at,"         \
    " 'started_at', j.started_at, 'finished_at', j.finished_at, 'updated_at', j.updated_at)"

/* Enqueue many in one statement (sql/003: trireme.enqueue_batch). $1 is a
 * JSON array of job objects already validated by the caller (run_at as
 * run_at_ms since the epoch, or delay_ms), so no input can make a shared
 * batch fail. Rows: ord, id, created (false: unique_key matched a job). */
#define SQL_ENQUEUE_BATCH "SELECT ord, id, created FROM trireme.enqueue_batch($1::jsonb)"

#define SQL_JOB_GET "SELECT " JOB_JSON "::text FROM trireme.jobs j WHERE j.id = $1::bigint"

/* Newest first; $5 is the cursor (an id: rows below it), NULL for the first page. */
#define SQL_JOB_LIST                                                                               \
    "SELECT " JOB_JSON "::text, j.id FROM trireme.jobs j"                                         \
    " WHERE ($1::text IS NULL OR j.status = $1) AND ($2::text IS NULL OR j.queue = $2)"           \
    "   AND ($3::text IS NULL OR j.kind = $3) AND ($5::bigint IS NULL OR j.id < $5)"               \
    " ORDER BY j.id DESC LIMIT $4::int"

/* Cancel a job that has not finished; a running one stops at its worker's
 * next heartbeat (or at once, via NOTIFY trireme_cancel). */
#define SQL_JOB_CANCEL                                                                             \
    "WITH c AS (UPDATE trireme.jobs j SET status = 'cancelled', finished_at = now(),"              \
    "  updated_at = now(), lease_until = NULL"                                                    \
    "  WHERE j.id = $1::bigint AND j.status IN ('pending', 'running')"                            \
    "  RETURNING j.*, pg_notify('trireme_cancel', j.id::text))"                                   \
    " SELECT " JOB_JSON "::text, true FROM c j"                                                   \
    " UNION ALL SELECT " JOB_JSON "::text, false FROM trireme.jobs j"                              \
    "  WHERE j.id = $1::bigint AND NOT EXISTS (SELECT 1 FROM c)"

/* Redrive a dead, failed or cancelled job: a fresh set of attempts. */
#define SQL_JOB_RETRY                                                                              \
    "WITH r AS (UPDATE trireme.jobs j SET status = 'pending', attempts = 0, run_at = now(),"       \
    "  last_error = NULL, result = NULL, finished_at = NULL, worker_id = NULL,"                   \
    "  lease_until = NULL, progress_percent = NULL, current_step = NULL, updated_at = now()"     \
    "  WHERE j.id = $1::bigint AND j.status IN ('dead', 'failed', 'cancelled') RETURNING j.*)"    \
    " SELECT " JOB_JSON "::text, true FROM r j"                                                   \
    " UNION ALL SELECT " JOB_JSON "::text, false FROM trireme.jobs j"                              \
    "  WHERE j.id = $1::bigint AND NOT EXISTS (SELECT 1 FROM r)"

#endif
