-- 012_job_changes.sql - the change feed behind GET /v1/events, written only
-- while someone listens.
--
-- Why not an index on jobs (updated_at, id): every write of a job would
-- pay for it, listened to or not. Measured with bench/compare.sh (queue-pg
-- part a, 200,000 jobs, two rounds, bench/RESULTS.md 2026-12-07): -19%
-- jobs/s and +36% PostgreSQL CPU per job; it would also end HOT updates
-- for progress and heartbeats.
--
-- Instead a row trigger copies (updated_at, id) of each changed job into
-- job_changes, and only while events_listen says a web thread listens
-- (each web thread with open /v1/events streams extends `until` on every
-- poll; the lease lapses when they stop). The trigger's WHEN calls
-- events_listening(), declared IMMUTABLE on purpose: PostgreSQL folds an
-- immutable call without arguments when it prepares the WHEN qual, which
-- it does once per statement, so with nobody listening a write pays one
-- flag lookup per statement (not per row) and no insert. A flag change is
-- seen by the next statement. If a future PostgreSQL stopped folding it,
-- the cost would become one lookup per row: still correct.
--
-- `since` is where the current listening period began: changes before it
-- were not all recorded, so a stream cannot resume from there.

CREATE TABLE IF NOT EXISTS trireme.job_changes (
    updated_at timestamptz NOT NULL, -- the job's updated_at after the change
    id         bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS job_changes_at ON trireme.job_changes (updated_at, id);

CREATE TABLE IF NOT EXISTS trireme.events_listen (
    k     smallint PRIMARY KEY CHECK (k = 1), -- one row
    until timestamptz NOT NULL,               -- changes are recorded while now() < until
    since timestamptz NOT NULL                -- this listening period's start
);

CREATE OR REPLACE FUNCTION trireme.events_listening() RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN coalesce((SELECT until > now() FROM trireme.events_listen WHERE k = 1), false);
END $$;

CREATE OR REPLACE FUNCTION trireme.job_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trireme.job_changes (updated_at, id) VALUES (NEW.updated_at, NEW.id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS job_changes ON trireme.jobs;
CREATE TRIGGER job_changes AFTER INSERT OR UPDATE ON trireme.jobs
    FOR EACH ROW WHEN (trireme.events_listening()) EXECUTE FUNCTION trireme.job_changed();
