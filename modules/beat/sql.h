/*
 * sql.h - every statement about schedules, in one place: the API, the CLI,
 * the --schedules file and the beat role render and write them one way.
 *
 * Writes take the object sched_input_normalize() returned ($1, keyed by
 * column, only the fields given) and the source ($2: 'api' or 'file').
 */
#ifndef TRIREME_MODULES_BEAT_SQL_H
#define TRIREME_MODULES_BEAT_SQL_H

/* One schedule as the API shows it. */
#define SCHED_JSON                                                                                 \
    "jsonb_build_object('id', s.id, 'name', s.name, 'cron', s.cron, 'timezone', s.timezone,"       \
    " 'queue', s.queue, 'kind', s.kind, 'payload', s.payload, 'priority', s.priority,"             \
    " 'max_attempts', s.max_attempts, 'timeout_ms', s.timeout_ms, 'enabled', s.enabled,"           \
    " 'misfire', s.misfire, 'catchup_window_ms', s.catchup_window_ms, 'overlap', s.overlap,"       \
    " 'jitter_ms', s.jitter_ms, 'source', s.source, 'last_fire', s.last_fire,"                     \
    " 'next_fire', s.next_fire, 'last_job_id', s.last_job_id, 'created_at', s.created_at,"         \
    " 'updated_at', s.updated_at)::text"

#define SCHED_COLUMNS                                                                              \
    "(name, cron, timezone, queue, kind, payload, priority, max_attempts, timeout_ms, enabled,"    \
    " misfire, catchup_window_ms, overlap, jitter_ms, source)"

#define SCHED_VALUES                                                                               \
    " SELECT d->>'name', d->>'cron', coalesce(d->>'timezone', 'UTC'),"                             \
    " coalesce(d->>'queue', 'default'), d->>'kind', coalesce(d->'payload', '{}'),"                 \
    " coalesce((d->>'priority')::int, 0), coalesce((d->>'max_attempts')::int, 5),"                 \
    " (d->>'timeout_ms')::int, coalesce((d->>'enabled')::boolean, true),"                          \
    " coalesce(d->>'misfire', 'fire_once'), coalesce((d->>'catchup_window_ms')::bigint, 3600000)," \
    " coalesce(d->>'overlap', 'allow'), coalesce((d->>'jitter_ms')::int, 0), $2::text"             \
    " FROM (SELECT $1::jsonb AS d) x"

#define SCHED_SET_ALL                                                                              \
    " cron = excluded.cron, timezone = excluded.timezone, queue = excluded.queue,"                 \
    " kind = excluded.kind, payload = excluded.payload, priority = excluded.priority,"             \
    " max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms,"                     \
    " enabled = excluded.enabled, misfire = excluded.misfire,"                                     \
    " catchup_window_ms = excluded.catchup_window_ms, overlap = excluded.overlap,"                 \
    " jitter_ms = excluded.jitter_ms, source = excluded.source"

/* POST: no row when the name exists. */
#define SQL_SCHED_CREATE                                                                           \
    "INSERT INTO trireme.schedules AS s " SCHED_COLUMNS SCHED_VALUES                               \
    " ON CONFLICT (name) DO NOTHING RETURNING " SCHED_JSON ", true"

/* PUT: create or replace; the second column says which. */
#define SQL_SCHED_PUT                                                                              \
    "INSERT INTO trireme.schedules AS s " SCHED_COLUMNS SCHED_VALUES                               \
    " ON CONFLICT (name) DO UPDATE SET" SCHED_SET_ALL " RETURNING " SCHED_JSON                     \
    ", (s.xmax::text = '0')"

/* --schedules file: like PUT, but never over a schedule the API made (no row). */
#define SQL_SCHED_PUT_FILE                                                                         \
    "INSERT INTO trireme.schedules AS s " SCHED_COLUMNS SCHED_VALUES                               \
    " ON CONFLICT (name) DO UPDATE SET" SCHED_SET_ALL " WHERE s.source = 'file'"                   \
    " RETURNING " SCHED_JSON ", (s.xmax::text = '0')"

