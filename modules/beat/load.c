/*
 * load.c - beat's schedules from trireme.schedules, kept current.
 *
 * A full load reads every enabled schedule and plans each from the later
 * of its last fire and its last definition change, keeping the slots this
 * beat already sent: missed slots are queued by its misfire policy
 * (plan.c), then it goes in the heap. A trigger NOTIFYs trireme_schedules
 * with a changed schedule's id at commit; beat reloads that one row (log
 * "Schedule changed"). Every (re)subscription reloads everything, and a
 * poll of a cheap signature every --beat-poll-interval catches a lost
 * notification. Without a LISTEN connection (behind a transaction pooler)
 * only the poll sees changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/beat/beat.h"
#include "proto/rfc3339.h"

#define LOAD_ALL_TIMEOUT_MS 60000 /* every enabled schedule, up to --beat-max-schedules */
#define LOAD_TIMEOUT_MS     10000 /* one schedule; the signature */

/* Times in epoch seconds; the job template is the JSON a queue backend
 * that enqueues it itself reads (rq_enqueue_job_args). */
#define BEAT_COLUMNS                                                                               \
    "SELECT s.id, s.name, s.cron, s.timezone, s.misfire, s.overlap, s.jitter_ms,"                  \
    " s.catchup_window_ms, floor(extract(epoch FROM s.last_fire))::bigint,"                        \
    " floor(extract(epoch FROM s.updated_at))::bigint, s.enabled,"                                 \
    " (jsonb_build_object('queue', s.queue, 'kind', s.kind, 'payload', s.payload,"                 \
    " 'priority', s.priority, 'max_attempts', s.max_attempts) || CASE WHEN s.timeout_ms IS NULL"   \
    " THEN '{}' ELSE jsonb_build_object('timeout_ms', s.timeout_ms) END)::text, s.last_job_id"     \
    " FROM trireme.schedules s"
enum {
    COL_ID,
    COL_NAME,
    COL_CRON,
    COL_ZONE,
    COL_MISFIRE,
    COL_OVERLAP,
    COL_JITTER,
    COL_CATCHUP,
    COL_LAST_FIRE,
    COL_UPDATED,
    COL_ENABLED,
    COL_JOB,
    COL_LAST_JOB
};

#define SQL_LOAD_ALL  BEAT_COLUMNS " WHERE s.enabled ORDER BY s.id LIMIT $1::int"
#define SQL_LOAD_ONE  BEAT_COLUMNS " WHERE s.id = $1::bigint"
#define SQL_SIGNATURE "SELECT trireme.schedules_signature()"

static void want_signature(struct beat *b);
static void next_one(struct beat *b);

/* A row of BEAT_COLUMNS as a schedule, or NULL (logged) when it cannot
 * run. *from: the slots it has handled (its last fire or last change). */
