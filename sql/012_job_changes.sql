-- 012_job_changes.sql - the change feed behind GET /v1/events: jobs in the
-- order of their last change, read as "changed after (updated_at, id)".
--
-- Every write of a job already stamps updated_at (001 and the functions),
-- so the feed needs no trigger and no extra write: only this index, which
-- lets the web read the few rows changed since its last poll, oldest first,
-- without scanning the table. Its cost on the queue's writes is measured
-- in bench/RESULTS.md (compare.sh, queue-pg before/after this migration).
CREATE INDEX IF NOT EXISTS jobs_changes ON trireme.jobs (updated_at, id);
