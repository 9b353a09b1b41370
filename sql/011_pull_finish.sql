-- 011_pull_finish.sql - the outcomes of many pulled jobs in one statement
-- (POST /v1/outcomes): an external worker that claimed 100 jobs reports
-- them with one UPDATE and one commit, not 100.
--
-- trireme.pull_finish is now the one copy of the complete and fail
-- transitions: 009's pull_complete and pull_fail become calls of it with a
-- single outcome, so the callbacks, the batch and the SQL functions workers
-- call in their own transactions (trireme.complete/fail) make the same
-- changes.
--
-- $1: [{"id", "token" ('<attempt>.<secret>'), "ok", "result" (ok), "error",
-- "retry", "retry_in_ms" (not ok: NULL for the job's backoff, 1 s doubled
-- per attempt, at most an hour)}], ids distinct (the caller checks). Per
-- outcome, in input order: its answer {"id","status","lease_expires_at"}
-- when the fence held, else NULL and what the job is: NULL (no such job),
-- 'w' (this attempt still runs under the built-in worker: an http kind's
-- 202 hand-off may not be written yet) or 'x' (the token is stale).
CREATE OR REPLACE FUNCTION trireme.pull_finish(outcomes jsonb)
RETURNS TABLE (ord int, id bigint, answer jsonb, held text)
LANGUAGE sql VOLATILE AS $$
    WITH v AS MATERIALIZED (
        SELECT o.ord::int AS ord, (o.x->>'id')::bigint AS id,
               trireme.token_attempt(o.x->>'token') AS attempt,
               'pull:' || encode(sha256(convert_to(trireme.token_secret(o.x->>'token'), 'UTF8')),
                                 'hex') AS wid,
               coalesce((o.x->>'ok')::boolean, true) AS ok,
               CASE WHEN jsonb_typeof(o.x->'result') <> 'null' THEN o.x->'result' END AS result,
               coalesce(o.x->>'error', 'failed by its worker') AS error,
               coalesce((o.x->>'retry')::boolean, true) AS retry,
               (o.x->>'retry_in_ms')::bigint AS delay_ms
        FROM jsonb_array_elements($1) WITH ORDINALITY AS o(x, ord)),
    u AS (
        UPDATE trireme.jobs j SET
            status = CASE WHEN v.ok THEN 'succeeded' WHEN NOT v.retry THEN 'failed'
                          WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'pending' END,
            result = CASE WHEN v.ok THEN v.result ELSE j.result END,
            progress_percent = CASE WHEN v.ok THEN 100 ELSE j.progress_percent END,
            run_at = CASE WHEN NOT v.ok AND v.retry AND j.attempts < j.max_attempts THEN now() +
                          coalesce(v.delay_ms, least(1000 * power(2, j.attempts - 1), 3600000)::bigint)
                          * interval '1 ms' ELSE j.run_at END,
            finished_at = CASE WHEN v.ok OR NOT v.retry OR j.attempts >= j.max_attempts
                               THEN now() END,
            last_error = CASE WHEN v.ok THEN j.last_error ELSE v.error END,
            worker_id = CASE WHEN v.ok THEN j.worker_id END,
            lease_until = NULL, updated_at = now()
        FROM v
        WHERE j.id = v.id AND j.status = 'running' AND j.attempts = v.attempt
        AND j.worker_id = v.wid
        RETURNING j.id, jsonb_build_object('id', j.id, 'status', j.status,
                                           'lease_expires_at', j.lease_until) AS answer)
    SELECT v.ord, v.id, u.answer,
           CASE WHEN u.answer IS NULL THEN
               (SELECT CASE WHEN t.status = 'running' AND t.attempts = v.attempt
                            AND t.worker_id NOT LIKE 'pull:%' THEN 'w' ELSE 'x' END
                FROM trireme.jobs t WHERE t.id = v.id) END
    FROM v LEFT JOIN u ON u.id = v.id
    ORDER BY v.ord
$$;

CREATE OR REPLACE FUNCTION trireme.pull_complete(id bigint, secret text, attempt int,
                                                 result jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT f.answer FROM trireme.pull_finish(jsonb_build_array(jsonb_build_object(
        'id', $1, 'token', $3 || '.' || $2, 'ok', true, 'result', $4))) f
$$;

CREATE OR REPLACE FUNCTION trireme.pull_fail(id bigint, secret text, attempt int,
                                             error text, retry boolean, delay_ms bigint)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT f.answer FROM trireme.pull_finish(jsonb_build_array(jsonb_build_object(
        'id', $1, 'token', $3 || '.' || $2, 'ok', false, 'error', $4, 'retry', $5,
        'retry_in_ms', $6))) f
$$;