static struct beat_sched *from_row(struct beat *b, PGresult *res, int r, int64_t *from)
{
    const char *name = PQgetvalue(res, r, COL_NAME), *expr = PQgetvalue(res, r, COL_CRON);
    char err[320];
    struct beat_sched *s = xcalloc(1, sizeof(*s));
    s->id = atoll(PQgetvalue(res, r, COL_ID));
    s->last = INT64_MIN;
    if (cron_parse(expr, &s->cron, err, sizeof(err))) {
        LOG(LOG_WARN, "beat: schedule has an invalid cron expression; not firing it",
            L_STR("name", name), L_STR("cron", expr), L_STR("error", err));
        free(s);
        return NULL;
    }
    s->tz = sched_zones_get(&b->set.zones, b->cfg->tzdir, PQgetvalue(res, r, COL_ZONE), err,
                            sizeof(err));
    if (!s->tz) {
        LOG(LOG_WARN, "beat: schedule has an unknown time zone; not firing it", L_STR("name", name),
            L_STR("error", err));
        free(s);
        return NULL;
    }
    const char *m = PQgetvalue(res, r, COL_MISFIRE);
    s->misfire = !strcmp(m, "skip")       ? MISFIRE_SKIP
                 : !strcmp(m, "fire_all") ? MISFIRE_FIRE_ALL
                                          : MISFIRE_FIRE_ONCE;
    s->overlap = !strcmp(PQgetvalue(res, r, COL_OVERLAP), "skip_if_running")
                     ? OVERLAP_SKIP_IF_RUNNING
                     : OVERLAP_ALLOW;
    s->jitter_ms = atoi(PQgetvalue(res, r, COL_JITTER));
    s->catchup_window_s = atoll(PQgetvalue(res, r, COL_CATCHUP)) / 1000;
    s->name = xstrdup(name);
    if (b->fire.ops->wants_job)
        s->job = json_loads(PQgetvalue(res, r, COL_JOB), 0, NULL);
    s->last_job = PQgetisnull(res, r, COL_LAST_JOB) ? 0 : atoll(PQgetvalue(res, r, COL_LAST_JOB));
    int64_t updated = atoll(PQgetvalue(res, r, COL_UPDATED));
    *from = updated;
    if (!PQgetisnull(res, r, COL_LAST_FIRE) && atoll(PQgetvalue(res, r, COL_LAST_FIRE)) > updated)
        *from = atoll(PQgetvalue(res, r, COL_LAST_FIRE));
    return s;
}

/* s replaces old: it keeps the slots this beat already sent, and the
 * latest job an outcome reported after the row was read. */
static void inherit(struct beat_sched *s, const struct beat_sched *old)
{
    s->last = old->last;
    if (old->last_job > s->last_job)
        s->last_job = old->last_job;
}

static const char *misfire_name(uint8_t m)
{
    return m == MISFIRE_SKIP ? "skip" : m == MISFIRE_FIRE_ONCE ? "fire_once" : "fire_all";
}

/* s was (re)loaded with slots up to `from` handled: queue its catch-up
 * slots and put it in the heap. */
static void plan(struct beat *b, struct beat_sched *s, int64_t from, bool log_change)
{
    int64_t now = (int64_t)(beat_wall_ms() / 1000);
    int64_t *catchup = b->load.catchup;
    unsigned n = 0;
    if (s->last > from)
        from = s->last;
    int rc = beat_plan_load(s, from, now, catchup, b->cfg->beat_catchup_max, &n);
    for (unsigned i = 0; i < n; i++) {
        int64_t nx = i + 1 < n ? catchup[i + 1] : (rc ? 0 : s->next);
        beat_fire_queue(b, s, catchup[i], nx, true);
    }
    if (n)
        LOG(LOG_INFO, "beat: catching up missed slots", L_STR("name", s->name),
            L_STR("misfire", misfire_name(s->misfire)), L_INT("firing", n));
    if (!rc)
        beat_heap_push(&b->set.heap, s);
    if (log_change) {
        char when[32] = "never";
        if (!rc)
            rfc3339_format_s(s->next, when, sizeof(when));
        LOG(LOG_INFO, "Schedule changed", L_STR("name", s->name), L_INT("id", s->id),
            L_STR("next_fire", when));
    }
}

