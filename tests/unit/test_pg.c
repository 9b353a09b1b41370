/*
 * test_pg.c - kernel/pg.c against a real PostgreSQL server (and a closed
 * port, for failed connection attempts).
 *
 * Needs TRIREME_TEST_DATABASE_URL (tools/test.sh starts a private server
 * with tools/pg-local.sh and sets it). Without it the tests fail, loudly:
 * a database client that was never exercised is not tested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/pg.h"

static const struct loop_config lcfg = {
    .entries = 256, .recv_bufs = 16, .recv_buf_size = 1024, .pool_chunk = 4096, .pool_max_free = 4};

static const char *url(void)
{
    const char *u = getenv("TRIREME_TEST_DATABASE_URL");
    if (!u || !*u)
        fail_msg("TRIREME_TEST_DATABASE_URL is not set: start one with tools/pg-local.sh start");
    return u;
}

struct ctx {
    struct loop l;
    struct pg_pool pool;
    int done, want;
    struct timer guard;
};

static void on_guard(struct loop *l, struct timer *t)
{
    l->stop_now = true; /* the test's time bound: assertions below will fail */
}

static void setup_ctx_at(struct ctx *c, const char *conninfo, unsigned size, const char *listen_url)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(loop_init(&c->l, 0, &lcfg), 0);
    struct pg_pool_config pc = {
        .conninfo = conninfo, .listen_conninfo = listen_url, .size = size, .max_inflight = 64};
    assert_int_equal(pg_pool_init(&c->pool, &c->l, &pc), 0);
    c->guard.fn = on_guard;
    loop_timer_in(&c->l, &c->guard, 20000);
}

static void setup_ctx(struct ctx *c, unsigned size, const char *listen_url)
{
    setup_ctx_at(c, url(), size, listen_url);
}

static void teardown_ctx(struct ctx *c)
{
    pg_pool_close(&c->pool);
    c->l.stop_now = false;
    c->l.stopping = true;
    loop_timer_cancel(&c->l, &c->guard);
    loop_run(&c->l); /* let the socket watches wind down */
    pg_pool_free(&c->pool);
    loop_free(&c->l);
}

struct addq {
    struct pg_query q;
    struct ctx *c;
    char arg[16];
    const char *vals[1];
    int got;
    int fault; /* pg_fault_of the failed result, -1 before */
    char err[256];
};

static void on_add(struct pg_query *q, PGresult *res, const char *err)
{
    struct addq *a = container_of(q, struct addq, q);
    if (err) {
        snprintf(a->err, sizeof(a->err), "%s", err);
        a->fault = (int)pg_fault_of(res);
    } else
        a->got = atoi(PQgetvalue(res, 0, 0));
    if (++a->c->done == a->c->want)
        a->c->l.stop_now = true;
}

static void prep(struct addq *a, struct ctx *c, const char *sql, int n)
{
    memset(a, 0, sizeof(*a));
    a->c = c;
    snprintf(a->arg, sizeof(a->arg), "%d", n);
    a->vals[0] = a->arg;
    a->q.fn = on_add;
    a->q.sql = sql;
    a->q.nparams = 1;
    a->q.values = a->vals;
    a->got = -1;
    a->fault = -1;
}

static void many_queries_in_flight(void **state)
{
    struct ctx c;
    setup_ctx(&c, 2, NULL);
    enum { N = 300 };
    static struct addq qs[N];
    c.want = N;
    for (int i = 0; i < N; i++) {
        prep(&qs[i], &c, "SELECT $1::int + 1", i);
        pg_query_submit(&c.pool, &qs[i].q);
    }
    assert_int_equal(loop_run(&c.l), 0);
    assert_int_equal(c.done, N);
    for (int i = 0; i < N; i++) {
        assert_string_equal(qs[i].err, "");
        assert_int_equal(qs[i].got, i + 1);
    }
    teardown_ctx(&c);
}

static void failing_query_is_isolated(void **state)
{
    struct ctx c;
    setup_ctx(&c, 1, NULL);
    struct addq a, b, d;
    prep(&a, &c, "SELECT $1::int * 2", 21);
    prep(&b, &c, "SELECT 1 / ($1::int - 5)", 5);
    prep(&d, &c, "SELECT $1::int * 3", 3);
    c.want = 3;
    pg_query_submit(&c.pool, &a.q);
    pg_query_submit(&c.pool, &b.q);
    pg_query_submit(&c.pool, &d.q);
    loop_run(&c.l);
    assert_int_equal(a.got, 42);
    assert_non_null(strstr(b.err, "division by zero"));
    assert_int_equal(d.got, 9);
    teardown_ctx(&c);
}

