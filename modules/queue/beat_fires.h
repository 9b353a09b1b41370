/*
 * beat_fires.h - what both backends' beat parts share: a batch of slots as
 * the parameters of the PostgreSQL statement that records their fires
 * (trireme.fire_schedules, sql/005, which also makes the jobs; or
 * trireme.record_schedule_fires, sql/006, for jobs made elsewhere), and
 * that statement's rows back onto the slots as outcomes.
 *
 * Both statements answer one row per slot they handled, (schedule_id,
 * slot, job_id, blocked_by), ordered by schedule and slot; a slot another
 * beat handled first has no row.
 */
#ifndef TRIREME_MODULES_QUEUE_BEAT_FIRES_H
#define TRIREME_MODULES_QUEUE_BEAT_FIRES_H

#include "kernel/pq.h"
#include <stddef.h>

#include "modules/queue/queue_beat.h"

/* $1 ids, $2 slots (epoch s), $3 jitter ms, $4 reasons, $5 next fires (epoch s). */
#define SQL_BEAT_FIRE                                                                              \
    "SELECT f.schedule_id, floor(extract(epoch FROM f.slot))::bigint, f.job_id, f.blocked_by"      \
    " FROM trireme.fire_schedules($1::bigint[],"                                                   \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($2::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)," \
    " $3::int[], $4::text[],"                                                                      \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($5::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)"  \
    ") f"

/* $1 ids, $2 slots (epoch s), $3 job ids (NULL: skipped), $4 the jobs that
 * caused skips, $5 reasons, $6 next fires (epoch s). */
#define SQL_BEAT_RECORD                                                                            \
    "SELECT f.schedule_id, floor(extract(epoch FROM f.slot))::bigint, f.job_id, f.blocked_by"      \
    " FROM trireme.record_schedule_fires($1::bigint[],"                                            \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($2::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)," \
    " $3::bigint[], $4::bigint[], $5::text[],"                                                     \
    " ARRAY(SELECT to_timestamp(x) FROM unnest($6::float8[]) WITH ORDINALITY u(x, o) ORDER BY o)"  \
    ") f"

/* A slot field, as one array parameter. */
enum beat_fires_col {
    BF_IDS,
    BF_SLOTS,
    BF_JITTER,
    BF_JOB_IDS, /* 0 is NULL */
    BF_BLOCKED, /* 0 is NULL */
    BF_REASONS, /* 'catchup' or 'due' */
    BF_NEXT,    /* 0 is NULL */
};
#define BEAT_FIRES_MAX_COLS 7 /* each column at most once */

/* The parameter text of one statement; the buffer is kept for the next. */
struct beat_fires {
    char *buf;
    size_t cap;
    const char *vals[BEAT_FIRES_MAX_COLS];
};

/* Order v[0..n) by schedule and slot (the rows' order) and clear every
 * outcome. */
void beat_fires_sort(struct queue_beat_slot *v, unsigned n);

/* vals[i]: column cols[i] of v[0..n) as a PostgreSQL array literal. */
void beat_fires_params(struct beat_fires *f, const struct queue_beat_slot *v, unsigned n,
                       const enum beat_fires_col *cols, int ncols);

/* The statement's rows onto v[0..n) (sorted as above): FIRED with job_id,
 * or SKIPPED with blocked_by; a slot without a row stays NONE. */
void beat_fires_apply(struct queue_beat_slot *v, unsigned n, PGresult *res);

void beat_fires_free(struct beat_fires *f);

#endif