static void on_all(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = container_of(q, struct beat, load.all_q);
    struct beat_load *ld = &b->load;
    ld->all_inflight = false;
    if (b->stopping || !b->leading)
        return;
    if (err) {
        LOG(LOG_WARN, "beat: loading schedules failed; retrying", L_STR("error", err));
        ld->all_again = true; /* the next (re)subscription or poll reloads */
        return;
    }
    int rows = PQntuples(res);
    if ((unsigned)rows > b->cfg->beat_max_schedules) {
        LOG(LOG_ERROR,
            "beat: more enabled schedules than --beat-max-schedules; the rest are "
            "not fired",
            L_INT("limit", b->cfg->beat_max_schedules));
        rows = (int)b->cfg->beat_max_schedules;
    }
    unsigned nold, o = 0;
    struct beat_sched **old = beat_set_take(&b->set, &nold);
    for (int r = 0; r < rows; r++) {
        int64_t from;
        struct beat_sched *s = from_row(b, res, r, &from);
        if (!s)
            continue;
        while (o < nold && old[o]->id < s->id)
            o++;
        if (o < nold && old[o]->id == s->id)
            inherit(s, old[o]);
        beat_set_put(&b->set, s);
        plan(b, s, from, false);
    }
    for (unsigned i = 0; i < nold; i++)
        beat_sched_free(old[i]);
    free(old);
    ld->loaded = true;
    b->fire.replanning = false;
    LOG(LOG_INFO, "beat: schedules loaded", L_INT("schedules", b->set.n),
        L_INT("catchup_slots", b->fire.npend));
    if (ld->all_again)
        beat_load_all(b);
    beat_fire_flush(b);
    beat_fire_arm(b);
}

void beat_load_all(struct beat *b)
{
    struct beat_load *ld = &b->load;
    if (b->stopping || !b->leading)
        return;
    if (ld->all_inflight) {
        ld->all_again = true;
        return;
    }
    ld->all_again = false;
    ld->n_one = 0; /* a full load covers them */
    snprintf(ld->all_limit, sizeof(ld->all_limit), "%u", b->cfg->beat_max_schedules + 1);
    ld->all_vals[0] = ld->all_limit;
    ld->all_q = (struct pg_query){.fn = on_all,
                                  .sql = SQL_LOAD_ALL,
                                  .nparams = 1,
                                  .values = ld->all_vals,
                                  .timeout_ms = LOAD_ALL_TIMEOUT_MS,
                                  .retry_safe = true};
    ld->all_inflight = true;
    pg_query_submit(&b->pg, &ld->all_q);
    want_signature(b);
}

static void on_one(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = container_of(q, struct beat, load.one_q);
    b->load.one_inflight = false;
    if (b->stopping || !b->leading)
        return;
    int64_t id = atoll(b->load.one_id);
    if (err) {
        LOG(LOG_WARN, "beat: reloading a changed schedule failed; reloading all",
            L_INT("schedule_id", id), L_STR("error", err));
        beat_load_all(b);
        return;
    }
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, COL_ENABLED)[0] != 't') {
        struct beat_sched *s = beat_set_find(&b->set, id);
        if (s)
            LOG(LOG_INFO, "Schedule changed", L_STR("name", s->name), L_INT("id", id),
                L_STR("state", PQntuples(res) ? "disabled" : "deleted"));
        beat_set_remove(&b->set, id);
    } else {
        int64_t from;
        struct beat_sched *s = from_row(b, res, 0, &from);
        if (s) {
            struct beat_sched *old = beat_set_find(&b->set, id);
            if (old)
                inherit(s, old);
            beat_set_put(&b->set, s);
            plan(b, s, from, true);
        } else {
            beat_set_remove(&b->set, id);
        }
    }
    beat_fire_flush(b);
    beat_fire_arm(b);
    next_one(b);
}

static void next_one(struct beat *b)
{
    struct beat_load *ld = &b->load;
    if (ld->one_inflight || !ld->n_one || b->stopping || !b->leading)
        return;
    snprintf(ld->one_id, sizeof(ld->one_id), "%lld", (long long)ld->one_ids[0]);
    memmove(ld->one_ids, ld->one_ids + 1, (--ld->n_one) * sizeof(*ld->one_ids));
    ld->one_vals[0] = ld->one_id;
    ld->one_q = (struct pg_query){.fn = on_one,
                                  .sql = SQL_LOAD_ONE,
                                  .nparams = 1,
                                  .values = ld->one_vals,
                                  .timeout_ms = LOAD_TIMEOUT_MS,
                                  .retry_safe = true};
    ld->one_inflight = true;
    pg_query_submit(&b->pg, &ld->one_q);
    want_signature(b);
}

