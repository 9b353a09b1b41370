-- 009_sql_functions.sql - the pull model as SQL functions, so a worker in any
-- language with a PostgreSQL driver claims, reports and finishes jobs inside
-- its own transaction: trireme.complete() commits exactly when the worker's
-- own writes do, and a rollback leaves the job running under its lease.
--
-- The trireme.pull_* functions are the one copy of the claim and of the
-- fenced callbacks; POST /v1/claim and /v1/jobs/{id}/... (pg_pull.c) call
-- them too, so both paths make the same state transitions and a job claimed
-- by one can be finished by the other with the same token.
--
-- Fencing (sql/008_pull.sql): the token is '<attempt>.<secret>', the row
-- keeps only 'pull:' || hex(sha256(secret)). The pull_* functions answer
-- NULL when the fence does not hold (HTTP turns that into 409/404); the
-- user-facing functions RAISE instead, SQLSTATE 'TR409' (stale token: the
-- lease expired and the job was retried or finished by someone else) or
-- 'TR404' (no such job), so a worker that lost its job cannot commit its
-- own writes believing the job is done: the error aborts its transaction.

-- $1 kinds jsonb, $2 queues jsonb, $3 limit, $4 lease ms. The ids come from
-- a LIMITed, materialized pick, and the UPDATE finds them through the
-- primary key (= ANY of the picked ids): the body is planned with its
-- parameters unknown, so the planner expects up to 10% of the table from
-- the pick and would otherwise hash-join a scan of all of trireme.jobs.
-- Those same estimates put the plan's cost past jit_above_cost, and JIT
-- compilation costs a hundred times what the claim does: jit is off for
-- this function.
CREATE OR REPLACE FUNCTION trireme.pull_claim(kinds jsonb, queues jsonb, lim int, lease_ms bigint)
RETURNS TABLE (job jsonb, id bigint, attempt int, secret text)
LANGUAGE sql VOLATILE SET jit = off AS $$
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
        j.id, j.attempts, s.secret
$$;

-- The fenced callbacks: $1 id, $2 secret, $3 attempt. Each answers
-- {"id","status","lease_expires_at"}, or NULL when the fence did not hold.
CREATE OR REPLACE FUNCTION trireme.pull_progress(id bigint, secret text, attempt int,
                                                 percent int, step text)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    UPDATE trireme.jobs j SET progress_percent = coalesce($4, j.progress_percent),
        current_step = coalesce($5, j.current_step), updated_at = now()
    WHERE j.id = $1 AND j.status = 'running' AND j.attempts = $3
    AND j.worker_id = 'pull:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')
    RETURNING jsonb_build_object('id', j.id, 'status', j.status, 'lease_expires_at', j.lease_until)
$$;

CREATE OR REPLACE FUNCTION trireme.pull_heartbeat(id bigint, secret text, attempt int,
                                                  lease_ms bigint)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    UPDATE trireme.jobs j SET lease_until = now() + $4 * interval '1 ms', updated_at = now()
    WHERE j.id = $1 AND j.status = 'running' AND j.attempts = $3
    AND j.worker_id = 'pull:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')
    RETURNING jsonb_build_object('id', j.id, 'status', j.status, 'lease_expires_at', j.lease_until)
$$;

CREATE OR REPLACE FUNCTION trireme.pull_complete(id bigint, secret text, attempt int,
                                                 result jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    UPDATE trireme.jobs j SET status = 'succeeded', result = $4, progress_percent = 100,
        finished_at = now(), lease_until = NULL, updated_at = now()
    WHERE j.id = $1 AND j.status = 'running' AND j.attempts = $3
    AND j.worker_id = 'pull:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')
    RETURNING jsonb_build_object('id', j.id, 'status', j.status, 'lease_expires_at', j.lease_until)
$$;

-- $4 error, $5 retry, $6 delay ms or NULL for the worker's backoff (1 s
-- doubled per attempt, at most an hour); at max_attempts a retry is 'dead'.
CREATE OR REPLACE FUNCTION trireme.pull_fail(id bigint, secret text, attempt int,
                                             error text, retry boolean, delay_ms bigint)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    UPDATE trireme.jobs j SET
        status = CASE WHEN NOT $5 THEN 'failed'
                      WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'pending' END,
        run_at = CASE WHEN $5 AND j.attempts < j.max_attempts THEN now() +
                      coalesce($6, least(1000 * power(2, j.attempts - 1), 3600000)::bigint)
                      * interval '1 ms' ELSE j.run_at END,
        finished_at = CASE WHEN NOT $5 OR j.attempts >= j.max_attempts THEN now() END,
        last_error = $4, worker_id = NULL, lease_until = NULL, updated_at = now()
    WHERE j.id = $1 AND j.status = 'running' AND j.attempts = $3
    AND j.worker_id = 'pull:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')
    RETURNING jsonb_build_object('id', j.id, 'status', j.status, 'lease_expires_at', j.lease_until)
