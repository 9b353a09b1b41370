-- 015_enqueue_batch_plan.sql - enqueue_batch looks up an existing job's
-- unique_key by itself, never by joining the jobs table.
--
-- The general path joined trireme.jobs on unique_key to find the job a
-- duplicate key matched. PL/pgSQL keeps a statement's plan for the whole
-- session, and a plan made while the table had no statistics (a fresh
-- database, or one just truncated: estimated 200 rows) joined by reading
-- the whole table, on every call, for as long as the connection lived.
-- bench/queue-pg part (b) on a fresh cluster: 6.7 ms of PostgreSQL time per
-- call of 16 jobs, and POST /v1/jobs at 3,700 jobs/s with PostgreSQL using
-- both CPUs; the same run against a database whose statistics were made
-- long before reached 9,000-10,000.
--
-- The join was only needed for jobs that were not created. The loop below
-- already looks each of those up by unique_key (an equality on the unique
-- index) with a fresh snapshot, so it also finds a key a concurrent enqueue
-- committed meanwhile, which is why the loop was there. Batches whose keys
-- are all new, and batches without keys, now never read the table. (That
-- lookup's own kept plan can still be a scan while the table has no
-- statistics, until autovacuum's first analyze replaces it, but it runs
-- only for a key that was already taken.) The lone-job path of 014 stays.
CREATE OR REPLACE FUNCTION trireme.enqueue_batch(jobs jsonb)
RETURNS TABLE (ord bigint, id bigint, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
    e jsonb := enqueue_batch.jobs->0;
BEGIN
    IF jsonb_array_length(enqueue_batch.jobs) = 1 AND NOT e ? 'unique_key' THEN
        INSERT INTO trireme.jobs (queue, kind, payload, priority, run_at, max_attempts, timeout_ms, pull)
        VALUES (coalesce(e->>'queue', 'default'), e->>'kind', coalesce(e->'payload', '{}'),
                coalesce((e->>'priority')::int, 0),
                coalesce(to_timestamp((e->>'run_at_ms')::float8 / 1000),
                         now() + coalesce((e->>'delay_ms')::bigint, 0) * interval '1 ms'),
                coalesce((e->>'max_attempts')::int, 5), (e->>'timeout_ms')::int,
                coalesce((e->>'pull')::boolean, false))
        RETURNING trireme.jobs.id INTO id;
        ord := 1;
        created := true;
        RETURN NEXT;
        RETURN;
    END IF;
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
        SELECT i.ord AS o, coalesce(a.id, b.id) AS jid, a.id IS NOT NULL AS made,
               i.unique_key AS ukey
        FROM input i
        LEFT JOIN ins a ON a.id = i.id
        LEFT JOIN ins b ON a.id IS NULL AND b.unique_key = i.unique_key
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
