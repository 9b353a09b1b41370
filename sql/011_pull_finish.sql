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
-- pull_finish and pull_claim (009's, same body) are PL/pgSQL: a LANGUAGE
-- sql function that is not inlined plans its statement again on every
-- call, which for these two cost as much as running them (1.5 ms of a
-- 100-job claim); PL/pgSQL keeps the plan for the session. Both plans
-- are made for unknown parameters (the generic plan), which is why each
-- finds its rows through the primary key (= ANY of an array of ids)
-- rather than trusting a row estimate: a hash join over every running
-- job is what the planner picks otherwise.
--
-- $1: [{"id", "token" ('<attempt>.<secret>'), "ok", "result" (ok), "error",
-- "retry", "retry_in_ms" (not ok: NULL for the job's backoff, 1 s doubled
-- per attempt, at most an hour)}], ids distinct (the caller checks). Per
-- outcome, in input order: the job's new status when the fence held (its
-- lease is gone: complete and fail end the attempt), else NULL and what
-- the job is: NULL (no such job),
-- 'w' (this attempt still runs under the built-in worker: an http kind's
-- 202 hand-off may not be written yet) or 'x' (the token is stale).
CREATE OR REPLACE FUNCTION trireme.pull_finish(outcomes jsonb)
RETURNS TABLE (ord int, id bigint, status text, held text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
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
        WHERE j.id = ANY (ARRAY(SELECT w.id FROM v w)) AND j.id = v.id
        AND j.status = 'running' AND j.attempts = v.attempt
        AND j.worker_id = v.wid
        RETURNING j.id, j.status)
    SELECT v.ord, v.id, u.status,
           CASE WHEN u.status IS NULL THEN
               (SELECT CASE WHEN t.status = 'running' AND t.attempts = v.attempt
                            AND t.worker_id NOT LIKE 'pull:%' THEN 'w' ELSE 'x' END
                FROM trireme.jobs t WHERE t.id = v.id) END
    FROM v LEFT JOIN u ON u.id = v.id
    ORDER BY v.ord;
END $$;

-- 009's claim, unchanged but for the language (see above).
CREATE OR REPLACE FUNCTION trireme.pull_claim(kinds jsonb, queues jsonb, lim int, lease_ms bigint)
RETURNS TABLE (job jsonb, id bigint, attempt int, secret text)
LANGUAGE plpgsql VOLATILE SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH picked AS MATERIALIZED (
        SELECT x.id, gen_random_uuid()::text AS secret
        FROM jsonb_array_elements_text($1) AS k(name)
        CROSS JOIN jsonb_array_elements_text($2) AS q(name) CROSS JOIN LATERAL (
            SELECT t.id, t.priority, t.run_at FROM trireme.jobs t
            WHERE t.status = 'pending' AND t.pull AND t.kind = k.name AND t.queue = q.name
            AND t.run_at <= now()
            ORDER BY t.priority DESC, t.run_at, t.id LIMIT $3 FOR UPDATE SKIP LOCKED) x
        ORDER BY x.priority DESC, x.run_at, x.id LIMIT $3)
    UPDATE trireme.jobs j SET status = 'running', attempts = j.attempts + 1,
        worker_id = 'pull:' || encode(sha256(convert_to(s.secret, 'UTF8')), 'hex'),
        lease_until = now() + $4 * interval '1 ms', started_at = now(),
        updated_at = now(), progress_percent = NULL, current_step = NULL
    FROM picked s
    WHERE j.id = ANY (ARRAY(SELECT p.id FROM picked p)) AND j.id = s.id
    RETURNING jsonb_build_object('id', j.id, 'kind', j.kind, 'queue', j.queue,
        'attempt', j.attempts, 'max_attempts', j.max_attempts, 'payload', j.payload,
        'token', j.attempts || '.' || s.secret, 'lease_expires_at', j.lease_until),
        j.id, j.attempts, s.secret;
END $$;

CREATE OR REPLACE FUNCTION trireme.pull_complete(id bigint, secret text, attempt int,
                                                 result jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN f.status IS NOT NULL THEN jsonb_build_object('id', f.id, 'status', f.status,
        'lease_expires_at', NULL) END
    FROM trireme.pull_finish(jsonb_build_array(jsonb_build_object(
        'id', $1, 'token', $3 || '.' || $2, 'ok', true, 'result', $4))) f
$$;

CREATE OR REPLACE FUNCTION trireme.pull_fail(id bigint, secret text, attempt int,
                                             error text, retry boolean, delay_ms bigint)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN f.status IS NOT NULL THEN jsonb_build_object('id', f.id, 'status', f.status,
        'lease_expires_at', NULL) END
    FROM trireme.pull_finish(jsonb_build_array(jsonb_build_object(
        'id', $1, 'token', $3 || '.' || $2, 'ok', false, 'error', $4, 'retry', $5,
        'retry_in_ms', $6))) f
$$;
