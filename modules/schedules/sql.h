/*
 * sql.h - the statements that read and write trireme.schedules as clients
 * see them, in one place: the API, the CLI and the --schedules file
 * render and write schedules one way. (Beat reads its own columns,
 * modules/beat/load.c; a queue backend records fires, modules/queue/
 * beat_fires.h.)
 *
 * Writes take the object sched_input_normalize() returned ($1, keyed by
 * column, only the fields given) and the source ($2: 'api' or 'file').
 */
#ifndef TRIREME_MODULES_SCHEDULES_SQL_H
#define TRIREME_MODULES_SCHEDULES_SQL_H

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

#endif
