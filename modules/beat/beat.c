/*
 * beat.c - the beat role: fire each schedule's slots, exactly once.
 *
 * Runs on loop 0. Enabled schedules are loaded from trireme.schedules into
 * one min-heap by next slot, and one kernel timer is armed for the heap's
 * minimum (no polling tick: an idle beat with ten thousand schedules sleeps
 * until the next slot). Due slots go to trireme.fire_schedules() in
 * batches; each slot's job and its unique (schedule, slot) row commit
 * together, so however many beats run, a slot yields one job. The election
 * "beat" (--leader) only keeps standbys idle: correctness rests on the key.
 *
 * Changes: a trigger NOTIFYs trireme_schedules with the schedule's id at
 * commit; beat reloads that one row (log "Schedule changed"). A poll of a
 * cheap signature every --beat-poll-interval catches a lost notification,
 * and every (re)subscription reloads everything.
 *
 * On --queue-backend=redis the jobs go to Redis instead (fire_redis.c):
 * each batch is first enqueued there under a per-slot unique key, which
 * makes it idempotent, then recorded by trireme.record_schedule_fires()
 * (sql/006). A Redis failure retries the batch's enqueue; a PostgreSQL
 * failure retries only its record, with the job ids Redis gave.
 *
 * Downtime: a (re)load plans each schedule from the later of its last fire
 * and its last change (plan.c): the misfire policy decides which missed
 * slots within the catch-up window fire (reason 'catchup').
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/pg.h"
#include "kernel/server.h"
#include "modules/beat/beat.h"
#include "modules/beat/sql.h"
#include "modules/leader/leader.h"
#include "modules/registry.h"

#define BEAT_QUERY_TIMEOUT_MS 10000
#define BEAT_RETRY_MS         500
#define BEAT_ONE_LOADS_MAX    64 /* queued single-row reloads; more: reload everything */
/* A slot this late means the loop was not running (a suspended VM, a wall
 * clock stepped forward): re-plan with the misfire policy instead of
 * firing every slot in between. */
#define BEAT_REPLAN_LATE_MS 60000
/* Slots waiting for the database (it is down): beyond this many they are
 * dropped, and the schedules are re-planned from the database's own record
 * once it answers, the misfire policy deciding, as after beat downtime. */
#define BEAT_PEND_MAX 100000

int beat_file_reconcile(const struct config *cfg); /* file.c */
int beat_cli_schedules(int argc, char **argv);     /* cli.c */

struct pend {
    int64_t id, slot, next; /* next: 0 when the schedule never fires again */
    int32_t jitter_ms;
    bool catchup;
};

struct pend_list {
    struct pend *v;
    unsigned n, cap;
};