$$;

-- --- the functions workers call ---------------------------------------------

-- A token's attempt (-1 when it is not '<attempt>.<secret>': matches nothing).
CREATE OR REPLACE FUNCTION trireme.token_attempt(token text)
RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN $1 ~ '^[0-9]{1,9}\.' THEN split_part($1, '.', 1)::int ELSE -1 END
$$;

CREATE OR REPLACE FUNCTION trireme.token_secret(token text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT substr($1, strpos($1, '.') + 1)
$$;

-- Raises TR409/TR404 when a callback's fence did not hold.
CREATE OR REPLACE FUNCTION trireme.pull_fenced(job_id bigint, answer jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF answer IS NOT NULL THEN
        RETURN answer;
    END IF;
    IF EXISTS (SELECT 1 FROM trireme.jobs WHERE id = job_id) THEN
        RAISE EXCEPTION 'trireme: job % is not held by this token', job_id
            USING ERRCODE = 'TR409',
                  HINT = 'the lease expired or the job was finished; drop this attempt''s work';
    END IF;
    RAISE EXCEPTION 'trireme: no job %', job_id USING ERRCODE = 'TR404';
END $$;

CREATE OR REPLACE FUNCTION trireme.lease_ms(lease interval)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'trireme: lease must be above 0 and at most 1 day, not %', lease
            USING ERRCODE = '22023';
    END IF;
    RETURN (extract(epoch FROM lease) * 1000)::bigint;
END $$;

-- Leases up to max pending pull jobs of these kinds and queues (queues
-- NULL: 'default', like POST /v1/claim), SKIP LOCKED: concurrent claimers
-- never get the same job. Returns at once (no waiting: poll, or LISTEN
-- trireme_jobs).
CREATE OR REPLACE FUNCTION trireme.claim(kinds text[], queues text[] DEFAULT NULL,
                                         max int DEFAULT 1, lease interval DEFAULT '30s')
RETURNS TABLE (id bigint, kind text, queue text, attempt int, max_attempts int,
               payload jsonb, token text, lease_expires_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    IF kinds IS NULL OR cardinality(kinds) = 0 THEN
        RAISE EXCEPTION 'trireme: kinds must name at least one kind' USING ERRCODE = '22023';
    END IF;
    IF max IS NULL OR max < 1 OR max > 1000 THEN
        RAISE EXCEPTION 'trireme: max must be 1..1000, not %', max USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
        SELECT c.id, c.job->>'kind', c.job->>'queue', c.attempt,
               (c.job->>'max_attempts')::int, c.job->'payload', c.job->>'token',
               (c.job->>'lease_expires_at')::timestamptz
        FROM trireme.pull_claim(to_jsonb(kinds), to_jsonb(coalesce(queues, ARRAY['default'])),
                                max, trireme.lease_ms(lease)) c;
END $$;

-- Extends the lease to now() + lease; returns the new expiry.
CREATE OR REPLACE FUNCTION trireme.heartbeat(id bigint, token text, lease interval DEFAULT '30s')
RETURNS timestamptz LANGUAGE sql AS $$
    SELECT (trireme.pull_fenced($1, trireme.pull_heartbeat($1, trireme.token_secret($2),
            trireme.token_attempt($2), trireme.lease_ms($3)))->>'lease_expires_at')::timestamptz
$$;

-- progress_percent / current_step (NULL keeps the previous value).
CREATE OR REPLACE FUNCTION trireme.progress(id bigint, token text, percent int,
                                            step text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    SELECT trireme.pull_fenced($1, trireme.pull_progress($1, trireme.token_secret($2),
           trireme.token_attempt($2), $3, $4))
$$;

-- The job succeeds when the calling transaction commits.
CREATE OR REPLACE FUNCTION trireme.complete(id bigint, token text, result jsonb DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    SELECT trireme.pull_fenced($1, trireme.pull_complete($1, trireme.token_secret($2),
           trireme.token_attempt($2), $3))
$$;

-- Fails this attempt. retry (the default) re-queues it after retry_in, or
-- after the job's backoff when retry_in is NULL, or makes it 'dead' at
-- max_attempts; retry = false makes it 'failed' at once. Returns the new
-- status: 'pending', 'dead' or 'failed'.
CREATE OR REPLACE FUNCTION trireme.fail(id bigint, token text, error text,
                                        retry_in interval DEFAULT NULL, retry boolean DEFAULT true)
RETURNS text LANGUAGE sql AS $$
    SELECT trireme.pull_fenced($1, trireme.pull_fail($1, trireme.token_secret($2),
           trireme.token_attempt($2), coalesce($3, 'failed by its worker'), coalesce($5, true),
           CASE WHEN $4 IS NULL THEN NULL
                ELSE greatest((extract(epoch FROM $4) * 1000)::bigint, 0) END))->>'status'
$$;
