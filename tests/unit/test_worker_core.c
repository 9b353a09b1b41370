/*
 * test_worker_core.c - the worker core on a fake, in-memory queue backend:
 * fetching within the slots, outcomes and retry delays, unknown kinds and
 * bad payloads, the soft time limit, a lost lease, the drain (waiting for
 * runs and for the backend's operations), the hand-back at the end of
 * the grace period, and batches beyond the free slots (instant jobs; slow
 * ones parked, started in order, cancelled, handed back at a drain). Real
 * ring, real timers, real built-in kinds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/config.h"
#include "kernel/loop.h"
#include "kernel/server.h"
#include "modules/worker/core.h"

static const struct loop_config lcfg = {
    .entries = 64, .recv_bufs = 16, .recv_buf_size = 1024, .pool_chunk = 4096, .pool_max_free = 4};

#define FAKE_MAX 64

struct fake_job {
    const char *kind, *payload;
    int attempt;
    uint64_t timeout_ms;
};

struct fake_outcome {
    int64_t id;
    uint64_t at_ns; /* when it was recorded */
    enum worker_verdict verdict;
    char error[160];
    char result[64];
    uint64_t delay_ms;
};

/* The backend: a list of jobs to deliver, and what was recorded. */
struct fake {
    struct worker w; /* first */
    struct fake_job jobs[FAKE_MAX];
    unsigned njobs, next;
    struct fake_outcome out[FAKE_MAX];
    unsigned nout, buffered, flushes, closes, fetches;
    unsigned max_running, max_parked;
    unsigned sizes[FAKE_MAX], nsizes; /* jobs delivered per fetch */
    bool hold_flush;                  /* a flush stays "in flight" until released */
    unsigned held;
    struct timer deliver, release;
    int64_t lose_id;    /* worker_run_lose this job once it runs */
    int64_t hb_lose_id; /* a lease renewal that includes this job does not renew it */
    unsigned renewals, renewed, hb_overlaps;
    struct timer hb_answer;
    uint64_t delay_ms; /* each delivery comes this much after its fetch */
};

static struct fake *fake_of(struct worker *w)
{
    return (struct fake *)w;
}

static void stop_when_idle(struct fake *f)
{
    if (f->w.closed || (!f->w.draining && f->next == f->njobs && !f->w.running && !f->w.nparked &&
                        !f->held && !f->w.inflight))
        f->w.loop->stop_now = true;
}

static void on_deliver(struct loop *l, struct timer *t)
{
    struct fake *f = container_of(t, struct fake, deliver);
    struct worker *w = &f->w;
    unsigned n = worker_fetch_size(w, 0);
    if (f->nsizes < FAKE_MAX)
        f->sizes[f->nsizes++] = n < f->njobs - f->next ? n : f->njobs - f->next;
    for (unsigned i = 0; i < n && f->next < f->njobs; i++) {
        const struct fake_job *j = &f->jobs[f->next++];
        struct worker_run *r = worker_run_new(w);
        r->job.id = f->next;
        r->job.attempt = j->attempt ? j->attempt : 1;
        r->job.max_attempts = 3;
        r->job.timeout_ms = j->timeout_ms;
        if (w->running > f->max_running)
            f->max_running = w->running;
        worker_run_start(w, r, j->kind, strlen(j->kind), j->payload, strlen(j->payload));
        if (w->nparked > f->max_parked)
            f->max_parked = w->nparked;
    }
    worker_op_end(w); /* after the runs started, as a backend's answer does */
    if (f->lose_id) {
        struct worker_run *r = worker_run_find(w, f->lose_id);
        if (r) {
            f->lose_id = 0;
            worker_run_lose(w, r, "test: lease lost", false);
        }
    }
    stop_when_idle(f);
}

static int fake_open(struct worker *w)
{
    fake_of(w)->deliver.fn = on_deliver;
    return 0;
}

/* Deliveries come from the loop, as a real backend's answers do. */
static void fake_fetch(struct worker *w)
{
    struct fake *f = fake_of(w);
    f->fetches++;
    if (f->next == f->njobs || timer_armed(&f->deliver) || !worker_fetch_size(w, 0))
        return;
    worker_op_begin(w);
    loop_timer_in(w->loop, &f->deliver, f->delay_ms);
}