struct beat {
    struct loop *loop;
    const struct config *cfg;
    struct pg_pool pg;
    bool has_listen;
    struct pg_listener lis;
    struct beat_zones zones;
    struct beat_heap heap;
    struct beat_sched **all; /* sorted by id */
    unsigned nall, capall;
    int64_t *catchup; /* cfg->beat_catchup_max slots, planning scratch */
    bool leading;     /* elected (or no election): may fire */
    bool loaded;
    bool replanning; /* a full load after a jump in time: timer off until it ends */
    bool stopping, closed;
    struct timer due_timer, poll_timer, retry_timer;
    /* full load, then signature */
    struct pg_query load_q, sig_q, one_q;
    bool load_inflight, load_again, sig_inflight, sig_poll, one_inflight;
    const char *load_vals[1], *one_vals[1];
    char load_limit[16], one_id[24];
    char signature[160];
    int64_t one_ids[BEAT_ONE_LOADS_MAX];
    unsigned n_one;
    /* firing */
    struct pend_list pend, inflight;
    struct pg_query fire_q;
    bool fire_inflight;
    char *fire_text[6];
    const char *fire_vals[6];
    /* --queue-backend=redis */
    bool redis, rq_down_logged;
    bool record_retry; /* the batch's record failed: fire_text holds it */
    struct beat_redis rq;
    struct beat_rslot *rs; /* the batch in flight, parallel to inflight */
    unsigned rscap;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the loaded set ------------------------------------------------------ */

static unsigned find_pos(struct beat *b, int64_t id)
{
    unsigned lo = 0, hi = b->nall;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (b->all[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct beat_sched *find(struct beat *b, int64_t id)
{
    unsigned i = find_pos(b, id);
    return i < b->nall && b->all[i]->id == id ? b->all[i] : NULL;
}

static void sched_free(struct beat_sched *s)
{
    if (s) {
        json_decref(s->job);
        free(s->name);
        free(s);
    }
}

static void remove_sched(struct beat *b, int64_t id)
{
    unsigned i = find_pos(b, id);
    if (i >= b->nall || b->all[i]->id != id)
        return;
    beat_heap_remove(&b->heap, b->all[i]);
    sched_free(b->all[i]);
    memmove(&b->all[i], &b->all[i + 1], (b->nall - i - 1) * sizeof(*b->all));
    b->nall--;
}

static void clear_all(struct beat *b)
{
    for (unsigned i = 0; i < b->nall; i++)
        sched_free(b->all[i]);
    b->nall = 0;
    b->heap.n = 0;
}

/* Insert s, replacing a schedule with the same id (whose last slot it
 * inherits, so a reload never re-plans slots this beat already sent). */
static void put_sched(struct beat *b, struct beat_sched *s)
{
    unsigned i = find_pos(b, s->id);
    if (i < b->nall && b->all[i]->id == s->id) {
        beat_heap_remove(&b->heap, b->all[i]);
        sched_free(b->all[i]);
        b->all[i] = s;
        return;
    }
    if (b->nall == b->capall) {
        b->capall = b->capall ? b->capall * 2 : 64;
        b->all = realloc(b->all, b->capall * sizeof(*b->all));
    }
    memmove(&b->all[i + 1], &b->all[i], (b->nall - i) * sizeof(*b->all));
    b->all[i] = s;
    b->nall++;
}

/* --- firing --------------------------------------------------------------- */

static void flush(struct beat *b);
static void arm(struct beat *b);
static void full_load(struct beat *b);

static void pend_add(struct pend_list *l, const struct pend *p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *p;
}

static int32_t jitter(struct beat *b, const struct beat_sched *s)
{
    return s->jitter_ms ? (int32_t)(loop_random(b->loop) % ((uint64_t)s->jitter_ms + 1)) : 0;
}

static void queue_slot(struct beat *b, struct beat_sched *s, int64_t slot, int64_t next,
                       bool catchup)
{
    struct pend p = {
        .id = s->id, .slot = slot, .next = next, .jitter_ms = jitter(b, s), .catchup = catchup};
    pend_add(&b->pend, &p);
    if (slot > s->last)
        s->last = slot;
}

/* The batch in flight failed: nothing committed, so it goes back to the
 * front of the queue and is fired again after a pause (the slot key makes
 * a retry safe even if the commit happened and its answer was lost). */
static void retry_inflight(struct beat *b, const char *what, const char *err)
{
    if (!b->stopping && b->leading) {
        LOG(LOG_WARN, what, L_STR("error", err), L_INT("slots", b->inflight.n));
        for (unsigned i = 0; i < b->pend.n; i++)
            pend_add(&b->inflight, &b->pend.v[i]);
        struct pend_list t = b->pend;
        b->pend = b->inflight;
        b->inflight = t;
        loop_timer_in(b->loop, &b->retry_timer, BEAT_RETRY_MS);
    }
    b->inflight.n = 0;
}

static void close_all(struct beat *b)
{
    if (!b->closed) {
        b->closed = true;
        pg_pool_close(&b->pg);
        if (b->redis)
            beat_redis_close(&b->rq);
        leader_drained(b->loop->srv, ELECTION_BEAT);
    }
}

static void free_fire_text(struct beat *b)
{
    for (int i = 0; i < 6; i++) {
        free(b->fire_text[i]);
        b->fire_text[i] = NULL;
    }
}

static void on_fired(struct pg_query *q, PGresult *res, const char *err);

static void submit_record(struct beat *b)
{
    b->fire_q = (struct pg_query){.fn = on_fired,
                                  .sql = SQL_BEAT_RECORD,
                                  .nparams = 6,
                                  .values = b->fire_vals,
                                  .timeout_ms = BEAT_QUERY_TIMEOUT_MS};
    b->fire_inflight = true;
    pg_query_submit(&b->pg, &b->fire_q);
}

static void on_fired(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = (struct beat *)((char *)q - offsetof(struct beat, fire_q));
    b->fire_inflight = false;
    if (err && b->redis && !b->stopping && b->leading) {
        /* The jobs are in Redis: retry only the record, with the same ids,
         * rather than the enqueue (whose unique keys expire with the jobs'
         * hashes, so a record failing for longer than --result-ttl would
         * otherwise end in a second job). Later slots wait behind it. */
        LOG(LOG_WARN,
            "beat: recording due slots failed; retrying the record (their jobs are in "
            "Redis)",
            L_STR("error", err), L_INT("slots", b->inflight.n));
        b->record_retry = true;
        loop_timer_in(b->loop, &b->retry_timer, BEAT_RETRY_MS);
        return;
    }
    free_fire_text(b);
    if (err) {
        retry_inflight(b, "beat: firing due slots failed, retrying", err);
    } else {
        b->inflight.n = 0;
        int rows = PQntuples(res);
        for (int r = 0; r < rows; r++) {
            int64_t id = atoll(PQgetvalue(res, r, 0));
            int64_t slot = atoll(PQgetvalue(res, r, 1));
            struct beat_sched *s = find(b, id);
            char when[32], msg[BEAT_NAME_MAX + 40];
            beat_rfc3339(slot, when, sizeof(when));
            if (!PQgetisnull(res, r, 2)) {
                /* Only once recorded: a retry after a failed record must not
                 * see its own slot's job as the previous one. */
                int64_t jid = atoll(PQgetvalue(res, r, 2));
                if (s && jid > s->last_job)
                    s->last_job = jid;
                snprintf(msg, sizeof(msg), "Sending due task %s", s ? s->name : "?");
                LOG(LOG_INFO, msg, L_STR("slot", when), L_STR("job", PQgetvalue(res, r, 2)),
                    L_INT("schedule_id", id));
            } else {
                snprintf(msg, sizeof(msg), "Skipping due task %s", s ? s->name : "?");
                LOG(LOG_INFO, msg, L_STR("slot", when),
                    L_STR("reason", "previous job still pending or running"),
                    L_STR("running_job", PQgetvalue(res, r, 3)), L_INT("schedule_id", id));
            }
        }
    }
    if (b->stopping) {
        close_all(b);
        return;
    }
    if (!err)
        flush(b);
}

static char *text_array(const struct pend *v, unsigned n, int which)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fputc('{', f);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        switch (which) {
        case 0:
            fprintf(f, "%lld", (long long)v[i].id);
            break;
        case 1:
            fprintf(f, "%lld", (long long)v[i].slot);
            break;
        case 2:
            fprintf(f, "%d", (int)v[i].jitter_ms);
            break;
        case 3:
            fputs(v[i].catchup ? "catchup" : "due", f);
            break;
        default:
            if (v[i].next)
                fprintf(f, "%lld", (long long)v[i].next);
            else
                fputs("NULL", f);
        }
    }
    fputc('}', f);
    fclose(f);
    return out;
}

/* A Redis outcome column as a PostgreSQL array: 0 is NULL. */
static char *id_array(const struct beat_rslot *v, unsigned n, bool blocked)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fputc('{', f);
    for (unsigned i = 0; i < n; i++) {
        int64_t x = blocked ? v[i].blocked_by : v[i].job_id;
        if (i)
            fputc(',', f);
        if (x > 0)
            fprintf(f, "%lld", (long long)x);
        else
            fputs("NULL", f);
    }
    fputc('}', f);
    fclose(f);
    return out;
}

/* Redis has every slot's outcome: record them in PostgreSQL. */
static void on_enqueued(struct beat_redis *r, const char *err)
{
    struct beat *b = r->data;
    if (err) {
        b->fire_inflight = false;
        retry_inflight(b, "beat: enqueueing due slots in Redis failed; they wait and are retried",
                       err);
        if (b->stopping)
            close_all(b);
        return;
    }
    unsigned n = b->inflight.n;
    b->rq_down_logged = false;
    for (unsigned i = 0; i < n; i++)
        if (b->rs[i].job_id && !b->rs[i].created) {
            /* The crash-between-the-steps case (or a second beat): the slot
             * keeps the job its unique key already names. */
            char when[32];
            beat_rfc3339(b->rs[i].slot, when, sizeof(when));
            LOG(LOG_INFO, "beat: the slot's job is already in Redis; recording that one",
                L_INT("schedule_id", b->rs[i].id), L_STR("slot", when),
                L_INT("job", b->rs[i].job_id));
        }
    char *t[6] = {text_array(b->inflight.v, n, 0), text_array(b->inflight.v, n, 1),
                  id_array(b->rs, n, false),       id_array(b->rs, n, true),
                  text_array(b->inflight.v, n, 3), text_array(b->inflight.v, n, 4)};
    for (int i = 0; i < 6; i++) {
        b->fire_text[i] = t[i];
        b->fire_vals[i] = t[i];
    }
    submit_record(b);
}

/* The batch's slots whose schedule is still loaded (a disabled or deleted
 * one fires nothing, as fire_schedules decides on PostgreSQL), for Redis. */
static void redis_fire(struct beat *b)
{
    if (b->rscap < b->inflight.n) {
        b->rscap = b->inflight.n;
        b->rs = realloc(b->rs, b->rscap * sizeof(*b->rs));
    }
    unsigned k = 0;
    for (unsigned i = 0; i < b->inflight.n; i++) {
        const struct pend *p = &b->inflight.v[i];
        const struct beat_sched *s = find(b, p->id);
        if (!s || !s->job)
            continue;
        b->inflight.v[k] = *p;
        json_incref(s->job);
        b->rs[k++] = (struct beat_rslot){.id = p->id,
                                         .slot = p->slot,
                                         .jitter_ms = p->jitter_ms,
                                         .job = s->job,
                                         .exclusive = s->overlap == OVERLAP_SKIP_IF_RUNNING,
                                         .last_job = s->last_job};
    }
    b->inflight.n = k;
    if (!redis_client_up(&b->rq.rc) && !b->rq_down_logged) {
        b->rq_down_logged = true; /* once per outage; the client logs its retries */
        LOG(LOG_WARN,
            "beat: Redis is unreachable; due slots wait for it and are sent once it "
            "is back",
            L_INT("slots", k));
    }
    b->fire_inflight = true;
    b->rq.data = b;
    beat_redis_enqueue(&b->rq, b->rs, k, on_enqueued);
}

/* Send what is due: one statement in flight, the rest waits for it. */
static void flush(struct beat *b)
{
    if (b->fire_inflight || b->stopping || timer_armed(&b->retry_timer))
        return;
    if (b->record_retry) {
        b->record_retry = false;
        submit_record(b);
        return;
    }
    if (!b->pend.n)
        return;
    unsigned n = b->pend.n < b->cfg->beat_batch ? b->pend.n : b->cfg->beat_batch;
    b->inflight.n = 0;
    for (unsigned i = 0; i < n; i++)
        pend_add(&b->inflight, &b->pend.v[i]);
    memmove(b->pend.v, b->pend.v + n, (b->pend.n - n) * sizeof(*b->pend.v));
    b->pend.n -= n;
    if (b->redis) {
        redis_fire(b);
        return;
    }
    for (int i = 0; i < 5; i++) {
        b->fire_text[i] = text_array(b->inflight.v, n, i);
        b->fire_vals[i] = b->fire_text[i];
    }
    b->fire_q = (struct pg_query){.fn = on_fired,
                                  .sql = SQL_BEAT_FIRE,
                                  .nparams = 5,
                                  .values = b->fire_vals,
                                  .timeout_ms = BEAT_QUERY_TIMEOUT_MS};
    b->fire_inflight = true;
    pg_query_submit(&b->pg, &b->fire_q);
}

static void on_retry(struct loop *l, struct timer *t)
{
    struct beat *b = (struct beat *)((char *)t - offsetof(struct beat, retry_timer));
    flush(b);
}

static void on_due(struct loop *l, struct timer *t)
{
    struct beat *b = (struct beat *)((char *)t - offsetof(struct beat, due_timer));
    uint64_t now = wall_ms();
    struct beat_sched *s;
    while (b->leading && (s = beat_heap_min(&b->heap)) && (uint64_t)s->next * 1000 <= now) {
        int64_t slot = s->next, nx;
        if (now - (uint64_t)slot * 1000 > BEAT_REPLAN_LATE_MS) {
            LOG(LOG_WARN,
                "beat: slots are long overdue (clock jump or stalled process); "
                "re-planning with each schedule's misfire policy",
                L_STR("name", s->name), L_INT("late_ms", now - (uint64_t)slot * 1000));
            b->replanning = true;
            full_load(b);
            break;
        }
        if (cron_next(&s->cron, s->tz, slot, 0, &nx)) {
            beat_heap_remove(&b->heap, s);
            nx = 0;
        } else {
            s->next = nx;
            beat_heap_update(&b->heap, s);
        }
        queue_slot(b, s, slot, nx, false);
    }
    if (b->pend.n > BEAT_PEND_MAX) {
        LOG(LOG_WARN,
            "beat: too many slots waiting for the database; dropping them and "
            "re-planning from the database's record when it answers",
            L_INT("slots", b->pend.n));
        b->pend.n = 0;
        clear_all(b); /* forget local progress: the database's last_fire decides */
        b->replanning = true;
        full_load(b);
    }
    flush(b);
    arm(b);
}

static void arm(struct beat *b)
{
    struct beat_sched *s = beat_heap_min(&b->heap);
    if (!s || !b->leading || b->stopping || b->replanning) {
        loop_timer_cancel(b->loop, &b->due_timer);
        return;
    }
    uint64_t now = wall_ms(), at = (uint64_t)s->next * 1000;
    loop_timer_in(b->loop, &b->due_timer, at > now ? at - now : 0);
}

/* --- loading -------------------------------------------------------------- */

/* Plan one loaded row: catch-up slots are queued, the rest goes in the heap. */
static void plan(struct beat *b, struct beat_sched *s, int64_t from, bool log_change)
{
    int64_t now = (int64_t)(wall_ms() / 1000);
    unsigned n = 0;
    if (s->last > from)
        from = s->last;
    int rc = beat_plan_load(s, from, now, b->catchup, b->cfg->beat_catchup_max, &n);
    for (unsigned i = 0; i < n; i++) {
        int64_t nx = i + 1 < n ? b->catchup[i + 1] : (rc ? 0 : s->next);
        queue_slot(b, s, b->catchup[i], nx, true);
    }
    if (n)
        LOG(LOG_INFO, "beat: catching up missed slots", L_STR("name", s->name),
            L_STR("misfire", s->misfire == MISFIRE_SKIP        ? "skip"
                             : s->misfire == MISFIRE_FIRE_ONCE ? "fire_once"
                                                               : "fire_all"),
            L_INT("firing", n));
    if (!rc)
        beat_heap_push(&b->heap, s);
    if (log_change) {
        char when[32] = "never";
        if (!rc)
            beat_rfc3339(s->next, when, sizeof(when));
        LOG(LOG_INFO, "Schedule changed", L_STR("name", s->name), L_INT("id", s->id),
            L_STR("next_fire", when));
    }
}

/* A row of BEAT_COLUMNS as a schedule, or NULL (logged) when it cannot run. */
static struct beat_sched *from_row(struct beat *b, PGresult *res, int r, int64_t *from)
{
    const char *name = PQgetvalue(res, r, 1), *expr = PQgetvalue(res, r, 2);
    char err[320];
    struct beat_sched *s = calloc(1, sizeof(*s));
    s->id = atoll(PQgetvalue(res, r, 0));
    s->last = INT64_MIN;
    if (cron_parse(expr, &s->cron, err, sizeof(err))) {
        LOG(LOG_WARN, "beat: schedule has an invalid cron expression; not firing it",
            L_STR("name", name), L_STR("cron", expr), L_STR("error", err));
        free(s);
        return NULL;
    }
    s->tz = beat_zones_get(&b->zones, b->cfg->tzdir, PQgetvalue(res, r, 3), err, sizeof(err));
    if (!s->tz) {
        LOG(LOG_WARN, "beat: schedule has an unknown time zone; not firing it", L_STR("name", name),
            L_STR("error", err));
        free(s);
        return NULL;
    }
    const char *m = PQgetvalue(res, r, 4);
    s->misfire = !strcmp(m, "skip")       ? MISFIRE_SKIP
                 : !strcmp(m, "fire_all") ? MISFIRE_FIRE_ALL
                                          : MISFIRE_FIRE_ONCE;
    s->overlap =
        !strcmp(PQgetvalue(res, r, 5), "skip_if_running") ? OVERLAP_SKIP_IF_RUNNING : OVERLAP_ALLOW;
    s->jitter_ms = atoi(PQgetvalue(res, r, 6));
    s->catchup_window_s = atoll(PQgetvalue(res, r, 7)) / 1000;
    s->name = strdup(name);
    if (b->redis) {
        json_error_t je;
        s->job = json_loads(PQgetvalue(res, r, 11), 0, &je);
        s->last_job = PQgetisnull(res, r, 12) ? 0 : atoll(PQgetvalue(res, r, 12));
    }
    int64_t updated = atoll(PQgetvalue(res, r, 9));
    *from = updated;
    if (!PQgetisnull(res, r, 8) && atoll(PQgetvalue(res, r, 8)) > updated)
        *from = atoll(PQgetvalue(res, r, 8));
    return s;
}

static void want_signature(struct beat *b);
static void next_one_load(struct beat *b);

static void on_loaded(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = (struct beat *)((char *)q - offsetof(struct beat, load_q));
    b->load_inflight = false;
    if (b->stopping || !b->leading)
        return;
    if (err) {
        LOG(LOG_WARN, "beat: loading schedules failed; retrying", L_STR("error", err));
        b->load_again = true; /* the next (re)subscription or poll reloads */
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
    /* Keep what this beat already sent: slots up to each one's `last`. */
    struct beat_sched **old = b->all;
    unsigned nold = b->nall;
    b->all = NULL;
    b->nall = b->capall = 0;
    b->heap.n = 0;
    for (unsigned i = 0; i < nold; i++)
        old[i]->heap_idx = 0;
    unsigned o = 0;
    for (int r = 0; r < rows; r++) {
        int64_t from;
        struct beat_sched *s = from_row(b, res, r, &from);
        if (!s)
            continue;
        while (o < nold && old[o]->id < s->id)
            o++;
        if (o < nold && old[o]->id == s->id) {
            s->last = old[o]->last;
            if (old[o]->last_job > s->last_job)
                s->last_job = old[o]->last_job; /* recorded after this load read it */
        }
        put_sched(b, s);
        plan(b, s, from, false);
    }
    for (unsigned i = 0; i < nold; i++)
        sched_free(old[i]);
    free(old);
    b->loaded = true;
    b->replanning = false;
    LOG(LOG_INFO, "beat: schedules loaded", L_INT("schedules", b->nall),
        L_INT("catchup_slots", b->pend.n));
    if (b->load_again)
        full_load(b);
    flush(b);
    arm(b);
}

static void full_load(struct beat *b)
{
    if (b->stopping || !b->leading)
        return;
    if (b->load_inflight) {
        b->load_again = true;
        return;
    }
    b->load_again = false;
    b->n_one = 0; /* a full load covers them */
    snprintf(b->load_limit, sizeof(b->load_limit), "%u", b->cfg->beat_max_schedules + 1);
    b->load_vals[0] = b->load_limit;
    b->load_q = (struct pg_query){.fn = on_loaded,
                                  .sql = SQL_BEAT_LOAD_ALL,
                                  .nparams = 1,
                                  .values = b->load_vals,
                                  .timeout_ms = 60000,
                                  .retry_safe = true};
    b->load_inflight = true;
    pg_query_submit(&b->pg, &b->load_q);
    want_signature(b);
}

static void on_one_loaded(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = (struct beat *)((char *)q - offsetof(struct beat, one_q));
    b->one_inflight = false;
    if (b->stopping || !b->leading)
        return;
    int64_t id = atoll(b->one_id);
    if (err) {
        LOG(LOG_WARN, "beat: reloading a changed schedule failed; reloading all",
            L_INT("schedule_id", id), L_STR("error", err));
        full_load(b);
        return;
    }
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 10)[0] != 't') {
        struct beat_sched *s = find(b, id);
        if (s)
            LOG(LOG_INFO, "Schedule changed", L_STR("name", s->name), L_INT("id", id),
                L_STR("state", PQntuples(res) ? "disabled" : "deleted"));
        remove_sched(b, id);
    } else {
        int64_t from;
        struct beat_sched *s = from_row(b, res, 0, &from);
        if (s) {
            struct beat_sched *old = find(b, id);
            if (old) {
                s->last = old->last;
                if (old->last_job > s->last_job)
                    s->last_job = old->last_job;
            }
            put_sched(b, s);
            plan(b, s, from, true);
        } else {
            remove_sched(b, id);
        }
    }
    flush(b);
    arm(b);
    next_one_load(b);
}