static void failures_are_classified(void **state)
{
    /* A value the server refuses is the caller's (REJECTED); a statement
     * problem is INTERNAL; no answer at all is UNAVAILABLE. */
    struct ctx c;
    setup_ctx(&c, 1, NULL);
    struct addq a, b, d, e;
    prep(&a, &c, "SELECT ('x' || $1)::int", 1);                   /* 22P02 */
    prep(&b, &c, "SELECT 1 / ($1::int - 5)", 5);                  /* 22012 */
    prep(&d, &c, "SELECT $1::int FROM trireme_no_such_table", 1); /* 42P01 */
    prep(&e, &c, "SELECT pg_sleep($1::int)", 5);
    e.q.timeout_ms = 50;
    c.want = 4;
    pg_query_submit(&c.pool, &a.q);
    pg_query_submit(&c.pool, &b.q);
    pg_query_submit(&c.pool, &d.q);
    pg_query_submit(&c.pool, &e.q);
    loop_run(&c.l);
    assert_int_equal(a.fault, PG_FAULT_REJECTED);
    assert_int_equal(b.fault, PG_FAULT_REJECTED);
    assert_int_equal(d.fault, PG_FAULT_INTERNAL);
    assert_int_equal(e.fault, PG_FAULT_UNAVAILABLE);
    teardown_ctx(&c);
}

static void fail_fast_while_known_down(void **state)
{
    /* Nothing listens on port 1: the first connection attempt fails and
     * the pool knows it is down. A fail_fast query waiting since before
     * then fails at once; one submitted later is refused in a later loop
     * turn (never inside the submit); a plain one waits for its timeout. */
    struct ctx c;
    setup_ctx_at(&c, "postgresql://trireme@127.0.0.1:1/trireme?connect_timeout=2", 1, NULL);
    struct addq waiting, plain, later;
    prep(&waiting, &c, "SELECT $1::int", 1);
    waiting.q.fail_fast = true;
    waiting.q.timeout_ms = 10000;
    prep(&plain, &c, "SELECT $1::int", 2);
    plain.q.timeout_ms = 300;
    pg_query_submit(&c.pool, &waiting.q);
    pg_query_submit(&c.pool, &plain.q);
    uint64_t t0 = c.l.now_ns;
    c.want = 1;
    loop_run(&c.l);
    assert_true(pg_pool_down(&c.pool));
    assert_string_equal(waiting.err, PG_UNAVAILABLE);
    assert_int_equal(waiting.fault, PG_FAULT_UNAVAILABLE);
    assert_string_equal(plain.err, "");
    assert_true(c.l.now_ns - t0 < 250 * 1000000ull);

    prep(&later, &c, "SELECT $1::int", 3);
    later.q.fail_fast = true;
    later.q.timeout_ms = 10000;
    c.l.stop_now = false;
    pg_query_submit(&c.pool, &later.q);
    assert_int_equal(c.done, 1); /* not answered inside the submit */
    c.want = 3;
    loop_run(&c.l);
    assert_string_equal(later.err, PG_UNAVAILABLE);
    assert_string_equal(plain.err, "query timed out");
    teardown_ctx(&c);
}

static void timeout_then_pool_still_works(void **state)
{
    struct ctx c;
    setup_ctx(&c, 1, NULL);
    struct addq slow, after;
    prep(&slow, &c, "", 1);
    slow.q.sql = "SELECT (pg_sleep($1::int / 1000.0) IS NULL)::int";
    snprintf(slow.arg, sizeof(slow.arg), "1500");
    slow.q.timeout_ms = 100;
    c.want = 1;
    pg_query_submit(&c.pool, &slow.q);
    loop_run(&c.l);
    assert_string_equal(slow.err, "query timed out");
    /* The late result must be dropped, and the connection keep working. */
    prep(&after, &c, "SELECT $1::int", 7);
    c.l.stop_now = false;
    c.want = 2;
    pg_query_submit(&c.pool, &after.q);
    loop_run(&c.l);
    assert_string_equal(after.err, "");
    assert_int_equal(after.got, 7);
    teardown_ctx(&c);
}

struct lctx {
    struct pg_listener lis;
    struct ctx *c;
    struct addq notify;
    int connected;
    char payload[64];
};

static void on_notify(struct pg_listener *l, const char *channel, const char *payload)
{
    struct lctx *x = container_of(l, struct lctx, lis);
    if (!payload) {
        /* Subscribed (or re-subscribed): now send ourselves a notification. */
        if (x->connected++ == 0) {
            prep(&x->notify, x->c, "SELECT pg_notify('trireme_test', $1) IS NULL", 0);
            snprintf(x->notify.arg, sizeof(x->notify.arg), "hello");
            pg_query_submit(&x->c->pool, &x->notify.q);
        }
        return;
    }
    snprintf(x->payload, sizeof(x->payload), "%s", payload);
    x->c->l.stop_now = true;
}

static void listen_notify(void **state)
{
    struct ctx c;
    setup_ctx(&c, 1, url());
    struct lctx x;
    memset(&x, 0, sizeof(x));
    x.c = &c;
    x.lis.channel = "trireme_test";
    x.lis.fn = on_notify;
    c.want = 1000; /* stop only on the notification */
    pg_listen(&c.pool, &x.lis);
    loop_run(&c.l);
    assert_int_equal(x.connected, 1);
    assert_string_equal(x.payload, "hello");
    teardown_ctx(&c);
}

struct killctx {
    struct timer t;
    int pid;
};