static void on_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct beat *b = lis->data;
    struct beat_load *ld = &b->load;
    if (!b->leading)
        return;
    if (!payload) {
        /* (Re)subscribed: anything may have changed while we were not. */
        beat_load_all(b);
        return;
    }
    int64_t id = atoll(payload);
    for (unsigned i = 0; i < ld->n_one; i++)
        if (ld->one_ids[i] == id)
            return;
    if (ld->n_one == BEAT_ONE_LOADS_MAX || ld->all_inflight) {
        beat_load_all(b); /* a storm of changes: one query for all of them */
        return;
    }
    ld->one_ids[ld->n_one++] = id;
    next_one(b);
}

/* --- the polling fallback ------------------------------------------------- */

static void on_signature(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = container_of(q, struct beat, load.sig_q);
    struct beat_load *ld = &b->load;
    bool was_poll = ld->sig_poll;
    ld->sig_inflight = ld->sig_poll = false;
    if (err || b->stopping || !b->leading)
        return;
    const char *sig = PQgetvalue(res, 0, 0);
    bool changed = strcmp(sig, ld->signature) != 0;
    snprintf(ld->signature, sizeof(ld->signature), "%s", sig);
    if (changed && was_poll && ld->loaded) {
        LOG(LOG_INFO, "Schedule changed", L_STR("reason", "poll: a change was not notified"));
        beat_load_all(b);
    }
}

/* Queued behind the load in flight, so it describes what that load saw
 * (or something newer, which the NOTIFY then reloads). */
static void want_signature(struct beat *b)
{
    struct beat_load *ld = &b->load;
    if (ld->sig_inflight) {
        ld->sig_poll = false; /* it now follows a load: not a poll's answer */
        return;
    }
    if (b->stopping)
        return;
    ld->sig_q = (struct pg_query){.fn = on_signature,
                                  .sql = SQL_SIGNATURE,
                                  .timeout_ms = LOAD_TIMEOUT_MS,
                                  .retry_safe = true};
    ld->sig_inflight = true;
    pg_query_submit(&b->pg, &ld->sig_q);
}

static void on_poll(struct loop *l, struct timer *t)
{
    struct beat *b = container_of(t, struct beat, load.poll_timer);
    struct beat_load *ld = &b->load;
    if (b->stopping)
        return;
    loop_timer_in(l, t, b->cfg->beat_poll_interval_ms);
    if (!b->leading)
        return;
    if (!ld->loaded || ld->all_again)
        beat_load_all(b);
    else if (!ld->sig_inflight) {
        want_signature(b);
        ld->sig_poll = true;
    }
}

/* --- start, lead lost, stop ----------------------------------------------- */

void beat_load_start(struct beat *b)
{
    struct beat_load *ld = &b->load;
    const struct config *cfg = b->cfg;
    ld->catchup = xcalloc(cfg->beat_catchup_max, sizeof(*ld->catchup));
    ld->has_listen = b->pg.listen_conninfo != NULL;
    ld->lis = (struct pg_listener){.channel = "trireme_schedules", .fn = on_notify, .data = b};
    if (ld->has_listen)
        pg_listen(&b->pg, &ld->lis);
    else
        LOG(LOG_WARN,
            "beat: no direct database URL for LISTEN behind a transaction pooler; "
            "changes are seen every --beat-poll-interval (set DATABASE_DIRECT_URL)",
            L_INT("poll_interval_ms", cfg->beat_poll_interval_ms));
    ld->poll_timer.fn = on_poll;
    loop_timer_in(b->loop, &ld->poll_timer, cfg->beat_poll_interval_ms);
}

void beat_load_forget(struct beat *b)
{
    b->load.n_one = 0;
    b->load.loaded = false;
}

void beat_load_stop(struct beat *b)
{
    loop_timer_cancel(b->loop, &b->load.poll_timer);
}