static void next_one_load(struct beat *b)
{
    if (b->one_inflight || !b->n_one || b->stopping || !b->leading)
        return;
    snprintf(b->one_id, sizeof(b->one_id), "%lld", (long long)b->one_ids[0]);
    memmove(b->one_ids, b->one_ids + 1, (--b->n_one) * sizeof(*b->one_ids));
    b->one_vals[0] = b->one_id;
    b->one_q = (struct pg_query){.fn = on_one_loaded,
                                 .sql = SQL_BEAT_LOAD_ONE,
                                 .nparams = 1,
                                 .values = b->one_vals,
                                 .timeout_ms = BEAT_QUERY_TIMEOUT_MS,
                                 .retry_safe = true};
    b->one_inflight = true;
    pg_query_submit(&b->pg, &b->one_q);
    want_signature(b);
}

static void on_notify(struct pg_listener *lis, const char *channel, const char *payload)
{
    struct beat *b = lis->data;
    if (!b->leading)
        return;
    if (!payload) {
        /* (Re)subscribed: anything may have changed while we were not. */
        full_load(b);
        return;
    }
    int64_t id = atoll(payload);
    for (unsigned i = 0; i < b->n_one; i++)
        if (b->one_ids[i] == id)
            return;
    if (b->n_one == BEAT_ONE_LOADS_MAX || b->load_inflight) {
        full_load(b); /* a storm of changes: one query for all of them */
        return;
    }
    b->one_ids[b->n_one++] = id;
    next_one_load(b);
}