static void kill_backend(struct loop *l, struct timer *t)
{
    struct killctx *k = container_of(t, struct killctx, t);
    PGconn *admin = PQconnectdb(url()); /* blocking is fine in a test */
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", k->pid);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
}

static void reconnects_and_resends_safe_queries(void **state)
{
    struct ctx c;
    setup_ctx(&c, 1, NULL);
    struct addq pid;
    prep(&pid, &c, "SELECT pg_backend_pid() + 0 * $1::int", 0);
    c.want = 1;
    pg_query_submit(&c.pool, &pid.q);
    loop_run(&c.l);
    assert_true(pid.got > 0);

    /* In flight when the backend dies: the unsafe one fails, the safe one
     * is sent again on the new connection and succeeds. */
    struct addq unsafe, safe;
    prep(&unsafe, &c, "SELECT (pg_sleep($1::int / 1000.0) IS NULL)::int", 3000);
    prep(&safe, &c, "SELECT $1::int", 5);
    safe.q.retry_safe = true;
    c.done = 0;
    c.want = 2;
    c.l.stop_now = false;
    pg_query_submit(&c.pool, &unsafe.q);
    pg_query_submit(&c.pool, &safe.q);
    struct killctx k = {.t.fn = kill_backend, .pid = pid.got};
    loop_timer_in(&c.l, &k.t, 200);
    loop_run(&c.l);
    assert_int_equal(c.done, 2);
    /* Either the server's FATAL "terminating connection" result or our own
     * "connection lost", whichever reaches libpq first. */
    assert_true(strstr(unsafe.err, "connection lost") || strstr(unsafe.err, "terminat"));
    assert_string_equal(safe.err, "");
    assert_int_equal(safe.got, 5);
    teardown_ctx(&c);
}

static void abandoned_waiting_query_leaves_the_queue(void **state)
{
    /* Submitted before any connection is up: all three wait in the pool's
     * queue; the middle one is abandoned there and never runs. */
    struct ctx c;
    setup_ctx(&c, 1, NULL);
    struct addq a, b, d;
    prep(&a, &c, "SELECT $1::int", 1);
    prep(&b, &c, "SELECT $1::int", 2);
    prep(&d, &c, "SELECT $1::int", 3);
    pg_query_submit(&c.pool, &a.q);
    pg_query_submit(&c.pool, &b.q);
    pg_query_submit(&c.pool, &d.q);
    assert_int_equal(c.pool.waiting, 3);
    pg_query_abandon(&c.pool, &b.q);
    assert_int_equal(c.pool.waiting, 2);
    c.want = 2;
    loop_run(&c.l);
    assert_int_equal(a.got, 1);
    assert_int_equal(d.got, 3);
    assert_int_equal(b.got, -1);
    assert_string_equal(b.err, "");
    assert_int_equal(c.pool.waiting, 0);
    teardown_ctx(&c);
}

/* Failed connection attempts are reported through on_connect_error, each
 * one (the pool keeps trying), even one that fails inside pg_pool_init. */
struct refused {
    struct loop l;
    struct pg_pool pool;
    struct timer guard;
    int reports;
    char why[512];
};

static void on_refused(struct pg_pool *p, const char *why)
{
    struct refused *r = container_of(p, struct refused, pool);
    snprintf(r->why, sizeof(r->why), "%s", why);
    if (++r->reports >= 2)
        r->l.stop_now = true;
}

static void refused_guard(struct loop *l, struct timer *t)
{
    l->stop_now = true;
}

static void connect_errors_are_reported(void **state)
{
    const char *const infos[] = {"postgresql://trireme@127.0.0.1:1/x", "nosuchoption=1"};
    const char *const words[] = {"Connection refused", "nosuchoption"};
    for (int i = 0; i < 2; i++) {
        static struct refused r;
        memset(&r, 0, sizeof(r));
        assert_int_equal(loop_init(&r.l, 0, &lcfg), 0);
        struct pg_pool_config pc = {
            .conninfo = infos[i], .size = 1, .on_connect_error = on_refused};
        assert_int_equal(pg_pool_init(&r.pool, &r.l, &pc), 0);
        r.guard.fn = refused_guard;
        loop_timer_in(&r.l, &r.guard, 5000);
        loop_run(&r.l);
        assert_int_equal(r.reports, 2);
        assert_non_null(strstr(r.why, words[i]));
        assert_null(strchr(r.why, '\n'));
        pg_pool_close(&r.pool);
        loop_timer_cancel(&r.l, &r.guard);
        r.l.stop_now = false;
        r.l.stopping = true;
        loop_run(&r.l);
        pg_pool_free(&r.pool);
        loop_free(&r.l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_queries_in_flight),
        cmocka_unit_test(failing_query_is_isolated),
        cmocka_unit_test(timeout_then_pool_still_works),
        cmocka_unit_test(listen_notify),
        cmocka_unit_test(reconnects_and_resends_safe_queries),
        cmocka_unit_test(abandoned_waiting_query_leaves_the_queue),
        cmocka_unit_test(connect_errors_are_reported),
        cmocka_unit_test(failures_are_classified),
        cmocka_unit_test(fail_fast_while_known_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
