-- 010_files.sql - files uploaded with a job (POST /v1/jobs as multipart/form-data).
--
-- A file is one trireme.job_files row (its name in the form, the client's
-- filename and content type, its size) and its content as numbered bytea
-- rows in trireme.job_file_chunks, one per chunk of the writer's chunk size
-- (bounded: the memory an upload takes in the web role).
--
-- Why bytea chunks and not a large object: the web role writes a file as
-- its bytes arrive, each chunk one parameterised INSERT queued in libpq's
-- pipeline mode on the ring, with no round trip waited for between them
-- and no more than a chunk in memory. Large objects are written through
-- lo_open/lowrite, libpq's fast-path calls, which pipeline mode refuses
-- (PQfn is not allowed in it), so each write would be a round trip; and a
-- large object is not removed by a foreign key or a DELETE of its owner
-- (it needs lo_unlink or vacuumlo), while chunk rows go with their file by
-- ON DELETE CASCADE. Reading back is one ordered index range scan.
--
-- job_id is text, the id the API shows, so one table serves both queue
-- backends. A file's rows are written as the upload arrives, with job_id
-- NULL; one statement then enqueues the job and attaches its files, so the
-- job is never visible without them. Rows still NULL after a while belong
-- to an upload whose enqueue never happened (the server stopped, or its
-- clean-up failed) and are for the orphan sweep to delete
-- (job_files_orphans finds them). On the Redis backend the files are
-- attached to an id reserved in Redis before the job is enqueued under it,
-- and a worker's sweep deletes files whose job hash is gone
-- (modules/queue/redis_files_sweep.c).
--
-- Files go with their job: a statement-level trigger on trireme.jobs
-- deletes the files of every deleted job (retention, a cancelled job's
-- removal, a manual DELETE), one join per statement, not a trigger call
-- per row. A foreign key cannot do it: the column is text, and a Redis
-- backend's job is not in trireme.jobs at all.

CREATE TABLE IF NOT EXISTS trireme.job_files (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       text,
    name         text        NOT NULL CHECK (name <> ''),
    filename     text        NOT NULL DEFAULT '',
    content_type text        NOT NULL DEFAULT 'application/octet-stream',
    size         bigint      NOT NULL DEFAULT 0 CHECK (size >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, name)
);
-- Orphan sweep (modules/jobs/retention.c): uploads never attached to a job.
CREATE INDEX IF NOT EXISTS job_files_orphans ON trireme.job_files (created_at)
    WHERE job_id IS NULL;

CREATE TABLE IF NOT EXISTS trireme.job_file_chunks (
    file_id bigint NOT NULL REFERENCES trireme.job_files (id) ON DELETE CASCADE,
    seq     int    NOT NULL CHECK (seq >= 0),
    data    bytea  NOT NULL,
    PRIMARY KEY (file_id, seq)
);
-- Out of line without compression: uploads (PDFs, images, archives) are
-- mostly compressed already, and pglz on every chunk would cost CPU for
-- nothing.
ALTER TABLE trireme.job_file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE OR REPLACE FUNCTION trireme.jobs_delete_files() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM trireme.job_files f USING gone g WHERE f.job_id = g.id::text;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS jobs_delete_files ON trireme.jobs;
CREATE TRIGGER jobs_delete_files AFTER DELETE ON trireme.jobs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION trireme.jobs_delete_files();
