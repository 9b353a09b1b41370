/*
 * test_rqueue.c - the Redis queue backend's pure parts: SHA-1 (EVALSHA
 * names), script arguments from a normalized job, and a job hash rendered
 * as the API's JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/rqueue/rqueue.h"
#include "proto/sha1.h"

static void sha1_vectors(void **state)
{
    char h[41];
    sha1_hex("", 0, h);
    assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha1_hex("abc", 3, h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56: 2 blocks */
    sha1_hex(two, strlen(two), h);
    assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char a[1000];
    memset(a, 'a', sizeof(a));
    sha1_hex(a, sizeof(a), h);
    assert_string_equal(h, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    /* Every script has a distinct name. */
    struct rq_shas s;
    rq_shas_init(&s);
    for (int i = 0; i < RQ_NSCRIPTS; i++) {
        assert_int_equal(strlen(s.sha[i]), 40);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(s.sha[i], s.sha[k]);
    }
}

static const char *arg(const struct rq_args *a, int i)
{
    return a->buf + a->off[i];
}

static void enqueue_args(void **state)
{
    struct rq_args a = {0};
    json_t *j = json_pack("{ss}", "kind", "noop");
    rq_enqueue_job_args(&a, j);
    json_decref(j);
    assert_int_equal(a.n, 8);
    const char *want[] = {"default", "noop", "{}", "0", "5", "", "", ""};
    for (int i = 0; i < 8; i++)
        assert_string_equal(arg(&a, i), want[i]);
    rq_args_free(&a);

    j = json_pack("{ss,ss,s{si},si,si,si,sI,ss}", "kind", "sleep", "queue", "q1", "payload", "ms",
                  7, "priority", -3, "max_attempts", 2, "timeout_ms", 30000, "delay_ms",
                  (json_int_t)1500, "unique_key", "k:1");
    rq_enqueue_job_args(&a, j);
    json_decref(j);
    const char *want2[] = {"q1", "sleep", "{\"ms\":7}", "-3", "2", "30000", "d1500", "k:1"};
    for (int i = 0; i < 8; i++)
        assert_string_equal(arg(&a, i), want2[i]);
    rq_args_free(&a);

    j = json_pack("{ss,sI}", "kind", "noop", "run_at_ms", (json_int_t)1795330800100LL);
    rq_enqueue_job_args(&a, j);
    json_decref(j);
    assert_string_equal(arg(&a, 6), "a1795330800100");
    /* Lengths are kept: binary-safe. */
    rq_args_add(&a, "x\0y", 3);
    assert_int_equal(a.alen[8], 3);
    assert_memory_equal(arg(&a, 8), "x\0y", 3);
    rq_args_free(&a);
}

static void args_grow_keeping_order(void **state)
{
    /* Past the first block of 16 (offsets and lengths share a block that
     * is moved apart as it grows) and past the first 256 bytes. */
    struct rq_args a = {0}, b = {0};
    char s[64];
    for (int i = 0; i < 40; i++) {
        memset(s, 'a' + i % 26, sizeof(s));
        rq_args_add(&a, s, (size_t)i);
    }
    rq_args_adds(&b, "first");
    rq_args_append(&b, &a);
    assert_int_equal(a.n, 40);
    assert_int_equal(b.n, 41);
    const char *v[41];
    size_t l[41];
    rq_args_vectors(&b, v, l);
    assert_string_equal(v[0], "first");
    for (int i = 0; i < 40; i++) {
        assert_int_equal(l[i + 1], (size_t)i);
        assert_int_equal(strlen(v[i + 1]), (size_t)i); /* NUL-terminated */
        for (int k = 0; k < i; k++)
            assert_int_equal(v[i + 1][k], 'a' + i % 26);
    }
    rq_args_free(&a);
    rq_args_free(&b);
    assert_null(a.buf);
    assert_int_equal(a.n, 0);
}

static json_t *render(const char *const *kv, size_t n)
{
    const char *k[32], *v[32];
    size_t kl[32], vl[32];
    for (size_t i = 0; i < n; i++) {
        k[i] = kv[2 * i], kl[i] = strlen(kv[2 * i]);
        v[i] = kv[2 * i + 1], vl[i] = strlen(kv[2 * i + 1]);
    }
    return rq_job_json(n, k, kl, v, vl);
}

