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

/* Enqueue many in one statement. $1 is a JSON array of job objects already
 * validated by the caller (run_at as run_at_ms since the epoch, or
 * delay_ms), so no input can make the shared statement fail; unique_key duplicates (against the table or
 * within the batch) return the existing id with created = false. Ids are
 * drawn before the insert so each input row maps to its own.
 *
 * Fix (e2e test_unique_key_concurrent_requests_agree): this used ON CONFLICT
 * DO NOTHING and then looked the existing row up by unique_key. When the
 * conflicting row was inserted by a concurrent transaction that committed
 * after this statement's snapshot was taken, the lookup could not see it and
 * the answer carried a NULL id (`{"id":,...}`, invalid JSON). DO UPDATE (a
 * no-op assignment) returns the conflicting row however recent, so every
 * input row gets an id; it may touch a row only once per statement, hence
 * only the first occurrence of each key within the batch is inserted (`uk`)
 * and later ones map to it. Keys are inserted in key order so two batches
 * with overlapping keys wait on each other in one order, not deadlock. */
#define SQL_ENQUEUE_BATCH                                                                          \
    "WITH input AS ("                                                                             \
    "  SELECT nextval(pg_get_serial_sequence('trireme.jobs', 'id')) AS id, t.ord,"                \
    "         coalesce(t.e->>'queue', 'default') AS queue, t.e->>'kind' AS kind,"                   \
    "         coalesce(t.e->'payload', '{}') AS payload,"                                         \
    "         coalesce((t.e->>'priority')::int, 0) AS priority,"                                  \
    "         coalesce(to_timestamp((t.e->>'run_at_ms')::float8 / 1000),"                          \
    "                  now() + coalesce((t.e->>'delay_ms')::bigint, 0) * interval '1 ms') AS run_at," \
    "         coalesce((t.e->>'max_attempts')::int, 5) AS max_attempts,"                          \
    "         t.e->>'unique_key' AS unique_key, (t.e->>'timeout_ms')::int AS timeout_ms"           \
    "  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, ord)),"                        \
    " uk AS (SELECT unique_key, min(ord) AS ord FROM input WHERE unique_key IS NOT NULL"           \
    "  GROUP BY unique_key),"                                                                     \
    " ins AS ("                                                                                   \
    "  INSERT INTO trireme.jobs AS j (id, queue, kind, payload, priority, run_at, max_attempts,"  \
    "                                 unique_key, timeout_ms)"                                     \
    "  SELECT id, queue, kind, payload, priority, run_at, max_attempts, unique_key, timeout_ms"   \
    "  FROM input i WHERE i.unique_key IS NULL OR (i.unique_key, i.ord) IN (SELECT * FROM uk)"    \
    "  ORDER BY i.unique_key, i.ord"                                                              \
    "  ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL"                                     \
    "  DO UPDATE SET unique_key = j.unique_key"                                                   \
    "  RETURNING j.id, j.unique_key)"                                                             \
    " SELECT i.ord, coalesce(a.id, b.id) AS id, a.id IS NOT NULL AS created"                       \
    " FROM input i"                                                                               \
    " LEFT JOIN ins a ON a.id = i.id"                                                             \
    " LEFT JOIN ins b ON a.id IS NULL AND b.unique_key = i.unique_key"                            \
    " ORDER BY i.ord"

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