static void fake_record(struct worker *w, struct worker_run *r, const struct worker_outcome *o)
{
    struct fake *f = fake_of(w);
    assert_true(f->nout < FAKE_MAX);
    struct fake_outcome *x = &f->out[f->nout++];
    x->id = r->job.id;
    x->at_ns = w->loop->now_ns;
    x->verdict = o->verdict;
    x->delay_ms = o->delay_ms;
    if (o->error)
        snprintf(x->error, sizeof(x->error), "%s", o->error);
    if (o->result) {
        char *s = json_dumps(o->result, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(x->result, sizeof(x->result), "%s", s);
        free(s);
    }
    f->buffered++;
}

static void on_release(struct loop *l, struct timer *t)
{
    struct fake *f = container_of(t, struct fake, release);
    f->held--;
    worker_op_end(&f->w);
    stop_when_idle(f);
}

static void fake_flush(struct worker *w)
{
    struct fake *f = fake_of(w);
    if (!f->buffered)
        return;
    f->buffered = 0;
    f->flushes++;
    if (f->hold_flush) {
        f->held++;
        worker_op_begin(w);
        f->release.fn = on_release;
        loop_timer_in(w->loop, &f->release, 30);
    }
    stop_when_idle(f);
}

static void fake_progress(struct worker *w, struct worker_run *r, int percent, const char *step)
{
}

/* The store answers a renewal 10 ms later: every run in it renewed but
 * hb_lose_id. */
static void on_hb_answer(struct loop *l, struct timer *t)
{
    struct fake *f = container_of(t, struct fake, hb_answer);
    struct worker_run *r = f->hb_lose_id ? worker_run_find(&f->w, f->hb_lose_id) : NULL;
    if (r && r->hb_gen == f->w.hb_gen)
        worker_run_lose(&f->w, r, "test: lease not renewed", false);
    worker_heartbeat_done(&f->w);
    stop_when_idle(f);
}

static bool fake_heartbeat(struct worker *w)
{
    struct fake *f = fake_of(w);
    if (timer_armed(&f->hb_answer))
        f->hb_overlaps++;
    unsigned n = 0;
    struct list *node;
    list_for_each(node, &w->runs)
    {
        struct worker_run *r = list_entry(node, struct worker_run, node);
        if (!r->lost) {
            r->hb_gen = w->hb_gen;
            n++;
        }
    }
    if (!n)
        return false;
    f->renewals++;
    f->renewed += n;
    f->hb_answer.fn = on_hb_answer;
    loop_timer_in(w->loop, &f->hb_answer, 10);
    return true;
}

static void fake_drain(struct worker *w)
{
}

static void fake_close(struct worker *w)
{
    fake_of(w)->closes++;
    w->loop->stop_now = true;
}

static void fake_free(struct worker *w)
{
    loop_timer_cancel(w->loop, &fake_of(w)->deliver);
    loop_timer_cancel(w->loop, &fake_of(w)->release);
    loop_timer_cancel(w->loop, &fake_of(w)->hb_answer);
}

static const struct queue_worker_ops fake_ops = {
    .worker_size = sizeof(struct fake),
    .run_size = sizeof(struct worker_run),
    .open = fake_open,
    .fetch = fake_fetch,
    .record = fake_record,
    .flush = fake_flush,
    .progress = fake_progress,
    .heartbeat = fake_heartbeat,
    .drain = fake_drain,
    .close = fake_close,
    .free = fake_free,
};

struct rig {
    struct config cfg;
    struct server srv;
    struct loop l;
    struct fake *f;
    struct timer drain_at;
};

static void on_drain_at(struct loop *l, struct timer *t)
{
    struct rig *g = container_of(t, struct rig, drain_at);
    worker_drain(&g->f->w);
}

/* Run the loop; the drain begins after ms. */
static void rig_run_and_drain(struct rig *g, uint64_t ms)
{
    g->drain_at.fn = on_drain_at;
    loop_timer_in(&g->l, &g->drain_at, ms);
    worker_want(&g->f->w);
    assert_int_equal(loop_run(&g->l), 0);
}

static void rig_up(struct rig *g, unsigned concurrency, uint64_t grace_ms)
{
    memset(g, 0, sizeof(*g));
    g->cfg.concurrency = concurrency;
    g->cfg.batch_size = 4;
    g->cfg.job_timeout_ms = 60000;
    g->cfg.grace_ms = grace_ms;
    g->cfg.lease_ms = 30000;
    snprintf(g->cfg.queues, sizeof(g->cfg.queues), "default, other");
    g->srv.cfg = &g->cfg;
    g->srv.nloops = 1;
    assert_int_equal(loop_init(&g->l, 0, &lcfg), 0);
    g->l.srv = &g->srv;
    g->srv.loops = &g->l;
    struct worker *w = NULL;
    assert_int_equal(worker_open(&g->l, &fake_ops, NULL, &w), 0);
    g->f = fake_of(w);
}

static void rig_add(struct rig *g, const char *kind, const char *payload, int attempt,
                    uint64_t timeout_ms)
{
    g->f->jobs[g->f->njobs++] = (struct fake_job){
        .kind = kind, .payload = payload, .attempt = attempt, .timeout_ms = timeout_ms};
}

static void rig_run(struct rig *g)
{
    worker_want(&g->f->w);
    assert_int_equal(loop_run(&g->l), 0);
}

static void rig_down(struct rig *g)
{
    worker_free(&g->f->w);
    loop_free(&g->l);
}

static const struct fake_outcome *outcome_of(struct fake *f, int64_t id)
{
    for (unsigned i = 0; i < f->nout; i++)
        if (f->out[i].id == id)
            return &f->out[i];
    return NULL;
}

static void runs_every_job_within_its_slots(void **state)
{
    struct rig g;
    rig_up(&g, 3, 30000);
    assert_int_equal(g.f->w.nqueues, 2);
    assert_string_equal(g.f->w.queue[1], "other");
    for (int i = 0; i < 10; i++)
        rig_add(&g, "sleep", "{\"ms\": 5}", 1, 0);
    rig_run(&g);
    assert_int_equal(g.f->nout, 10);
    for (unsigned i = 0; i < g.f->nout; i++) {
        assert_int_equal(g.f->out[i].verdict, OUTCOME_OK);
        assert_string_equal(g.f->out[i].result, "{\"slept_ms\":5}");
    }
    assert_true(g.f->max_running <= 3);
    assert_int_equal(g.f->w.running, 0);
    assert_true(g.f->flushes >= 1);
    rig_down(&g);
}

static void failures_retry_with_a_growing_delay(void **state)
{
    struct rig g;
    rig_up(&g, 4, 30000);
    rig_add(&g, "sleep", "{\"ms\": 0, \"fail\": \"boom\"}", 1, 0);
    rig_add(&g, "sleep", "{\"ms\": 0, \"fail\": \"boom\"}", 3, 0);
    rig_add(&g, "nosuchkind", "{}", 1, 0);
    rig_add(&g, "noop", "{not json", 1, 0);
    rig_run(&g);
    const struct fake_outcome *a = outcome_of(g.f, 1), *b = outcome_of(g.f, 2),
                              *c = outcome_of(g.f, 3), *d = outcome_of(g.f, 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->verdict, OUTCOME_FAIL);
    assert_string_equal(a->error, "boom");
    /* 1 s base, doubled per attempt, +-25% jitter. */
    assert_true(a->delay_ms >= 750 && a->delay_ms <= 1250);
    assert_true(b->delay_ms >= 3000 && b->delay_ms <= 5000);
    assert_int_equal(c->verdict, OUTCOME_PERMANENT);
    assert_non_null(strstr(c->error, "unknown job kind 'nosuchkind'"));
    assert_int_equal(d->verdict, OUTCOME_PERMANENT);
    assert_string_equal(d->error, "payload is not valid JSON");
    rig_down(&g);
}

static void the_soft_limit_stops_a_job(void **state)
{
    struct rig g;
    rig_up(&g, 2, 30000);
    rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 30);
    uint64_t start = g.l.now_ns;
    rig_run(&g);
    assert_int_equal(g.f->nout, 1);
    assert_int_equal(g.f->out[0].verdict, OUTCOME_FAIL);
    assert_non_null(strstr(g.f->out[0].error, "stopped before the sleep ended"));
    assert_true(g.l.now_ns - start < 5000ull * 1000000);
    rig_down(&g);
}

