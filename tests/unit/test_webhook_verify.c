/*
 * test_webhook_verify.c - inbound webhook signatures (modules/webhooks/):
 * the providers' documented vectors (Standard Webhooks' reference example,
 * GitHub's "Hello, World!"), Stripe, Paystack and generic vectors computed
 * with Python's hmac module, and the refusals: tampered body, a wrong or
 * missing signature, a stale or future timestamp, rotated signatures, and
 * declarations that name an unknown kind or scheme.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "modules/webhooks/webhooks.h"

/* A request's headers as name/value pairs (names lower case). */
struct hdrs {
    const char *kv[8][2];
};

static const char *lookup(void *ctx, const char *name, size_t *len)
{
    struct hdrs *h = ctx;
    for (int i = 0; i < 8 && h->kv[i][0]; i++)
        if (!strcmp(h->kv[i][0], name)) {
            *len = strlen(h->kv[i][1]);
            return h->kv[i][1];
        }
    return NULL;
}

static bool kind_known(const char *kind, void *ctx)
{
    (void)ctx;
    return !strcmp(kind, "noop");
}

/* One declared source, parsed as --kinds would. */
static struct webhook_sources load(const char *json)
{
    json_error_t je;
    json_t *doc = json_loads(json, 0, &je);
    assert_non_null(doc);
    struct webhook_sources s;
    char msg[300];
    int rc = webhook_sources_parse(doc, &s, kind_known, NULL, msg, sizeof(msg));
    if (rc)
        fail_msg("%s", msg);
    json_decref(doc);
    return s;
}

static enum webhook_verdict check(const struct webhook_source *s, struct hdrs *h, const char *body,
                                  int64_t now)
{
    const char *why = NULL;
    struct webhook_delivery d = {lookup, h, body, strlen(body), now};
    enum webhook_verdict v = webhook_verify(s, &d, &why);
    if (v != WEBHOOK_OK)
        assert_non_null(why);
    return v;
}

