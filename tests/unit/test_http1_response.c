/*
 * test_http1_response.c - unit tests of proto/http1_response.c: status
 * lines, header fields, body framing (Content-Length, chunked, until
 * close, none), keep-alive, limits, and the same verdict whatever the
 * split of the bytes across calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http1_response.h"

#define NHDR    16
#define MAXHEAD 4096u

static struct http1_header hdrs[NHDR];

static int parse(const char *s, bool head_request, struct http1_resp *r)
{
    struct http1_resp_parser p;
    http1_resp_parser_init(&p);
    memset(r, 0, sizeof(*r));
    r->headers = hdrs;
    r->headers_cap = NHDR;
    return http1_parse_response(&p, s, strlen(s), MAXHEAD, head_request, r);
}

/* The same bytes fed one more at a time (each call with the whole prefix,
 * in a fresh copy, as a ring buffer that moved would) give the same answer. */
static int parse_split(const char *s, struct http1_resp *r)
{
    size_t n = strlen(s);
    struct http1_resp_parser p;
    http1_resp_parser_init(&p);
    memset(r, 0, sizeof(*r));
    r->headers = hdrs;
    r->headers_cap = NHDR;
    int ret = HTTP1_INCOMPLETE;
    for (size_t i = 1; i <= n && ret == HTTP1_INCOMPLETE; i++) {
        char *copy = malloc(i);
        memcpy(copy, s, i);
        ret = http1_parse_response(&p, copy, i, MAXHEAD, false, r);
        free(copy);
    }
    return ret;
}

static void content_length_keep_alive(void **state)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: 12\r\nX-Empty:\r\n\r\n{\"ok\":true}\n";
    struct http1_resp r;
    assert_int_equal(parse(s, false, &r), HTTP1_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.reason_len, 2);
    assert_memory_equal(r.reason, "OK", 2);
    assert_int_equal(r.body, HTTP1_RESP_LENGTH);
    assert_int_equal(r.content_length, 12);
    assert_true(r.keep_alive);
    assert_int_equal(r.num_headers, 3);
    assert_int_equal(r.head_len, strlen(s) - 12);
    const struct http1_header *h = http1_resp_header(&r, "content-type");
    assert_non_null(h);
    assert_int_equal(h->value_len, 16);
    assert_memory_equal(h->value, "application/json", 16);
    h = http1_resp_header(&r, "X-EMPTY");
    assert_non_null(h);
    assert_int_equal(h->value_len, 0);
    assert_null(http1_resp_header(&r, "retry-after"));
}

static void chunked_and_until_close(void **state)
{
    struct http1_resp r;
    assert_int_equal(parse("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", false, &r),
                     HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_CHUNKED);
    assert_true(r.keep_alive);
    /* gzip, chunked: still chunked framing */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_CHUNKED);
    /* chunked not last: until close (RFC 9112 6.3) */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_CLOSE);
    assert_false(r.keep_alive);
    /* both: Transfer-Encoding wins and the connection is not reused */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false,
              &r),
        HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_CHUNKED);
    assert_false(r.keep_alive);
    /* neither: until close */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_CLOSE);
    assert_false(r.keep_alive);
}

static void no_body_statuses(void **state)
{
    struct http1_resp r;
    assert_int_equal(parse("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, &r),
                     HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_NONE);
    assert_int_equal(parse("HTTP/1.1 304 Not Modified\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_NONE);
    assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.status, 100);
    assert_int_equal(r.body, HTTP1_RESP_NONE);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, &r), HTTP1_OK);
    assert_int_equal(r.body, HTTP1_RESP_NONE);
    assert_true(r.keep_alive);
}