/* --- the polling fallback ------------------------------------------------- */

static void on_signature(struct pg_query *q, PGresult *res, const char *err)
{
    struct beat *b = (struct beat *)((char *)q - offsetof(struct beat, sig_q));
    bool was_poll = b->sig_poll;
    b->sig_inflight = b->sig_poll = false;
    if (err || b->stopping || !b->leading)
        return;
    const char *sig = PQgetvalue(res, 0, 0);
    bool changed = strcmp(sig, b->signature) != 0;
    snprintf(b->signature, sizeof(b->signature), "%s", sig);
    if (changed && was_poll && b->loaded) {
        LOG(LOG_INFO, "Schedule changed", L_STR("reason", "poll: a change was not notified"));
        full_load(b);
    }
}

/* Queued behind the load in flight, so it describes what that load saw
 * (or something newer, which the NOTIFY then reloads). */
static void want_signature(struct beat *b)
{
    if (b->sig_inflight) {
        b->sig_poll = false; /* it now follows a load: not a poll's answer */
        return;
    }
    if (b->stopping)
        return;
    b->sig_q = (struct pg_query){.fn = on_signature,
                                 .sql = SQL_BEAT_SIGNATURE,
                                 .timeout_ms = BEAT_QUERY_TIMEOUT_MS,
                                 .retry_safe = true};
    b->sig_inflight = true;
    pg_query_submit(&b->pg, &b->sig_q);
}