static void a_lost_run_writes_nothing_more_and_frees_its_slot(void **state)
{
    struct rig g;
    rig_up(&g, 1, 30000);
    rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    rig_add(&g, "noop", "{}", 1, 0);
    g.f->lose_id = 1;
    rig_run(&g);
    /* Job 1: only the drop; its stop did not write a failure. Job 2 got
     * the slot that job 1 gave up. */
    assert_int_equal(g.f->nout, 2);
    assert_int_equal(outcome_of(g.f, 1)->verdict, OUTCOME_DROP);
    assert_int_equal(outcome_of(g.f, 2)->verdict, OUTCOME_OK);
    assert_int_equal(g.f->w.running, 0);
    rig_down(&g);
}

static void leases_are_renewed_and_a_run_not_renewed_is_lost(void **state)
{
    struct rig g;
    rig_up(&g, 2, 30000);
    g.cfg.lease_ms = 300; /* renewals every 100 ms, re-armed as worker_open arms them */
    loop_timer_in(&g.l, &g.f->w.hb_timer, g.cfg.lease_ms / 3);
    rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    rig_add(&g, "sleep", "{\"ms\": 350}", 1, 0);
    g.f->hb_lose_id = 1;
    uint64_t start = g.l.now_ns;
    rig_run(&g);
    /* Job 1 stopped at the first renewal, not after its 10 s; job 2 was
     * renewed (three ticks fall within its run) and finished. */
    assert_int_equal(g.f->nout, 2);
    assert_int_equal(outcome_of(g.f, 1)->verdict, OUTCOME_DROP);
    assert_int_equal(outcome_of(g.f, 2)->verdict, OUTCOME_OK);
    assert_true(g.f->renewals >= 2);
    assert_true(g.f->renewed >= g.f->renewals + 1); /* the first held both */
    assert_int_equal(g.f->hb_overlaps, 0);
    assert_false(g.f->w.hb_inflight);
    assert_true(g.l.now_ns - start < 5000ull * 1000000);
    rig_down(&g);
}

