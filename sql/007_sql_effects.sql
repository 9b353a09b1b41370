-- 007_sql_effects.sql - the `sql` job kind runs its statement once per job.
--
-- The statement and a row here keyed by the job's id commit in the same
-- statement (modules/kinds/kind_sql.c wraps it in a CTE that also inserts
-- here). An attempt that finds the row already there - the first attempt
-- committed, but its completion was lost with a connection, a restart or a
-- lease - raises SQLSTATE TR001 from trireme.sql_effect_once, which rolls
-- the whole statement back, and the job succeeds with the result stored by
-- the attempt that ran. This holds on both queue backends: the row lives in
-- the same database as the statement's effect, whatever stores the job.
-- Rows go after --retention-succeeded (modules/jobs/retention.c).
CREATE TABLE IF NOT EXISTS trireme.sql_effects (
    job_id     bigint      PRIMARY KEY,
    result     jsonb       NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sql_effects_applied ON trireme.sql_effects (applied_at);

-- result: what this attempt inserted, NULL when an earlier one had.
CREATE OR REPLACE FUNCTION trireme.sql_effect_once(result jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF result IS NULL THEN
        RAISE EXCEPTION 'this job''s statement already ran' USING ERRCODE = 'TR001';
    END IF;
    RETURN result;
END $$;