static void on_poll(struct loop *l, struct timer *t)
{
    struct beat *b = (struct beat *)((char *)t - offsetof(struct beat, poll_timer));
    if (b->stopping)
        return;
    loop_timer_in(l, t, b->cfg->beat_poll_interval_ms);
    if (!b->leading)
        return;
    if (!b->loaded || b->load_again)
        full_load(b);
    else if (!b->sig_inflight) {
        want_signature(b);
        b->sig_poll = true;
    }
}

/* --- leadership, start, stop ---------------------------------------------- */

static bool elected(struct beat *b)
{
    struct server *s = b->loop->srv;
    return !leader_election_of(s, ELECTION_BEAT) || leader_election_is(s, ELECTION_BEAT);
}

static void check_leadership(struct beat *b)
{
    bool now = elected(b);
    if (now == b->leading || b->stopping)
        return;
    b->leading = now;
    if (now) {
        LOG(LOG_INFO, "beat active: firing schedules");
        full_load(b);
    } else {
        /* A standby fires nothing; slots already sent are settled by their key. */
        LOG(LOG_INFO, "beat standby: not firing");
        loop_timer_cancel(b->loop, &b->due_timer);
        loop_timer_cancel(b->loop, &b->retry_timer);
        if (b->record_retry) { /* the new leader fires those slots again: same jobs */
            b->record_retry = false;
            free_fire_text(b);
        }
        clear_all(b);
        b->pend.n = 0;
        b->n_one = 0;
        b->loaded = false;
        b->replanning = false;
    }
}