static void test_standard(void **state)
{
    (void)state;
    setenv("T_SW", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
    struct webhook_sources s =
        load("{\"sw\": {\"scheme\": \"standard\", \"secret_env\": \"T_SW\", \"kind\": \"noop\"}}");
    const struct webhook_source *w = webhook_source_find(&s, "sw", 2);
    assert_non_null(w);
    assert_string_equal(w->id_header, "webhook-id");
    const char *body = "{\"test\": 2432232314}";
    struct hdrs h = {{{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                      {"webhook-timestamp", "1614265330"},
                      {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}}};
    assert_int_equal(check(w, &h, body, 1614265330), WEBHOOK_OK);
    assert_int_equal(check(w, &h, body, 1614265330 + 299), WEBHOOK_OK);
    assert_int_equal(check(w, &h, body, 1614265330 + 301), WEBHOOK_STALE);
    assert_int_equal(check(w, &h, body, 1614265330 - 301), WEBHOOK_STALE);
    assert_int_equal(check(w, &h, "{\"test\": 2432232315}", 1614265330), WEBHOOK_MISMATCH);
    /* Several signatures (a key rotation): any v1 match will do. */
    h.kv[2][1] = "v1,bm90IHRoaXMgb25l v2,x v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_int_equal(check(w, &h, body, 1614265330), WEBHOOK_OK);
    h.kv[2][1] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE";
    assert_int_equal(check(w, &h, body, 1614265330), WEBHOOK_MISMATCH);
    h.kv[1][1] = "16142653x0";
    assert_int_equal(check(w, &h, body, 1614265330), WEBHOOK_MALFORMED);
    h.kv[2][0] = "other";
    assert_int_equal(check(w, &h, body, 1614265330), WEBHOOK_MISSING);
    webhook_sources_free(&s);
}

static void test_github_and_meta(void **state)
{
    (void)state;
    setenv("T_GH", "It's a Secret to Everybody", 1);
    struct webhook_sources s =
        load("{\"gh\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"noop\"},"
             " \"fb\": {\"scheme\": \"meta\", \"secret_env\": \"T_GH\", \"kind\": \"noop\"}}");
    for (unsigned i = 0; i < 2; i++) {
        const struct webhook_source *w = &s.v[i];
        struct hdrs h = {
            {{"x-hub-signature-256",
              "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}}};
        assert_int_equal(check(w, &h, "Hello, World!", 0), WEBHOOK_OK);
        assert_int_equal(check(w, &h, "Hello, World?", 0), WEBHOOK_MISMATCH);
        /* Upper-case hex is the same signature. */
        h.kv[0][1] = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
        assert_int_equal(check(w, &h, "Hello, World!", 0), WEBHOOK_OK);
        h.kv[0][1] = "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_int_equal(check(w, &h, "Hello, World!", 0), WEBHOOK_MALFORMED);
        h.kv[0][0] = "x-hub-signature";
        assert_int_equal(check(w, &h, "Hello, World!", 0), WEBHOOK_MISSING);
    }
    assert_string_equal(s.v[0].id_header, "x-github-delivery");
    webhook_sources_free(&s);
}

static void test_stripe(void **state)
{
    (void)state;
    setenv("T_ST", "whsec_test_secret", 1);
    struct webhook_sources s = load("{\"st\": {\"scheme\": \"stripe\", \"secret_env\": \"T_ST\", "
                                    "\"kind\": \"noop\", \"tolerance\": 60}}");
    const struct webhook_source *w = &s.v[0];
    assert_null(w->id_header);
    assert_string_equal(w->id_field, "id");
    const char *body = "{\"id\":\"evt_1\",\"object\":\"event\"}";
    struct hdrs h = {
        {{"stripe-signature",
          "t=1492774577,v1=0000000000000000000000000000000000000000000000000000000000000000,"
          "v1=654b43d3508ecadb3f8cefc4bc7d3d2bdc5ba9e03bf2c89b2d0657a8e24e4543,v0=1"}}};
    assert_int_equal(check(w, &h, body, 1492774577 + 60), WEBHOOK_OK);
    assert_int_equal(check(w, &h, body, 1492774577 + 61), WEBHOOK_STALE);
    assert_int_equal(check(w, &h, "{\"id\":\"evt_2\",\"object\":\"event\"}", 1492774577),
                     WEBHOOK_MISMATCH);
    h.kv[0][1] = "v1=654b43d3508ecadb3f8cefc4bc7d3d2bdc5ba9e03bf2c89b2d0657a8e24e4543";
    assert_int_equal(check(w, &h, body, 1492774577), WEBHOOK_MALFORMED);
    webhook_sources_free(&s);
}

static void test_paystack_and_generic(void **state)
{
    (void)state;
    setenv("T_PS", "sk_test_paystack", 1);
    setenv("T_GE", "generic", 1);
    struct webhook_sources s =
        load("{\"ps\": {\"scheme\": \"paystack\", \"secret_env\": \"T_PS\", \"kind\": \"noop\"},"
             " \"ge\": {\"scheme\": \"generic\", \"secret_env\": \"T_GE\", \"kind\": \"noop\","
             " \"header\": \"X-Sig\", \"algorithm\": \"sha1\", \"encoding\": \"base64\","
             " \"prefix\": \"sha1=\", \"id_header\": \"X-Event-Id\"}}");
    struct hdrs h = {{{"x-paystack-signature",
                       "f2a293cf42f9e20ec3c3db0a70b22230323834bed90ba89ee006fcd345e4e692"
                       "9294c299bd1140b63235cadcb753293310d3aa538d5d7c0d90f6d6ba77cb7357"}}};
    assert_int_equal(check(&s.v[0], &h, "{\"event\":\"charge.success\"}", 0), WEBHOOK_OK);
    assert_int_equal(check(&s.v[0], &h, "{\"event\":\"charge.failure\"}", 0), WEBHOOK_MISMATCH);
    struct hdrs g = {{{"x-sig", "sha1=3c6q8zXI6adihkvfNezs3Qtzrp0="}}};
    assert_int_equal(check(&s.v[1], &g, "abc", 0), WEBHOOK_OK);
    assert_int_equal(check(&s.v[1], &g, "abd", 0), WEBHOOK_MISMATCH);
    /* Base64 is case-sensitive: no folding. */
    g.kv[0][1] = "sha1=3C6Q8ZXI6ADIHKVFNEZS3QTZRP0=";
    assert_int_equal(check(&s.v[1], &g, "abc", 0), WEBHOOK_MISMATCH);
    assert_string_equal(s.v[1].id_header, "x-event-id");
    webhook_sources_free(&s);
}

static void test_bad_declarations(void **state)
{
    (void)state;
    setenv("T_GH", "x", 1);
    unsetenv("T_UNSET");
    static const char *const bad[][2] = {
        {"{\"a\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"nope\"}}", "kind"},
        {"{\"a\": {\"scheme\": \"github\", \"secret_env\": \"T_UNSET\", \"kind\": \"noop\"}}",
         "secret_env"},
        {"{\"a\": {\"scheme\": \"md5\", \"secret_env\": \"T_GH\", \"kind\": \"noop\"}}", "scheme"},
        {"{\"a\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"noop\", "
         "\"header\": \"X\"}}",
         "header"},
        {"{\"a\": {\"scheme\": \"generic\", \"secret_env\": \"T_GH\", \"kind\": \"noop\", "
         "\"header\": \"X\", \"algorithm\": \"sha256\", \"encoding\": \"rot13\"}}",
         "encoding"},
        {"{\"a\": {\"scheme\": \"standard\", \"secret_env\": \"T_GH\", \"kind\": \"noop\"}}",
         "secret_env"}, /* "x" is not base64 */
        {"{\"a\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"noop\", "
         "\"tolerance\": 0}}",
         "tolerance"},
        {"{\"a\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"noop\", "
         "\"colour\": 1}}",
         "colour"},
        {"{\"a/b\": {\"scheme\": \"github\", \"secret_env\": \"T_GH\", \"kind\": \"noop\"}}",
         "a/b"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *doc = json_loads(bad[i][0], 0, NULL);
        assert_non_null(doc);
        struct webhook_sources s;
        char msg[300] = "";
        assert_int_equal(webhook_sources_parse(doc, &s, kind_known, NULL, msg, sizeof(msg)), -1);
        if (!strstr(msg, bad[i][1]))
            fail_msg("case %zu: '%s' does not name %s", i, msg, bad[i][1]);
        assert_int_equal(s.n, 0);
        json_decref(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard),         cmocka_unit_test(test_github_and_meta),
        cmocka_unit_test(test_stripe),           cmocka_unit_test(test_paystack_and_generic),
        cmocka_unit_test(test_bad_declarations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
