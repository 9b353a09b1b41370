/*
 * pg_worker_sql.h - the PostgreSQL worker's statements: claim, heartbeat, complete,
 * fail, reap, hand back. Every write is fenced by worker_id and attempt,
 * so a worker whose lease was taken over can never overwrite the rerun.
 */
#ifndef TRIREME_MODULES_QUEUE_PG_WORKER_SQL_H
#define TRIREME_MODULES_QUEUE_PG_WORKER_SQL_H

#include "modules/kinds/job.h"

/* $1 queues text[], $2 limit, $3 worker id, $4 lease ms. Commits at once:
 * no transaction stays open while the jobs run. One ordered range scan of
 * jobs_dequeue_push per queue (LATERAL), merged and cut to the limit: a plain
 * `queue = ANY($1)` makes PostgreSQL sort the whole backlog on every claim.
 * The ids go through ARRAY(...) so the UPDATE finds rows by primary key
 * instead of hashing the table. NOT pull matches the partial index's
 * predicate: jobs of pull kinds (sql/008) are not in it at all. */
#define SQL_CLAIM                                                                                  \
    "UPDATE trireme.jobs j SET status = 'running', attempts = j.attempts + 1, worker_id = $3,"     \
    "  lease_until = now() + $4::bigint * interval '1 ms', started_at = now(), updated_at = "      \
    "now(),"                                                                                       \
    "  progress_percent = NULL, current_step = NULL"                                               \
    " WHERE j.id = ANY(ARRAY("                                                                     \
    "  SELECT x.id FROM unnest($1::text[]) AS q(name) CROSS JOIN LATERAL ("                        \
    "   SELECT id, priority, run_at FROM trireme.jobs"                                             \
    "   WHERE status = 'pending' AND NOT pull AND queue = q.name AND run_at <= now()"              \
    "   ORDER BY priority DESC, run_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED) x"                \
    "  ORDER BY x.priority DESC, x.run_at, x.id LIMIT $2::int))"                                   \
    " RETURNING j.id, j.kind, j.payload::text, j.attempts, j.max_attempts, j.timeout_ms, j.queue," \
    "  left(j.last_error, " JOB_PREV_ERROR_HEAD_S "),"                                             \
    "  (extract(epoch FROM now() - j.run_at) * 1000000)::bigint"

/* Milliseconds until the next pending job of our queues is due, or NULL
 * when none is pending: one step down jobs_due_push (sql/008) per queue. NULL
 * must stay NULL (CASE, not GREATEST, which ignores NULLs): "due now" for
 * an empty queue would make every idle worker claim again without pause. */
#define SQL_NEXT_DUE                                                                               \
    "SELECT CASE WHEN min(d.run_at) <= now() THEN 0"                                               \
    "  ELSE ceil(extract(epoch FROM min(d.run_at) - now()) * 1000) END::bigint"                    \
    " FROM unnest($1::text[]) AS q(name) CROSS JOIN LATERAL ("                                     \
    "  SELECT run_at FROM trireme.jobs WHERE status = 'pending' AND NOT pull AND queue = q.name"   \
    "  ORDER BY run_at LIMIT 1) d"

/* $1 ids bigint[], $2 worker id, $3 lease ms. Rows not returned were
 * cancelled or taken over: those runs are told to stop. */
#define SQL_HEARTBEAT                                                                              \
    "UPDATE trireme.jobs SET lease_until = now() + $3::bigint * interval '1 ms', updated_at = "    \
    "now()"                                                                                        \
    " WHERE id = ANY($1::bigint[]) AND status = 'running' AND worker_id = $2 RETURNING id"

/* In --worker-mode=leader each entry carries the leader token it ran
 * under; once a newer token is recorded, its completion is refused. */
#define SQL_TOKEN_FENCE                                                                            \
    " AND (v.token = 0 OR v.token >= coalesce("                                                    \
    "  (SELECT token FROM trireme.leaders WHERE name = 'worker'), 0))"

/* $1 [{"id","attempt","token","result"}], $2 worker id. */
#define SQL_COMPLETE                                                                               \
    "UPDATE trireme.jobs j SET status = 'succeeded', result = v.result, progress_percent = 100,"   \
    "  finished_at = now(), lease_until = NULL, updated_at = now()"                                \
    " FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, attempt int, token bigint, result jsonb)" \
    " WHERE j.id = v.id AND j.status = 'running' AND j.worker_id = $2 AND j.attempts = "           \
    "v.attempt" SQL_TOKEN_FENCE " RETURNING j.id"