/* PATCH: $1 the fields given, $2 the name. */
#define SQL_SCHED_PATCH                                                                            \
    "UPDATE trireme.schedules s SET"                                                               \
    " cron = coalesce($1::jsonb->>'cron', s.cron),"                                                \
    " timezone = coalesce($1::jsonb->>'timezone', s.timezone),"                                    \
    " queue = coalesce($1::jsonb->>'queue', s.queue), kind = coalesce($1::jsonb->>'kind', "        \
    "s.kind),"                                                                                     \
    " payload = coalesce($1::jsonb->'payload', s.payload),"                                        \
    " priority = coalesce(($1::jsonb->>'priority')::int, s.priority),"                             \
    " max_attempts = coalesce(($1::jsonb->>'max_attempts')::int, s.max_attempts),"                 \
    " timeout_ms = CASE WHEN $1::jsonb ? 'timeout_ms' THEN ($1::jsonb->>'timeout_ms')::int"        \
    "  ELSE s.timeout_ms END,"                                                                     \
    " enabled = coalesce(($1::jsonb->>'enabled')::boolean, s.enabled),"                            \
    " misfire = coalesce($1::jsonb->>'misfire', s.misfire),"                                       \
    " catchup_window_ms = coalesce(($1::jsonb->>'catchup_window_ms')::bigint, "                    \
    "s.catchup_window_ms),"                                                                        \
    " overlap = coalesce($1::jsonb->>'overlap', s.overlap),"                                       \
    " jitter_ms = coalesce(($1::jsonb->>'jitter_ms')::int, s.jitter_ms)"                           \
    " WHERE s.name = $2 RETURNING " SCHED_JSON ", true"

#define SQL_SCHED_GET "SELECT " SCHED_JSON ", true FROM trireme.schedules s WHERE s.name = $1"
#define SQL_SCHED_DELETE                                                                           \
    "DELETE FROM trireme.schedules s WHERE s.name = $1 RETURNING " SCHED_JSON ", true"
#define SQL_SCHED_LIST "SELECT " SCHED_JSON " FROM trireme.schedules s ORDER BY s.name"

/* --schedules file: remove file-made schedules the file no longer names
 * ($1: a JSON array of the names it does). */
#define SQL_SCHED_PRUNE_FILE                                                                       \
    "DELETE FROM trireme.schedules s WHERE s.source = 'file'"                                      \
    " AND NOT s.name IN (SELECT jsonb_array_elements_text($1::jsonb)) RETURNING s.name"

/* --- the beat role ------------------------------------------------------ */

/* Columns: id, name, cron, timezone, misfire, overlap, jitter_ms,
 * catchup_window_ms, last_fire (epoch s), updated_at (epoch s), enabled,
 * the job template as JSON (for the Redis backend, which enqueues it
 * itself: the fields rq_enqueue_job_args reads), last_job_id. */
#define BEAT_COLUMNS                                                                               \
    "SELECT s.id, s.name, s.cron, s.timezone, s.misfire, s.overlap, s.jitter_ms,"                  \
    " s.catchup_window_ms, floor(extract(epoch FROM s.last_fire))::bigint,"                        \
    " floor(extract(epoch FROM s.updated_at))::bigint, s.enabled,"                                 \
    " (jsonb_build_object('queue', s.queue, 'kind', s.kind, 'payload', s.payload,"                 \
    " 'priority', s.priority, 'max_attempts', s.max_attempts) || CASE WHEN s.timeout_ms IS NULL"   \
    " THEN '{}' ELSE jsonb_build_object('timeout_ms', s.timeout_ms) END)::text, s.last_job_id"     \
    " FROM trireme.schedules s"

#define SQL_BEAT_LOAD_ALL  BEAT_COLUMNS " WHERE s.enabled ORDER BY s.id LIMIT $1::int"
#define SQL_BEAT_LOAD_ONE  BEAT_COLUMNS " WHERE s.id = $1::bigint"
#define SQL_BEAT_SIGNATURE "SELECT trireme.schedules_signature()"

/* $1 ids, $2 slots (epoch s), $3 jitter ms, $4 reasons, $5 next fires (epoch s). */
#define SQL_BEAT_FIRE                                                                              \
    "SELECT f.schedule_id, floor(extract(epoch FROM f.slot))::bigint, f.job_id, f.blocked_by"      \
    " FROM trireme.fire_schedules($1::bigint[],"                                                   \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($2::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)," \
    " $3::int[], $4::text[],"                                                                      \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($5::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)"  \
    ") f"

/* Redis backend (sql/006): $1 ids, $2 slots (epoch s), $3 Redis job ids
 * (NULL: skipped), $4 the jobs that caused skips, $5 reasons, $6 next fires. */
#define SQL_BEAT_RECORD                                                                            \
    "SELECT f.schedule_id, floor(extract(epoch FROM f.slot))::bigint, f.job_id, f.blocked_by"      \
    " FROM trireme.record_schedule_fires($1::bigint[],"                                            \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($2::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)," \
    " $3::bigint[], $4::bigint[], $5::text[],"                                                     \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($6::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)"  \
    ") f"

#endif
