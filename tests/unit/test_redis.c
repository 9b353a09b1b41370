/*
 * test_redis.c - kernel/redis.c: URL parsing, and against a real Redis:
 * pipelining, error replies, AUTH + SELECT, pub/sub, reconnects, deadlines,
 * waiting commands leaving the queue, re-sending only the safe ones,
 * encodings that reuse pooled chunks once warm, and failed connection
 * attempts reported as they happen.
 *
 * Needs TRIREME_TEST_REDIS_URL (no password) and TRIREME_TEST_REDIS_AUTH_URL
 * (with a password); tools/test.sh starts both with tools/redis-local.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/redis.h"

static const struct loop_config lcfg = {.entries = 256,
                                        .recv_bufs = 64,
                                        .recv_buf_size = 4096,
                                        .pool_chunk = 16384,
                                        .pool_max_free = 8};

static const char *env_url(const char *name)
{
    const char *u = getenv(name);
    if (!u || !*u)
        fail_msg("%s is not set: start one with tools/redis-local.sh start", name);
    return u;
}

static void url_parsing(void **state)
{
    struct redis_url u;
    const char *err = NULL;
    assert_int_equal(redis_url_parse("redis://localhost", &u, &err), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_int_equal(redis_url_parse("redis://user:p%ss@10.0.0.1:6380/3", &u, &err), 0);
    assert_string_equal(u.user, "user");
    assert_string_equal(u.pass, "p%ss");
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_int_equal(redis_url_parse("redis://:secret@[::1]:7000", &u, &err), 0);
    assert_string_equal(u.pass, "secret");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(redis_url_parse("redis://h:0", &u, &err), -EINVAL);
    assert_int_equal(redis_url_parse("redis://h/x", &u, &err), -EINVAL);
    assert_int_equal(redis_url_parse("http://h", &u, &err), -EINVAL);
    assert_false(u.tls);
    assert_int_equal(redis_url_parse("rediss://:pw@cache.internal:6380/2", &u, &err), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "cache.internal");
    assert_string_equal(u.pass, "pw");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_int_equal(redis_url_parse("redisss://h", &u, &err), -EINVAL);
    assert_non_null(strstr(err, "rediss://"));
}

struct ctx {
    struct loop l;
    struct redis_client cl;
    int done, want;
    struct timer guard;
};

static void on_guard(struct loop *l, struct timer *t)
{
    l->stop_now = true;
}

static void setup(struct ctx *c, const char *url, enum redis_mode mode)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(loop_init(&c->l, 0, &lcfg), 0);
    struct redis_url u;
    const char *err;
    assert_int_equal(redis_url_parse(url, &u, &err), 0);
    assert_int_equal(redis_client_init(&c->cl, &c->l, &u, mode, "test"), 0);
    c->guard.fn = on_guard;
    loop_timer_in(&c->l, &c->guard, 15000);
}

static void teardown(struct ctx *c)
{
    redis_client_close(&c->cl);
    loop_timer_cancel(&c->l, &c->guard);
    c->l.stop_now = false;
    c->l.stopping = true;
    loop_run(&c->l);
    loop_free(&c->l);
}

struct rcmd {
    struct redis_cmd c;
    struct ctx *x;
    long long integer;
    char str[128];
    char err[160];
    int type;
};

static void on_cmd(struct redis_cmd *c, redisReply *r, const char *err)
{
    struct rcmd *rc = container_of(c, struct rcmd, c);
    if (err)
        snprintf(rc->err, sizeof(rc->err), "%s", err);
    if (r) {
        rc->type = r->type;
        rc->integer = r->integer;
        if (r->str)
            snprintf(rc->str, sizeof(rc->str), "%s", r->str);
    }
    if (++rc->x->done >= rc->x->want)
        rc->x->l.stop_now = true;
}

static void cmd(struct ctx *x, struct rcmd *rc, int argc, const char **argv)
{
    memset(rc, 0, sizeof(*rc));
    rc->x = x;
    rc->c.fn = on_cmd;
    redis_submitv(&x->cl, &rc->c, argc, argv);
}

static void run_until(struct ctx *x, int want)
{
    x->done = 0;
    x->want = want;
    x->l.stop_now = false;
    loop_run(&x->l);
}

static void pipelined_commands_in_order(void **state)
{
    struct ctx x;
    setup(&x, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    static struct rcmd del, incr[1000], bad;
    cmd(&x, &del, 2, (const char *[]){"DEL", "trireme:test:n"});
    for (int i = 0; i < 1000; i++)
        cmd(&x, &incr[i], 2, (const char *[]){"INCR", "trireme:test:n"});
    cmd(&x, &bad, 2, (const char *[]){"NOSUCHCOMMAND", "x"});
    run_until(&x, 1002);
    assert_int_equal(x.done, 1002);
    for (int i = 0; i < 1000; i++) {
        assert_string_equal(incr[i].err, "");
        assert_int_equal(incr[i].integer, i + 1);
    }
    assert_non_null(strstr(bad.err, "unknown command"));
    teardown(&x);
}

static void auth_and_select(void **state)
{
    const char *base = env_url("TRIREME_TEST_REDIS_AUTH_URL");
    char url[256];
    snprintf(url, sizeof(url), "%.*s/5", (int)(strrchr(base, '/') - base), base);
    struct ctx x;
    setup(&x, url, REDIS_COMMANDS);
    struct rcmd set, db;
    cmd(&x, &set, 3, (const char *[]){"SET", "trireme:test:k", "v"});
    cmd(&x, &db, 2, (const char *[]){"CLIENT", "INFO"});
    run_until(&x, 2);
    assert_string_equal(set.err, "");
    assert_string_equal(set.str, "OK");
    assert_non_null(strstr(db.str, "db=5"));
    teardown(&x);

    /* A wrong password: commands fail, nothing crashes, no reply mix-up. */
    char bad[256];
    snprintf(bad, sizeof(bad), "redis://:wrong@%s", strchr(base, '@') + 1);
    setup(&x, bad, REDIS_COMMANDS);
    struct rcmd ping;
    memset(&ping, 0, sizeof(ping));
    ping.x = &x;
    ping.c.fn = on_cmd;
    ping.c.timeout_ms = 700;
    redis_submitv(&x.cl, &ping.c, 1, (const char *[]){"PING"});
    run_until(&x, 1);
    assert_true(strlen(ping.err) > 0);
    assert_string_not_equal(ping.str, "PONG");
    teardown(&x);
}