static void the_drain_waits_for_runs_and_operations(void **state)
{
    struct rig g;
    rig_up(&g, 2, 30000);
    rig_add(&g, "sleep", "{\"ms\": 40}", 1, 0);
    g.f->hold_flush = true;
    /* The drain begins while the job runs: the run, then its flush (held
     * 30 ms in flight), must end before the backend is closed. */
    uint64_t start = g.l.now_ns;
    rig_run_and_drain(&g, 10);
    assert_true(g.l.now_ns - start >= 70ull * 1000000);
    assert_int_equal(g.f->closes, 1);
    assert_int_equal(g.f->nout, 1);
    assert_int_equal(g.f->out[0].verdict, OUTCOME_OK);
    assert_int_equal(g.f->held, 0);
    assert_int_equal(g.f->w.inflight, 0);
    rig_down(&g);
}

static void the_grace_period_hands_back_what_still_runs(void **state)
{
    struct rig g;
    rig_up(&g, 2, 200);
    rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    uint64_t start = g.l.now_ns;
    rig_run_and_drain(&g, 10);
    /* Handed back 20 ms before the 200 ms grace ends, then closed. */
    assert_true(g.l.now_ns - start < 1000ull * 1000000);
    assert_int_equal(g.f->closes, 1);
    assert_int_equal(g.f->nout, 2);
    assert_int_equal(g.f->out[0].verdict, OUTCOME_BACK);
    assert_int_equal(g.f->out[1].verdict, OUTCOME_BACK);
    assert_int_equal(g.f->w.running, 0);
    rig_down(&g);
}

static void instant_jobs_are_fetched_a_batch_at_a_time(void **state)
{
    struct rig g;
    rig_up(&g, 2, 30000);
    g.cfg.batch_size = 8;
    for (int i = 0; i < 20; i++)
        rig_add(&g, "noop", "{}", 1, 0);
    rig_run(&g);
    assert_int_equal(g.f->nout, 20);
    for (unsigned i = 0; i < g.f->nout; i++)
        assert_int_equal(g.f->out[i].verdict, OUTCOME_OK);
    /* The first fetch knows nothing of the jobs: the free slots. Then each
     * job finished within its start, so a whole batch each time. */
    assert_true(g.f->nsizes >= 3);
    assert_int_equal(g.f->sizes[0], 2);
    assert_int_equal(g.f->sizes[1], 8);
    assert_int_equal(g.f->sizes[2], 8);
    assert_int_equal(g.f->max_parked, 0);
    assert_true(g.f->max_running <= 2);
    rig_down(&g);
}

static void slow_jobs_beyond_the_slots_wait_parked_in_order(void **state)
{
    struct rig g;
    rig_up(&g, 2, 30000);
    g.cfg.batch_size = 8;
    rig_add(&g, "noop", "{}", 1, 0);
    rig_add(&g, "noop", "{}", 1, 0);
    /* A time limit of 60 ms each, while the last pair waits ~60 ms for a
     * slot: parked jobs' limits do not count, so none is stopped. */
    for (int i = 0; i < 6; i++)
        rig_add(&g, "sleep", "{\"ms\": 30}", 1, 60);
    rig_run(&g);
    assert_int_equal(g.f->sizes[1], 6); /* the batch took all six */
    assert_int_equal(g.f->max_parked, 4);
    assert_true(g.f->max_running <= 2);
    assert_int_equal(g.f->nout, 8);
    for (unsigned i = 0; i < g.f->nout; i++)
        assert_int_equal(g.f->out[i].verdict, OUTCOME_OK);
    /* Started in claim order: the last pair finished last. */
    assert_true(g.f->out[6].id >= 7 && g.f->out[7].id >= 7);
    assert_int_equal(g.f->w.nparked, 0);
    assert_int_equal(g.f->w.running, 0);
    rig_down(&g);
}