static void connection_semantics(void **state)
{
    struct http1_resp r;
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false, &r),
        HTTP1_OK);
    assert_false(r.keep_alive);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.minor_version, 0);
    assert_false(r.keep_alive);
    assert_int_equal(
        parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, &r),
        HTTP1_OK);
    assert_true(r.keep_alive);
    assert_int_equal(parse("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n"
                           "Connection: upgrade, close\r\nContent-Length: 0\r\n\r\n",
                           false, &r),
                     HTTP1_OK);
    assert_int_equal(r.status, 503);
    assert_false(r.keep_alive);
    /* no reason phrase, with or without the space */
    assert_int_equal(parse("HTTP/1.1 429 \r\nContent-Length: 0\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.reason_len, 0);
    assert_int_equal(parse("HTTP/1.1 429\r\nContent-Length: 0\r\n\r\n", false, &r), HTTP1_OK);
    assert_int_equal(r.status, 429);
}

static void content_length_rules(void **state)
{
    struct http1_resp r;
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n", false, &r),
        HTTP1_OK);
    assert_int_equal(r.content_length, 7);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n", false, &r),
        HTTP1_E_BAD_RESPONSE);
    assert_non_null(r.error);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, &r),
                     HTTP1_E_BAD_RESPONSE);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false, &r),
        HTTP1_E_BAD_RESPONSE);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &r),
                     HTTP1_E_BAD_RESPONSE);
}

static void malformed(void **state)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: novalue\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http1_resp r;
        int ret = parse(bad[i], false, &r);
        if (ret != HTTP1_E_BAD_RESPONSE)
            fail_msg("case %zu (%s) returned %d", i, bad[i], ret);
        assert_non_null(r.error);
        assert_int_equal(parse_split(bad[i], &r), HTTP1_E_BAD_RESPONSE);
    }
}

static void limits(void **state)
{
    struct http1_resp r;
    char big[MAXHEAD + 200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    memcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    /* no end yet, but already over the limit */
    assert_int_equal(parse(big, false, &r), HTTP1_E_HEADERS_LARGE);
    /* too many fields for the caller's array */
    char many[2048] = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < NHDR + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-%d: v\r\n", i);
    strcat(many, "\r\n");
    assert_int_equal(parse(many, false, &r), HTTP1_E_HEADERS_LARGE);
}

static void incomplete_then_complete_at_every_split(void **state)
{
    const char *s = "HTTP/1.1 202 Accepted\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabc";
    struct http1_resp r;
    size_t head = strlen(s) - 3;
    for (size_t cut = 0; cut < head; cut++) {
        struct http1_resp_parser p;
        http1_resp_parser_init(&p);
        memset(&r, 0, sizeof(r));
        r.headers = hdrs;
        r.headers_cap = NHDR;
        assert_int_equal(http1_parse_response(&p, s, cut, MAXHEAD, false, &r), HTTP1_INCOMPLETE);
        assert_int_equal(http1_parse_response(&p, s, strlen(s), MAXHEAD, false, &r), HTTP1_OK);
        assert_int_equal(r.status, 202);
        assert_int_equal(r.head_len, head);
    }
    assert_int_equal(parse_split(s, &r), HTTP1_OK);
    assert_int_equal(r.content_length, 3);
}

static void chunked_body_with_shared_decoder(void **state)
{
    const char *body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    char out[64];
    struct http1_chunked d;
    http1_chunked_init(&d);
    size_t used, made;
    const char *err = NULL;
    assert_int_equal(http1_chunked_decode(&d, body, strlen(body), out, &used, &made, 1024, &err),
                     HTTP1_OK);
    assert_int_equal(made, 9);
    assert_memory_equal(out, "Wikipedia", 9);
    assert_string_equal(body + used, "NEXT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_keep_alive),
        cmocka_unit_test(chunked_and_until_close),
        cmocka_unit_test(no_body_statuses),
        cmocka_unit_test(connection_semantics),
        cmocka_unit_test(content_length_rules),
        cmocka_unit_test(malformed),
        cmocka_unit_test(limits),
        cmocka_unit_test(incomplete_then_complete_at_every_split),
        cmocka_unit_test(chunked_body_with_shared_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