struct sub {
    struct ctx *x;
    char payload[64];
    int messages;
};

static void on_push(struct redis_client *cl, redisReply *r)
{
    struct sub *s = cl->data;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        !strcmp(r->element[0]->str, "message")) {
        snprintf(s->payload, sizeof(s->payload), "%s", r->element[2]->str);
        s->messages++;
        s->x->l.stop_now = true;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               !strcmp(r->element[0]->str, "subscribe")) {
        s->x->l.stop_now = true; /* subscribed: now publish */
    }
}

static void pubsub(void **state)
{
    struct ctx sx, px;
    struct sub s = {.x = &sx};
    memset(&sx, 0, sizeof(sx));
    sx.cl.on_push = on_push;
    sx.cl.data = &s;
    /* setup() clears the struct: set the hooks through a local init. */
    assert_int_equal(loop_init(&sx.l, 0, &lcfg), 0);
    struct redis_url u;
    const char *err;
    assert_int_equal(redis_url_parse(env_url("TRIREME_TEST_REDIS_URL"), &u, &err), 0);
    assert_int_equal(redis_client_init(&sx.cl, &sx.l, &u, REDIS_PUBSUB, "sub"), 0);
    sx.guard.fn = on_guard;
    loop_timer_in(&sx.l, &sx.guard, 15000);
    struct rcmd sc;
    sx.want = 1000; /* stop on the subscribe confirmation (on_push), not on the write */
    cmd(&sx, &sc, 2, (const char *[]){"SUBSCRIBE", "trireme:test:chan"});
    sx.l.stop_now = false;
    loop_run(&sx.l); /* until the subscribe confirmation */
    setup(&px, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    struct rcmd pub;
    cmd(&px, &pub, 3, (const char *[]){"PUBLISH", "trireme:test:chan", "hello"});
    run_until(&px, 1);
    assert_int_equal(pub.integer, 1);
    sx.l.stop_now = false;
    loop_run(&sx.l);
    assert_int_equal(s.messages, 1);
    assert_string_equal(s.payload, "hello");
    teardown(&px);
    teardown(&sx);
}

static void reconnect_resends_safe_commands(void **state)
{
    struct ctx x;
    setup(&x, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    struct rcmd name, kill, after;
    cmd(&x, &name, 3, (const char *[]){"CLIENT", "SETNAME", "trireme-test-victim"});
    run_until(&x, 1);
    /* Kill our own connection server-side; the next safe command must be
     * re-sent on a fresh connection. */
    cmd(&x, &kill, 4, (const char *[]){"CLIENT", "KILL", "SKIPME", "no"});
    run_until(&x, 1);
    assert_string_equal(kill.err, "");
    memset(&after, 0, sizeof(after));
    after.x = &x;
    after.c.fn = on_cmd;
    after.c.retry_safe = true;
    redis_submitv(&x.cl, &after.c, 1, (const char *[]){"PING"});
    run_until(&x, 1);
    assert_string_equal(after.err, "");
    assert_string_equal(after.str, "PONG");
    teardown(&x);
}

static void deadline_drops_a_stuck_connection(void **state)
{
    struct ctx x;
    setup(&x, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    struct rcmd slow, next;
    memset(&slow, 0, sizeof(slow));
    slow.x = &x;
    slow.c.fn = on_cmd;
    slow.c.timeout_ms = 150;
    /* The server answers after 1 s; our deadline is 150 ms. */
    redis_submitv(&x.cl, &slow.c, 3, (const char *[]){"BLPOP", "trireme:test:never", "1"});
    run_until(&x, 1);
    assert_non_null(strstr(slow.err, "connection lost"));
    cmd(&x, &next, 1, (const char *[]){"PING"});
    run_until(&x, 1);
    assert_string_equal(next.str, "PONG");
    teardown(&x);
}

static void cmd_opts(struct ctx *x, struct rcmd *rc, int argc, const char **argv, bool safe,
                     uint64_t timeout_ms)
{
    memset(rc, 0, sizeof(*rc));
    rc->x = x;
    rc->c.fn = on_cmd;
    rc->c.retry_safe = safe;
    rc->c.timeout_ms = timeout_ms;
    redis_submitv(&x->cl, &rc->c, argc, argv);
}

static void steady_state_reuses_pooled_chunks(void **state)
{
    struct ctx x;
    setup(&x, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    static struct rcmd c[200];
    uint64_t warm = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++)
            cmd_opts(&x, &c[i], 3, (const char *[]){"SET", "trireme:test:s", "value"}, i % 2, 0);
        run_until(&x, 200);
        for (int i = 0; i < 200; i++)
            assert_string_equal(c[i].str, "OK");
        if (round == 0)
            warm = x.l.pool->allocated;
    }
    /* Encodings went into pooled chunks that came back: none taken anew. */
    assert_int_equal(x.l.pool->allocated, warm);
    assert_int_equal(buf_size(&x.cl.replay), 0);
    teardown(&x);
}

static void waiting_command_times_out_alone(void **state)
{
    /* Nothing listens on the first address: commands wait in the queue. */
    struct ctx x;
    setup(&x, "redis://127.0.0.1:1", REDIS_COMMANDS);
    struct rcmd a, b, c;
    cmd_opts(&x, &a, 2, (const char *[]){"ECHO", "first-one"}, false, 5000);
    cmd_opts(&x, &b, 2, (const char *[]){"ECHO", "the middle, which times out"}, false, 50);
    cmd_opts(&x, &c, 2, (const char *[]){"ECHO", "3rd"}, false, 5000);
    run_until(&x, 1);
    assert_non_null(strstr(b.err, "timeout"));
    assert_int_equal(a.err[0] + c.err[0], 0);
    /* Point the client at the real server: its retry connects there, and
     * what waited is sent intact, without the one that left. */
    struct redis_url u;
    const char *err;
    assert_int_equal(redis_url_parse(env_url("TRIREME_TEST_REDIS_URL"), &u, &err), 0);
    assert_int_equal(tcp_resolve(u.host, u.port, &x.cl.addr, &x.cl.addrlen), 0);
    run_until(&x, 2);
    assert_string_equal(a.err, "");
    assert_string_equal(a.str, "first-one");
    assert_string_equal(c.err, "");
    assert_string_equal(c.str, "3rd");
    teardown(&x);
}

static void lost_connection_resends_only_safe_ones(void **state)
{
    struct ctx x;
    setup(&x, env_url("TRIREME_TEST_REDIS_URL"), REDIS_COMMANDS);
    struct rcmd ping, kill, s1, u2, s3;
    cmd(&x, &ping, 1, (const char *[]){"PING"});
    run_until(&x, 1);
    /* Pipelined behind a kill of our own connection: the server closes it
     * after answering the kill, and what followed is lost with it. */
    cmd(&x, &kill, 4, (const char *[]){"CLIENT", "KILL", "SKIPME", "no"});
    cmd_opts(&x, &s1, 2, (const char *[]){"ECHO", "safe-1"}, true, 0);
    cmd_opts(&x, &u2, 2, (const char *[]){"ECHO", "unsafe-2"}, false, 0);
    cmd_opts(&x, &s3, 2, (const char *[]){"ECHO", "safe-three"}, true, 0);
    run_until(&x, 4);
    assert_string_equal(s1.err, "");
    assert_string_equal(s1.str, "safe-1");
    assert_string_equal(s3.err, "");
    assert_string_equal(s3.str, "safe-three");
    if (u2.err[0])
        assert_non_null(strstr(u2.err, "connection lost"));
    else
        assert_string_equal(u2.str, "unsafe-2");
    assert_int_equal(buf_size(&x.cl.replay), 0);
    teardown(&x);
}

/* Failed connection attempts are reported through on_connect_error: the
 * TCP connect (step NULL) or the handshake's AUTH or SELECT, each attempt
 * (the client keeps trying). */
struct refused {
    struct ctx x;
    int reports;
    const char *step;
    char why[160];
};

static void on_refused(struct redis_client *cl, const char *step, const char *why)
{
    struct refused *r = container_of(cl, struct refused, x.cl);
    r->step = step;
    snprintf(r->why, sizeof(r->why), "%s", why);
    if (++r->reports >= 2)
        r->x.l.stop_now = true;
}

static void connect_errors_are_reported(void **state)
{
    const char *base = env_url("TRIREME_TEST_REDIS_AUTH_URL");
    char auth[256], sel[256];
    snprintf(auth, sizeof(auth), "redis://:wrong@%s", strchr(base, '@') + 1);
    snprintf(sel, sizeof(sel), "%.*s/99", (int)(strrchr(base, '/') - base), base);
    const char *const urls[] = {"redis://127.0.0.1:1/0", auth, sel};
    const char *const steps[] = {NULL, "AUTH", "SELECT"};
    const char *const words[] = {"refused", "WRONGPASS", "DB index"};
    for (int i = 0; i < 3; i++) {
        static struct refused r;
        memset(&r, 0, sizeof(r));
        assert_int_equal(loop_init(&r.x.l, 0, &lcfg), 0);
        struct redis_url u;
        const char *err;
        assert_int_equal(redis_url_parse(urls[i], &u, &err), 0);
        r.x.cl.on_connect_error = on_refused;
        assert_int_equal(redis_client_init(&r.x.cl, &r.x.l, &u, REDIS_COMMANDS, "test"), 0);
        r.x.guard.fn = on_guard;
        loop_timer_in(&r.x.l, &r.x.guard, 5000);
        loop_run(&r.x.l);
        assert_int_equal(r.reports, 2);
        if (steps[i])
            assert_string_equal(r.step, steps[i]);
        else
            assert_null(r.step);
        assert_non_null(strstr(r.why, words[i]));
        teardown(&r.x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_parsing),
        cmocka_unit_test(pipelined_commands_in_order),
        cmocka_unit_test(auth_and_select),
        cmocka_unit_test(pubsub),
        cmocka_unit_test(reconnect_resends_safe_commands),
        cmocka_unit_test(deadline_drops_a_stuck_connection),
        cmocka_unit_test(steady_state_reuses_pooled_chunks),
        cmocka_unit_test(waiting_command_times_out_alone),
        cmocka_unit_test(lost_connection_resends_only_safe_ones),
        cmocka_unit_test(connect_errors_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