static void a_parked_job_lost_is_never_started(void **state)
{
    struct rig g;
    rig_up(&g, 1, 30000);
    rig_add(&g, "noop", "{}", 1, 0);
    rig_add(&g, "sleep", "{\"ms\": 30}", 1, 0);
    rig_add(&g, "sleep", "{\"ms\": 30}", 1, 0);
    g.f->lose_id = 3; /* parked behind job 2 when it is lost */
    rig_run(&g);
    assert_int_equal(g.f->nout, 3);
    assert_int_equal(outcome_of(g.f, 2)->verdict, OUTCOME_OK);
    assert_int_equal(outcome_of(g.f, 3)->verdict, OUTCOME_DROP);
    assert_int_equal(g.f->w.nparked, 0);
    rig_down(&g);
}

static void a_drain_hands_parked_jobs_straight_back(void **state)
{
    struct rig g;
    rig_up(&g, 1, 400);
    rig_add(&g, "noop", "{}", 1, 0);
    for (int i = 0; i < 3; i++)
        rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    uint64_t start = g.l.now_ns;
    rig_run_and_drain(&g, 20);
    assert_int_equal(g.f->closes, 1);
    assert_int_equal(g.f->nout, 4);
    /* Jobs 3 and 4 waited for the slot job 2 held: back at the drain's
     * start; job 2 at the end of the grace period. */
    assert_int_equal(outcome_of(g.f, 3)->verdict, OUTCOME_BACK);
    assert_int_equal(outcome_of(g.f, 4)->verdict, OUTCOME_BACK);
    assert_true(outcome_of(g.f, 3)->at_ns - start < 200ull * 1000000);
    assert_int_equal(outcome_of(g.f, 2)->verdict, OUTCOME_BACK);
    assert_true(outcome_of(g.f, 2)->at_ns - start >= 300ull * 1000000);
    assert_int_equal(g.f->w.running, 0);
    assert_int_equal(g.f->w.nparked, 0);
    rig_down(&g);
}

static void a_batch_answered_after_the_drain_began_goes_straight_back(void **state)
{
    struct rig g;
    rig_up(&g, 1, 400);
    g.f->delay_ms = 50;
    rig_add(&g, "noop", "{}", 1, 0);
    for (int i = 0; i < 4; i++)
        rig_add(&g, "sleep", "{\"ms\": 10000}", 1, 0);
    uint64_t start = g.l.now_ns;
    /* Delivery 1 (the noop) at 50 ms, delivery 2 asked for then and
     * answered at 100 ms, after the drain began at 75 ms. */
    rig_run_and_drain(&g, 75);
    assert_int_equal(g.f->closes, 1);
    assert_int_equal(g.f->nout, 5);
    for (int64_t id = 3; id <= 5; id++) { /* parked: back as they arrived */
        assert_int_equal(outcome_of(g.f, id)->verdict, OUTCOME_BACK);
        assert_true(outcome_of(g.f, id)->at_ns - start < 250ull * 1000000);
    }
    assert_int_equal(outcome_of(g.f, 2)->verdict, OUTCOME_BACK); /* ran: back at grace end */
    assert_int_equal(g.f->w.nparked, 0);
    rig_down(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_every_job_within_its_slots),
        cmocka_unit_test(failures_retry_with_a_growing_delay),
        cmocka_unit_test(the_soft_limit_stops_a_job),
        cmocka_unit_test(a_lost_run_writes_nothing_more_and_frees_its_slot),
        cmocka_unit_test(leases_are_renewed_and_a_run_not_renewed_is_lost),
        cmocka_unit_test(the_drain_waits_for_runs_and_operations),
        cmocka_unit_test(the_grace_period_hands_back_what_still_runs),
        cmocka_unit_test(instant_jobs_are_fetched_a_batch_at_a_time),
        cmocka_unit_test(slow_jobs_beyond_the_slots_wait_parked_in_order),
        cmocka_unit_test(a_parked_job_lost_is_never_started),
        cmocka_unit_test(a_drain_hands_parked_jobs_straight_back),
        cmocka_unit_test(a_batch_answered_after_the_drain_began_goes_straight_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