static void beat_wake(struct loop *l)
{
    struct beat *b = l->modules[MODULE_BEAT];
    if (b)
        check_leadership(b);
}

static const char *beat_unmet(const struct config *cfg)
{
    return *cfg->database_url ? NULL : "it needs DATABASE_URL (PostgreSQL)";
}

static int beat_init(struct server *s)
{
    if (!(s->cfg->role_mask & (1u << MODULE_BEAT)))
        return 0;
    return beat_file_reconcile(s->cfg);
}

static int beat_start(struct loop *l)
{
    if (l->id != 0)
        return 0;
    const struct config *cfg = l->srv->cfg;
    struct beat *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    l->modules[MODULE_BEAT] = b;
    b->loop = l;
    b->cfg = cfg;
    b->catchup = calloc(cfg->beat_catchup_max, sizeof(*b->catchup));
    if (!b->catchup)
        return -ENOMEM;
    b->due_timer.fn = on_due;
    b->poll_timer.fn = on_poll;
    b->retry_timer.fn = on_retry;
    const char *listen_url = *cfg->database_direct_url    ? cfg->database_direct_url
                             : cfg->pg_pooler_transaction ? NULL
                                                          : cfg->database_url;
    /* One connection: loads, signature checks and fires run in order. */
    struct pg_pool_config pc = {.conninfo = cfg->database_url,
                                .listen_conninfo = listen_url,
                                .size = 1,
                                .max_inflight = 16};
    if (pg_pool_init(&b->pg, l, &pc) < 0)
        return -ENOMEM;
    b->has_listen = listen_url != NULL;
    b->redis = cfg->queue_backend == QUEUE_REDIS;
    if (b->redis && beat_redis_init(&b->rq, l, cfg->redis_url) < 0)
        return -1;
    b->lis = (struct pg_listener){.channel = "trireme_schedules", .fn = on_notify, .data = b};
    if (b->has_listen)
        pg_listen(&b->pg, &b->lis);
    else
        LOG(LOG_WARN,
            "beat: no direct database URL for LISTEN behind a transaction pooler; "
            "changes are seen every --beat-poll-interval (set DATABASE_DIRECT_URL)",
            L_INT("poll_interval_ms", cfg->beat_poll_interval_ms));
    loop_timer_in(l, &b->poll_timer, cfg->beat_poll_interval_ms);
    LOG(LOG_INFO, "beat started",
        L_STR("election", leader_election_of(l->srv, ELECTION_BEAT) ? "beat" : "none"),
        L_STR("queue_backend", b->redis ? "redis" : "postgres"),
        L_INT("poll_interval_ms", cfg->beat_poll_interval_ms), L_STR("tzdir", cfg->tzdir));
    b->leading = false;
    /* Without a LISTEN connection nothing (re)subscribes: load now. With
     * one, the subscription's confirmation loads (nothing is missed). */
    bool now = elected(b);
    b->leading = now;
    if (now)
        LOG(LOG_INFO, "beat active: firing schedules");
    if (now && !b->has_listen)
        full_load(b);
    return 0;
}