/* $1 [{"id","attempt","token","error","permanent","delay_ms"}], $2 worker id. */
#define SQL_FAIL                                                                                   \
    "UPDATE trireme.jobs j SET"                                                                    \
    "  status = CASE WHEN v.permanent THEN 'failed' WHEN j.attempts >= j.max_attempts THEN 'dead'" \
    "           ELSE 'pending' END,"                                                               \
    "  run_at = CASE WHEN v.permanent OR j.attempts >= j.max_attempts THEN j.run_at"               \
    "           ELSE now() + v.delay_ms * interval '1 ms' END,"                                    \
    "  finished_at = CASE WHEN v.permanent OR j.attempts >= j.max_attempts THEN now() END,"        \
    "  last_error = v.error, worker_id = NULL, lease_until = NULL, updated_at = now()"             \
    " FROM jsonb_to_recordset($1::jsonb)"                                                          \
    "  AS v(id bigint, attempt int, token bigint, error text, permanent bool, delay_ms bigint)"    \
    " WHERE j.id = v.id AND j.status = 'running' AND j.worker_id = $2 AND j.attempts = "           \
    "v.attempt" SQL_TOKEN_FENCE " RETURNING j.id"

/* Leases that expired (their worker died or hung): back to pending, the
 * lost attempt counted; dead when it was the last. Judged by now() on the
 * database, never by a worker's clock. run_at stays: the job keeps its
 * place, ahead of the backlog that came in while it was held (a run_at of
 * now() queued it behind all of it: 16 s to recover a killed worker's
 * jobs with a 3 s lease in the chaos suite). No index on lease_until
 * (sql/013): the running jobs are read through jobs_status_id, and the ids
 * go through ARRAY(...) so the UPDATE finds them by primary key. */
#define SQL_REAP                                                                                   \
    "UPDATE trireme.jobs j SET"                                                                    \
    "  status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'pending' END,"            \
    "  finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,"                       \
    "  last_error = 'lease expired: worker ' || coalesce(j.worker_id, '?') || ' stopped "          \
    "renewing',"                                                                                   \
    "  worker_id = NULL, lease_until = NULL, updated_at = now()"                                   \
    " WHERE j.id = ANY(ARRAY(SELECT id FROM trireme.jobs WHERE status = 'running'"                 \
    "  AND lease_until < now() ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED))"           \
    " RETURNING j.id, j.status"

/* Shutdown: unfinished jobs go straight back to pending (the interrupted
 * attempt is not counted: a deploy is not the job's failure), in their
 * place (run_at stays), so the next worker starts them first. */
#define SQL_HAND_BACK                                                                              \
    "UPDATE trireme.jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),"            \
    "  worker_id = NULL, lease_until = NULL, updated_at = now(),"                                  \
    "  last_error = 'handed back: worker shut down before the job finished'"                       \
    " WHERE id = ANY($1::bigint[]) AND status = 'running' AND worker_id = $2 RETURNING id"

/* --kind-limits: $1 id, $2 worker id, $3 ms until its turn. Not an attempt. */
#define SQL_DEFER                                                                                  \
    "UPDATE trireme.jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),"            \
    "  worker_id = NULL, lease_until = NULL, run_at = now() + $3::bigint * interval '1 ms',"       \
    "  updated_at = now()"                                                                         \
    " WHERE id = $1::bigint AND status = 'running' AND worker_id = $2"

/* A 202 of an http kind: the attempt stays running, now fenced by the
 * endpoint's token (as a pulled job's, sql/008) under a lease of its own;
 * the job callbacks finish it, the reaper retries it when the lease ends.
 * $1 id, $2 worker id, $3 attempt, $4 the token's secret, $5 lease ms. */
#define SQL_HAND_OFF                                                                               \
    "UPDATE trireme.jobs SET worker_id = 'pull:' || encode(sha256(convert_to($4, 'UTF8')), "       \
    "'hex'),"                                                                                      \
    "  lease_until = now() + $5::bigint * interval '1 ms', updated_at = now()"                     \
    " WHERE id = $1::bigint AND status = 'running' AND worker_id = $2 AND attempts = $3::int"      \
    " RETURNING id"

/* $1 id, $2 percent, $3 step, $4 worker id, $5 attempt. */
#define SQL_PROGRESS                                                                               \
    "UPDATE trireme.jobs SET progress_percent = $2::int, current_step = $3, updated_at = now()"    \
    " WHERE id = $1::bigint AND status = 'running' AND worker_id = $4 AND attempts = $5::int"

#endif
