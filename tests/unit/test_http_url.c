/*
 * test_http_url.c - unit tests of proto/http_url.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http_url.h"

static int parse(const char *s, struct http_url *u, const char **err)
{
    *err = NULL;
    return http_url_parse(s, strlen(s), u, err);
}

static void good(void **state)
{
    struct http_url u;
    const char *err;
    assert_int_equal(parse("https://app.internal/tasks/send_email?x=1#frag", &u, &err), 0);
    assert_true(u.tls);
    assert_int_equal(u.host_len, 12);
    assert_memory_equal(u.host, "app.internal", 12);
    assert_int_equal(u.port, 443);
    assert_false(u.port_explicit);
    assert_int_equal(u.target_len, strlen("/tasks/send_email?x=1"));
    assert_memory_equal(u.target, "/tasks/send_email?x=1", u.target_len);

    assert_int_equal(parse("HTTP://127.0.0.1:8080", &u, &err), 0);
    assert_false(u.tls);
    assert_int_equal(u.port, 8080);
    assert_true(u.port_explicit);
    assert_int_equal(u.target_len, 1);
    assert_memory_equal(u.target, "/", 1);

    assert_int_equal(parse("http://[::1]:9000/a", &u, &err), 0);
    assert_true(u.ipv6);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.host, "::1", 3);
    assert_int_equal(u.port, 9000);

    assert_int_equal(parse("http://h", &u, &err), 0);
    assert_int_equal(u.port, 80);
}

static void bad(void **state)
{
    static const char *cases[] = {
        "ftp://h/",       "https//h",           "https://",        "https:///x",
        "https://u:p@h/", "https://h:0/",       "https://h:65536", "https://h:x/",
        "https://h:/",    "https://[::1/",      "https://[zz]/",   "https://h h/",
        "https://h/\x01", "https://h\xc3\xa9/", "https://h!/",     "https://h?q=1",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_url u;
        const char *err;
        if (parse(cases[i], &u, &err) != -1)
            fail_msg("accepted %s", cases[i]);
        assert_non_null(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good),
        cmocka_unit_test(bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