static void beat_stop(struct loop *l)
{
    struct beat *b = l->modules[MODULE_BEAT];
    if (!b || b->stopping)
        return;
    b->stopping = true;
    loop_timer_cancel(l, &b->due_timer);
    loop_timer_cancel(l, &b->poll_timer);
    loop_timer_cancel(l, &b->retry_timer);
    LOG(LOG_INFO, "beat stopping", L_INT("unsent_slots", b->pend.n));
    b->pend.n = 0;
    /* A fire statement in flight is let to finish: it holds the slots (on
     * Redis: their enqueue is let to finish and be recorded). */
    if (!b->fire_inflight)
        close_all(b);
}

static void beat_cleanup(struct server *s)
{
    struct beat *b = s->loops[0].modules[MODULE_BEAT];
    if (!b)
        return;
    pg_pool_free(&b->pg);
    if (b->redis)
        beat_redis_free(&b->rq);
    clear_all(b);
    free(b->all);
    beat_heap_free(&b->heap);
    beat_zones_free(&b->zones);
    free(b->pend.v);
    free(b->inflight.v);
    for (int i = 0; i < 6; i++)
        free(b->fire_text[i]);
    free(b->rs);
    free(b->catchup);
    free(b);
    s->loops[0].modules[MODULE_BEAT] = NULL;
}

static const struct module_command beat_commands[] = {
    {"schedules",
     "periodic schedules: list, get NAME, create NAME --cron=EXPR --kind=K ..., update NAME ..., "
     "delete|enable|disable NAME",
     beat_cli_schedules},
    {NULL, NULL, NULL},
};

const struct module beat_module = {
    .name = "beat",
    .summary = "fires periodic schedules (cron, @every) exactly once per slot",
    .is_role = true,
    .unmet = beat_unmet,
    .init = beat_init,
    .start = beat_start,
    .stop = beat_stop,
    .wake = beat_wake,
    .cleanup = beat_cleanup,
    .commands = beat_commands,
};
