/*
 * test_http_kinds.c - the pure parts of http kinds (kind_http_spec.c):
 * Retry-After in both forms, the generic kind's allowlist and its check of
 * resolved addresses (SSRF), and kinds-file entries refused by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "modules/kinds/kinds_file.h"

static void retry_after(void **state)
{
    (void)state;
    assert_int_equal(http_retry_after_ms("2", 1, 0), 2000);
    assert_int_equal(http_retry_after_ms("0", 1, 0), 0);
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    const char *d = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_int_equal(http_retry_after_ms(d, strlen(d), 784111770), 7000);
    assert_int_equal(http_retry_after_ms(d, strlen(d), 784111999), 0); /* past: now */
    assert_int_equal(http_retry_after_ms("soon", 4, 0), -1);
    assert_int_equal(http_retry_after_ms("2x", 2, 0), -1);
    assert_int_equal(http_retry_after_ms("", 0, 0), -1);
}

static int v4(struct sockaddr_in *sa, const char *ip)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    return inet_pton(AF_INET, ip, &sa->sin_addr);
}

static void ssrf(void **state)
{
    (void)state;
    char *allow[] = {"localhost", "10.1.2.3", "api.example.com"};
    struct http_spec s = {.allow = allow, .nallow = 3};
    assert_true(http_host_allowed(&s, "API.example.com", 15));
    assert_false(http_host_allowed(&s, "example.com", 11));
    struct sockaddr_in a;
    const char *refused[] = {"127.0.0.1",       "10.0.0.1",   "172.16.5.5", "192.168.1.1",
                             "169.254.169.254", "100.64.0.1", "0.0.0.0",    "224.0.0.1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(v4(&a, refused[i]), 1);
        assert_false(http_addr_allowed(&s, (struct sockaddr *)&a));
    }
    v4(&a, "10.1.2.3"); /* listed */
    assert_true(http_addr_allowed(&s, (struct sockaddr *)&a));
    v4(&a, "93.184.216.34"); /* public */
    assert_true(http_addr_allowed(&s, (struct sockaddr *)&a));
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &b.sin6_addr);
    assert_false(http_addr_allowed(&s, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
    assert_false(http_addr_allowed(&s, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "fd00::1", &b.sin6_addr);
    assert_false(http_addr_allowed(&s, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "2606:2800:220:1::1", &b.sin6_addr);
    assert_true(http_addr_allowed(&s, (struct sockaddr *)&b));
}

static void entries(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"type\":\"http\"}", "url"},
        {"{\"type\":\"http\",\"url\":\"ftp://x/\"}", "url"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"method\":\"GET\"}", "method"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"concurrency\":0}", "concurrency"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"timeout\":\"soon\"}", "timeout"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"headers\":{\"Trireme-X\":\"1\"}}", "headers"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"secret_env\":\"UNSET_HTTP_KIND_TEST\"}",
         "secret_env"},
        {"{\"type\":\"http\",\"url\":\"http://x/\",\"nope\":1}", "nope"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *e = json_loads(bad[i].json, 0, NULL);
        struct declared_kind d = {0};
        const char *field = NULL;
        char msg[300];
        assert_int_equal(http_kind_parse(e, &d, &field, msg, sizeof(msg)), -1);
        assert_string_equal(field, bad[i].field);
        json_decref(e);
    }
    json_t *e = json_loads("{\"type\":\"http\",\"url\":\"https://x/t\",\"method\":\"PUT\","
                           "\"headers\":{\"X-A\":\"b\"},\"timeout\":\"5s\"}",
                           0, NULL);
    struct declared_kind d = {0};
    const char *field = NULL;
    char msg[300];
    assert_int_equal(http_kind_parse(e, &d, &field, msg, sizeof(msg)), 0);
    assert_string_equal(d.http.method, "PUT");
    assert_string_equal(d.http.headers, "X-A: b\r\n");
    assert_int_equal(d.http.timeout_ms, 5000);
    assert_int_equal(d.kind.timeout_ms, 6000);
    http_spec_free(&d.http);
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_after),
        cmocka_unit_test(ssrf),
        cmocka_unit_test(entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
