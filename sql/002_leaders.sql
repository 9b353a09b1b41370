-- 002_leaders.sql - leader election's record in the database.
--
-- One row per election (name 'worker', later 'beat'). token grows by one on
-- every acquisition, whichever backend (Redis lease or PostgreSQL advisory
-- lock) won it: work done under a token refuses to commit once a newer
-- token exists (fencing). holder/since/renewed_at are for humans and
-- `trireme leader`.

CREATE TABLE IF NOT EXISTS trireme.leaders (
    name       text PRIMARY KEY,
    token      bigint      NOT NULL DEFAULT 0,
    holder     text,
    backend    text,
    since      timestamptz,
    renewed_at timestamptz
);
