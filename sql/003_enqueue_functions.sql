-- 003_enqueue_functions.sql - enqueue through functions whose plans are cached.
--
-- trireme.enqueue() as 001 defined it failed on every call ("column
-- reference unique_key is ambiguous": its parameter shares the column's
-- name). #variable_conflict use_column makes bare names mean columns;
-- parameters are always written qualified (enqueue.kind).
--
-- trireme.enqueue_batch() is what the API and CLI call: a PL/pgSQL body is
-- planned once per database session, where the same statement sent as
-- unnamed SQL is planned on every call. Unlike a prepared statement, this
-- works through transaction poolers too.
--
-- jobs_due finds the next delayed job without walking the backlog.

CREATE OR REPLACE FUNCTION trireme.enqueue(
    kind text,
    payload jsonb DEFAULT '{}',
    queue text DEFAULT 'default',
    run_at timestamptz DEFAULT NULL,
    priority int DEFAULT 0,
    max_attempts int DEFAULT 5,
    unique_key text DEFAULT NULL,
    timeout_ms int DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    jid bigint;
BEGIN
    INSERT INTO trireme.jobs AS j (queue, kind, payload, run_at, priority, max_attempts, unique_key, timeout_ms)
    VALUES (coalesce(enqueue.queue, 'default'), enqueue.kind, coalesce(enqueue.payload, '{}'),
            coalesce(enqueue.run_at, now()), coalesce(enqueue.priority, 0),
            coalesce(enqueue.max_attempts, 5), enqueue.unique_key, enqueue.timeout_ms)
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING j.id INTO jid;
    IF jid IS NULL THEN
        SELECT j.id INTO jid FROM trireme.jobs j WHERE j.unique_key = enqueue.unique_key;
    END IF;
    RETURN jid;
END $$;

-- jobs: a JSON array of validated, normalized jobs (run_at_ms or delay_ms).
-- One row per input, in order: its id, and whether it was created (false:
-- an existing job with the same unique_key, in the table or the batch).
CREATE OR REPLACE FUNCTION trireme.enqueue_batch(jobs jsonb)
RETURNS TABLE (ord bigint, id bigint, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT nextval(pg_get_serial_sequence('trireme.jobs', 'id')) AS id, t.ord,
               coalesce(t.e->>'queue', 'default') AS queue, t.e->>'kind' AS kind,
               coalesce(t.e->'payload', '{}') AS payload,
               coalesce((t.e->>'priority')::int, 0) AS priority,
               coalesce(to_timestamp((t.e->>'run_at_ms')::float8 / 1000),
                        now() + coalesce((t.e->>'delay_ms')::bigint, 0) * interval '1 ms') AS run_at,
               coalesce((t.e->>'max_attempts')::int, 5) AS max_attempts,
               t.e->>'unique_key' AS unique_key, (t.e->>'timeout_ms')::int AS timeout_ms
        FROM jsonb_array_elements(enqueue_batch.jobs) WITH ORDINALITY AS t(e, ord)),
    ins AS (
        INSERT INTO trireme.jobs (id, queue, kind, payload, priority, run_at, max_attempts,
                                  unique_key, timeout_ms)
        SELECT id, queue, kind, payload, priority, run_at, max_attempts, unique_key, timeout_ms
        FROM input ORDER BY ord
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
        RETURNING id, unique_key)
    SELECT i.ord, coalesce(a.id, b.id, j.id), a.id IS NOT NULL
    FROM input i
    LEFT JOIN ins a ON a.id = i.id
    LEFT JOIN ins b ON a.id IS NULL AND b.unique_key = i.unique_key
    LEFT JOIN trireme.jobs j ON a.id IS NULL AND b.id IS NULL AND j.unique_key = i.unique_key
    ORDER BY i.ord;
END $$;

CREATE INDEX IF NOT EXISTS jobs_due ON trireme.jobs (queue, run_at) WHERE status = 'pending';