static void job_json(void **state)
{
    const char *kv[] = {"id",
                        "42",
                        "queue",
                        "default",
                        "kind",
                        "sleep",
                        "payload",
                        "{\"ms\":5}",
                        "status",
                        "succeeded",
                        "attempts",
                        "2",
                        "max_attempts",
                        "5",
                        "timeout_ms",
                        "",
                        "run_at",
                        "784111777250",
                        "result",
                        "{\"slept_ms\":5}",
                        "worker_id",
                        "",
                        "entry",
                        "1-1",
                        "progress_percent",
                        "100",
                        "unique_key",
                        "u",
                        "created_at",
                        "0",
                        "junk",
                        "x",
                        "last_error",
                        "boom"};
    json_t *j = render(kv, sizeof(kv) / sizeof(kv[0]) / 2);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(
        text, "{\"id\":42,\"queue\":\"default\",\"kind\":\"sleep\",\"payload\":{\"ms\":5},"
              "\"status\":\"succeeded\",\"priority\":null,\"attempts\":2,\"max_attempts\":5,"
              "\"timeout_ms\":null,\"run_at\":\"1994-11-06T08:49:37.250Z\","
              "\"progress_percent\":100,\"current_step\":null,\"result\":{\"slept_ms\":5},"
              "\"last_error\":\"boom\",\"unique_key\":\"u\",\"worker_id\":null,"
              "\"lease_until\":null,\"created_at\":\"1970-01-01T00:00:00.000Z\","
              "\"started_at\":null,\"finished_at\":null,\"updated_at\":null}");
    free(text);
    json_decref(j);
    /* A value that is not what its field holds never breaks the answer. */
    const char *bad[] = {"id", "4x", "payload", "{not json", "run_at", "soon"};
    j = render(bad, 3);
    assert_true(json_is_null(json_object_get(j, "id")));
    assert_string_equal(json_string_value(json_object_get(j, "payload")), "{not json");
    assert_true(json_is_null(json_object_get(j, "run_at")));
    json_decref(j);
}

/* A job that succeeded in the turn that read it is written once (status,
 * finished_at, attempts, worker_id, no result for null): it shows as the
 * full record the two writes used to leave. */
static void job_json_derived(void **state)
{
    (void)state;
    const char *kv[] = {
        "status",        "succeeded",  "finished_at",   "1796000000500", "created_at",
        "1796000000000", "updated_at", "1796000000000", "attempts",      "1",
        "worker_id",     "w:1"};
    json_t *j = render(kv, 6);
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-11-30T00:53:20.500Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2026-11-30T00:53:20.500Z");
    assert_string_equal(json_string_value(json_object_get(j, "finished_at")),
                        "2026-11-30T00:53:20.500Z");
    assert_int_equal(json_integer_value(json_object_get(j, "progress_percent")), 100);
    assert_true(json_is_null(json_object_get(j, "result")));
    json_decref(j);
    /* Written fields win; only a succeeded job derives anything. */
    const char *marked[] = {"status",     "succeeded",     "finished_at",      "1796000000500",
                            "started_at", "1796000000100", "updated_at",       "1796000000900",
                            "created_at", "1796000000000", "progress_percent", "100"};
    j = render(marked, 6);
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-11-30T00:53:20.100Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2026-11-30T00:53:20.900Z");
    json_decref(j);
    const char *cancelled[] = {"status",        "cancelled",  "finished_at",
                               "1796000000500", "updated_at", "1796000000000"};
    j = render(cancelled, 3);
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "progress_percent")));
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2026-11-30T00:53:20.000Z");
    json_decref(j);
}

static void job_json_reply(void **state)
{
    redisReply *e[4], r = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = e};
    redisReply s[4] = {{.type = REDIS_REPLY_STRING, .str = "id", .len = 2},
                       {.type = REDIS_REPLY_STRING, .str = "7", .len = 1},
                       {.type = REDIS_REPLY_STRING, .str = "status", .len = 6},
                       {.type = REDIS_REPLY_STRING, .str = "pending", .len = 7}};
    for (int i = 0; i < 4; i++)
        e[i] = &s[i];
    json_t *j = rq_job_json_reply(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    json_decref(j);
    r.elements = 3; /* odd: not a hash */
    assert_null(rq_job_json_reply(&r));
    r.elements = 0; /* empty: no such job */
    assert_null(rq_job_json_reply(&r));
    s[1].type = REDIS_REPLY_INTEGER;
    r.elements = 4;
    assert_null(rq_job_json_reply(&r));
    assert_null(rq_job_json_reply(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(sha1_vectors),
                                       cmocka_unit_test(enqueue_args),
                                       cmocka_unit_test(args_grow_keeping_order),
                                       cmocka_unit_test(job_json),
                                       cmocka_unit_test(job_json_derived),
                                       cmocka_unit_test(job_json_reply)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
