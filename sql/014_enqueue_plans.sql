-- 014_enqueue_plans.sql - what enqueueing and claiming cost PostgreSQL:
-- (1) a lone job is one plain INSERT, (2) enqueue_batch never joins
-- trireme.jobs, (3) no plan kept for a session reads trireme.jobs whole.
--
-- (1) A batch of one job without a unique_key is one plain INSERT.
--
-- That is what POST /v1/jobs sends on a quiet server (pg_api.c coalesces
-- only the calls that arrive while an INSERT is in flight), and the general
-- path below costs it about 0.07 ms of PostgreSQL time more than
-- trireme.enqueue(): jsonb_array_elements, a sequence looked up by name,
-- three joins and a row-by-row loop, all for a row that cannot conflict.
-- Measured with pgbench, one client, synchronous_commit off (so the commit's
-- flush does not hide the statement), 5,000 calls, three rounds: 0.250-0.265
-- ms before, 0.180-0.196 ms with this path, trireme.enqueue() 0.165-0.190.
-- On enqueue->start latency the web's answer is the same time earlier.
--
-- The row is the same as the general path makes: same defaults, same
-- sequence (the column's identity), created true (without a unique_key
-- nothing can match it). Everything else takes the general path unchanged.
--
-- (2) enqueue_batch looks up an existing job's unique_key by itself,
-- never by joining the jobs table.
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
-- are all new, and batches without keys, now never read the table; that
-- lookup is planned afresh each time (3).
--
-- (3) No kept plan reads trireme.jobs whole.
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
