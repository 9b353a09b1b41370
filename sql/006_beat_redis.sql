-- 006_beat_redis.sql - recording slots whose jobs beat enqueued in Redis.
--
-- Idempotent, like every migration. With --queue-backend=redis the job
-- cannot commit in the same transaction as its slot row, so beat works in
-- this order (modules/queue/redis_beat.c):
--
--   1. enqueue each due slot's job in Redis with the unique_key
--      'beat:<schedule_id>:<slot unix s>': a second beat, or a retry after
--      a crash between the two steps, gets the same job id back;
--   2. record the slots here, with those ids.
--
-- A crash after 1 leaves a job in Redis and no row: the slot is unhandled
-- here, so the next beat that fires it (as a missed slot, by its misfire
-- policy) gets the same job id back and records it. A running beat whose
-- record fails retries the record with the ids it has, not the enqueue.
-- The one limit: the unique key lives as long as the job's hash (until
-- --result-ttl after the job finished). A missed slot is re-fired only
-- within its schedule's catchup_window, so with catchup_window at most
-- --result-ttl (the defaults, 1 h each) a slot never gets a second job;
-- with a longer window a slot left unrecorded by a crashed beat and
-- re-fired more than --result-ttl after its job finished would.
--
-- Arrays of equal length, one element per slot: schedule ids, slot times,
-- Redis job ids (NULL: skipped by overlap policy skip_if_running), the job
-- that caused a skip, reasons ('due' or 'catchup') and the next fire time
-- beat computed. A slot already recorded (another beat) is kept, except
-- that a skip recorded for it gives way to a job, since the job exists in
-- Redis. A deleted schedule records nothing. Returns the rows recorded or
-- changed here: schedule id, slot, job id, blocked_by.
CREATE OR REPLACE FUNCTION trireme.record_schedule_fires(ids bigint[], slots timestamptz[],
                                                         job_ids bigint[], blocked bigint[],
                                                         reasons text[],
                                                         next_fires timestamptz[])
RETURNS TABLE (schedule_id bigint, slot timestamptz, job_id bigint, blocked_by bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- In id order, as fire_schedules does: two beats never deadlock, and a
    -- concurrent delete either ran first (no row) or waits for us.
    PERFORM 1 FROM trireme.schedules s WHERE s.id = ANY (record_schedule_fires.ids)
    ORDER BY s.id FOR UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT DISTINCT ON (t.id, t.slot) t.id, t.slot, t.jid, t.blocked, t.reason, t.next_fire
        FROM unnest(record_schedule_fires.ids, record_schedule_fires.slots,
                    record_schedule_fires.job_ids, record_schedule_fires.blocked,
                    record_schedule_fires.reasons, record_schedule_fires.next_fires)
             AS t(id, slot, jid, blocked, reason, next_fire)
        WHERE EXISTS (SELECT 1 FROM trireme.schedules s WHERE s.id = t.id)
        ORDER BY t.id, t.slot),
    ins AS (
        INSERT INTO trireme.schedule_fires AS f (schedule_id, slot, job_id, reason)
        SELECT i.id, i.slot, i.jid, CASE WHEN i.jid IS NULL THEN 'overlap' ELSE i.reason END
        FROM input i
        ON CONFLICT ON CONSTRAINT schedule_fires_pkey DO UPDATE
            SET job_id = excluded.job_id, reason = excluded.reason
            WHERE f.job_id IS NULL AND excluded.job_id IS NOT NULL
        RETURNING f.schedule_id AS id, f.slot, f.job_id AS jid),
    per AS (
        SELECT i.id, max(i.slot) AS last_slot,
               (array_agg(i.next_fire ORDER BY i.slot DESC))[1] AS next_fire,
               (array_agg(i.jid ORDER BY i.slot DESC) FILTER (WHERE i.jid IS NOT NULL))[1] AS last_job
        FROM input i GROUP BY i.id),
    upd AS (
        UPDATE trireme.schedules s SET
            last_fire = greatest(s.last_fire, p.last_slot),
            next_fire = CASE WHEN s.last_fire IS NULL OR p.last_slot >= s.last_fire
                             THEN p.next_fire ELSE s.next_fire END,
            last_job_id = CASE WHEN s.last_fire IS NULL OR p.last_slot >= s.last_fire
                               THEN coalesce(p.last_job, s.last_job_id) ELSE s.last_job_id END
        FROM per p WHERE s.id = p.id
        RETURNING s.id)
    SELECT n.id, n.slot, n.jid, i.blocked
    FROM ins n JOIN input i ON i.id = n.id AND i.slot = n.slot
    WHERE (SELECT count(*) FROM upd) >= 0
    ORDER BY n.id, n.slot;
END $$;
