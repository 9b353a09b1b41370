-- 016_fresh_plans.sql - no kept plan reads trireme.jobs whole.
--
-- PL/pgSQL keeps each statement's plan for the session; after five calls it
-- may keep one generic plan, made with the table's size at that moment.
-- Made while the table is empty and vacuumed (a fresh database, a drained
-- and vacuumed queue, a truncated table), that plan reads every row, even
-- to find one job by its primary key (PostgreSQL costs a scan of zero pages
-- at zero), and it stays until autovacuum next analyzes the table. A pull
-- worker that polls an empty queue makes exactly such a plan: with 60,000
-- jobs then enqueued, each pull_claim of 10 took 30.2 ms, against 1.1 ms
-- planned afresh (one session: 10 claims on the empty table, then the
-- jobs, then 300 claims timed).
--
-- The functions that read jobs on every call keep their plans but may not
-- make one that scans a table (enable_seqscan = off): pull_claim,
-- pull_finish, fire_schedules and pull_fenced. Each of their statements
-- has an index for what it reads, so nothing they do wants a scan; the
-- trap above then costs 1.1 ms a claim, and in steady state nothing
-- measurable (pgbench, claims of 10 from 60,000 jobs: 0.95 / 1.10 ms with
-- it, 1.06 / 1.29 ms without). Planning them afresh on every call instead
-- (plan_cache_mode = force_custom_plan) was tried: it cost pull workers
-- that complete each job by callback 18% of their throughput
-- (bench/user-code part c: 931 / 898 jobs/s against 1,170 / 1,087).
--
-- enqueue() and enqueue_batch() read jobs only to find the job a taken
-- unique_key belongs to, and a setting on a function costs each of its
-- calls (pgbench, a one-INSERT function with and without SET enable_seqscan
-- = off: 0.151 / 0.177 ms against 0.147 / 0.173 ms). So only that lookup is
-- planned afresh, by EXECUTE, and only when a key was taken: the common
-- path pays nothing.
ALTER FUNCTION trireme.pull_claim(jsonb, jsonb, int, bigint) SET enable_seqscan = off;
ALTER FUNCTION trireme.pull_finish(jsonb) SET enable_seqscan = off;
ALTER FUNCTION trireme.pull_fenced(bigint, jsonb) SET enable_seqscan = off;
ALTER FUNCTION trireme.fire_schedules(bigint[], timestamptz[], int[], text[], timestamptz[])
    SET enable_seqscan = off;

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
        EXECUTE 'SELECT id FROM trireme.jobs WHERE unique_key = $1' INTO jid USING enqueue.unique_key;
    END IF;
    RETURN jid;
END $$;

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
            EXECUTE 'SELECT id FROM trireme.jobs WHERE unique_key = $1' INTO r.jid USING r.ukey;
        END IF;
        ord := r.o;
        id := r.jid;
        created := r.made;
        RETURN NEXT;
    END LOOP;
END $$;
