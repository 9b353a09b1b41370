-- 004_enqueue_batch_race.sql - enqueue_batch() under concurrent duplicates.
--
-- With 003's version, two batches carrying the same new unique_key at the
-- same moment could answer the loser without an id: ON CONFLICT waits for
-- the winner to commit and skips the row, but the statement's snapshot,
-- taken before that commit, cannot see the winner's row. Here the missing
-- ids are looked up by a second statement, which (READ COMMITTED) takes a
-- fresh snapshot after the winner committed.

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
                   t.e->>'unique_key' AS unique_key, (t.e->>'timeout_ms')::int AS timeout_ms
            FROM jsonb_array_elements(enqueue_batch.jobs) WITH ORDINALITY AS t(e, ord)),
        ins AS (
            INSERT INTO trireme.jobs (id, queue, kind, payload, priority, run_at, max_attempts,
                                      unique_key, timeout_ms)
            SELECT id, queue, kind, payload, priority, run_at, max_attempts, unique_key, timeout_ms
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
