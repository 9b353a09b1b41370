-- 008_pull.sql - jobs of pull kinds, claimed by external workers (POST /v1/claim).
--
-- A pull kind's jobs carry pull = true (set at enqueue from the kinds the
-- API knows) and live in their own partial indexes, so the built-in
-- worker's claim, which reads jobs_dequeue_push, never sees them and pays
-- nothing for them: no filter skips a backlog of pull jobs no external
-- worker takes. Each row is in exactly one of the two dequeue indexes, so
-- an enqueue maintains as many indexes as before.
--
-- A pulled job's worker_id is 'pull:' and the hex SHA-256 of its attempt's
-- secret: the token handed to the client is '<attempt>.<secret>', and every
-- callback is fenced by that hash and the attempt, as the built-in
-- worker's writes are by its id and attempt. The secret itself is stored
-- nowhere, so GET /v1/jobs/{id} (which shows worker_id) does not leak it.

ALTER TABLE trireme.jobs ADD COLUMN IF NOT EXISTS pull boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS jobs_dequeue_push ON trireme.jobs (queue, priority DESC, run_at, id)
    WHERE status = 'pending' AND NOT pull;
CREATE INDEX IF NOT EXISTS jobs_due_push ON trireme.jobs (queue, run_at)
    WHERE status = 'pending' AND NOT pull;
DROP INDEX IF EXISTS trireme.jobs_dequeue;
DROP INDEX IF EXISTS trireme.jobs_due;

-- A claim: one ordered range scan per (kind, queue).
CREATE INDEX IF NOT EXISTS jobs_dequeue_pull ON trireme.jobs (kind, queue, priority DESC, run_at, id)
    WHERE status = 'pending' AND pull;
-- Waiting claims: is any pull job due, and when (one step down).
CREATE INDEX IF NOT EXISTS jobs_due_pull ON trireme.jobs (run_at)
    WHERE status = 'pending' AND pull;

-- 004's enqueue_batch, storing the input's "pull".
CREATE OR REPLACE FUNCTION trireme.enqueue_batch(jobs jsonb)
RETURNS TABLE (ord bigint, id bigint, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH input AS (
            SELECT nextval(pg_get_serial_sequence('trireme.jobs', 'id')) AS id, t.ord,
                   coalesce(t.e->>'queue', 'default') AS queue, t.e->>'kind' AS kind,
                   coalesce(t.e->'payload', '{}') AS payload,
                   coalesce((t.e->>'priority')::int, 0) AS priority,
                   coalesce(to_timestamp((t.e->>'run_at_ms')::float8 / 1000),
                            now() + coalesce((t.e->>'delay_ms')::bigint, 0) * interval '1 ms') AS run_at,
                   coalesce((t.e->>'max_attempts')::int, 5) AS max_attempts,
                   t.e->>'unique_key' AS unique_key, (t.e->>'timeout_ms')::int AS timeout_ms,
                   coalesce((t.e->>'pull')::boolean, false) AS pull
            FROM jsonb_array_elements(enqueue_batch.jobs) WITH ORDINALITY AS t(e, ord)),
        ins AS (
            INSERT INTO trireme.jobs (id, queue, kind, payload, priority, run_at, max_attempts,
                                      unique_key, timeout_ms, pull)
            SELECT id, queue, kind, payload, priority, run_at, max_attempts, unique_key,
                   timeout_ms, pull
            FROM input ORDER BY ord
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            RETURNING id, unique_key)
        SELECT i.ord AS o, coalesce(a.id, b.id, j.id) AS jid, a.id IS NOT NULL AS made,
               i.unique_key AS ukey
        FROM input i
        LEFT JOIN ins a ON a.id = i.id
        LEFT JOIN ins b ON a.id IS NULL AND b.unique_key = i.unique_key
        LEFT JOIN trireme.jobs j ON a.id IS NULL AND b.id IS NULL AND j.unique_key = i.unique_key
        ORDER BY i.ord
    LOOP
        IF r.jid IS NULL THEN
            SELECT j.id INTO r.jid FROM trireme.jobs j WHERE j.unique_key = r.ukey;
        END IF;
        ord := r.o;
        id := r.jid;
        created := r.made;
        RETURN NEXT;
    END LOOP;
END $$;
