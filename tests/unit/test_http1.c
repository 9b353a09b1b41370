/*
 * test_http1.c - unit tests of proto/http1.c: request heads (valid, every
 * rejection, limits, every split point), chunked bodies, dates and
 * response heads.
 *
 *   python3 -m ziglang cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. \
 *       proto/http1.c tests/unit/test_http1.c -lcmocka -o /tmp/test_http1 && /tmp/test_http1
 *
 * Every rejection test also feeds its request cut at every index and one
 * byte at a time, in buffers that move between calls, and requires the same
 * answer as the one-shot parse: a parser whose verdict depends on how TCP
 * split the bytes is a smuggling bug waiting for a proxy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proto/http1.h"

#define NHDR 32

static const struct http1_limits LIM = {
    HTTP1_DEFAULT_MAX_HEAD,
    HTTP1_DEFAULT_MAX_URI,
    HTTP1_DEFAULT_MAX_HEADERS < NHDR ? HTTP1_DEFAULT_MAX_HEADERS : NHDR,
    HTTP1_DEFAULT_MAX_BODY,
};

/* One parse: its own header array, its own copy of the input. */
struct parsed {
    int rc;
    char *buf;
    struct http1_request req;
    struct http1_header hdrs[NHDR];
};

static char *dup_bytes(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    return b;
}

static void req_init(struct http1_request *req, struct http1_header *h, uint32_t cap)
{
    memset(req, 0, sizeof(*req));
    req->headers = h;
    req->headers_cap = cap;
}

/* One-shot parse of raw[0..n) into a fresh buffer; free with done(). */
static int parse_n(struct parsed *p, const char *raw, size_t n, const struct http1_limits *lim,
                   uint32_t cap)
{
    struct http1_parser ps;

    http1_parser_init(&ps);
    p->buf = dup_bytes(raw, n);
    req_init(&p->req, p->hdrs, cap);
    p->rc = http1_parse_head(&ps, p->buf, n, lim, &p->req);
    return p->rc;
}

static int parse(struct parsed *p, const char *raw)
{
    return parse_n(p, raw, strlen(raw), &LIM, NHDR);
}

static void done(struct parsed *p)
{
    free(p->buf);
    p->buf = NULL;
}

static void assert_span(const char *base, const char *ptr, uint32_t len, const char *want)
{
    (void)base;
    assert_non_null(ptr);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(ptr, want, len);
}

#define SPAN(p, field, want) assert_span((p)->buf, (p)->req.field, (p)->req.field##_len, (want))

static void assert_header(const struct parsed *p, uint32_t i, const char *name, const char *value)
{
    assert_true(i < p->req.num_headers);
    assert_span(p->buf, p->req.headers[i].name, p->req.headers[i].name_len, name);
    assert_span(p->buf, p->req.headers[i].value, p->req.headers[i].value_len, value);
}

/* ------------------------------------------------------------------------ */
/* Split-point machinery                                                     */
/* ------------------------------------------------------------------------ */

static ptrdiff_t off(const char *base, const char *p)
{
    return p == NULL ? -1 : p - base;
}

/* Same verdict and, on success, the same fields at the same offsets. */
static void assert_same(int rc_a, const char *a, const struct http1_request *ra, int rc_b,
                        const char *b, const struct http1_request *rb)
{
    assert_int_equal(rc_a, rc_b);
    if (rc_a != HTTP1_OK && rc_a != HTTP1_INCOMPLETE) {
        assert_non_null(ra->error);
        assert_non_null(rb->error);
        assert_string_equal(ra->error, rb->error);
        return;
    }
    if (rc_a != HTTP1_OK)
        return;
    assert_int_equal(ra->head_len, rb->head_len);
    assert_int_equal(off(a, ra->method), off(b, rb->method));
    assert_int_equal(off(a, ra->target), off(b, rb->target));
    assert_int_equal(off(a, ra->path), off(b, rb->path));
    assert_int_equal(off(a, ra->query), off(b, rb->query));
    assert_int_equal(ra->method_len, rb->method_len);
    assert_int_equal(ra->target_len, rb->target_len);
    assert_int_equal(ra->path_len, rb->path_len);
    assert_int_equal(ra->query_len, rb->query_len);
    assert_int_equal(ra->minor_version, rb->minor_version);
    assert_int_equal(ra->keep_alive, rb->keep_alive);
    assert_int_equal(ra->expect_continue, rb->expect_continue);
    assert_int_equal(ra->has_host, rb->has_host);
    assert_int_equal(ra->body_kind, rb->body_kind);
    assert_int_equal(ra->content_length, rb->content_length);
    assert_int_equal(ra->num_headers, rb->num_headers);
    for (uint32_t i = 0; i < ra->num_headers; i++) {
        assert_int_equal(off(a, ra->headers[i].name), off(b, rb->headers[i].name));
        assert_int_equal(off(a, ra->headers[i].value), off(b, rb->headers[i].value));
        assert_int_equal(ra->headers[i].name_len, rb->headers[i].name_len);
        assert_int_equal(ra->headers[i].value_len, rb->headers[i].value_len);
    }
}

/*
 * Parse raw once whole, then (1) cut at every index k: the first k bytes,
 * then all of it in a different buffer, and (2) one byte at a time, each
 * call in a fresh buffer. Every path must agree with the one-shot parse.
 * Returns the one-shot result.
 */
static int check_splits_lim(const char *raw, size_t n, const struct http1_limits *lim, uint32_t cap)
{
    struct parsed whole;
    struct http1_header h1[NHDR], h2[NHDR];
    struct http1_request r1, r2;
    struct http1_parser ps;
    int rc;

    parse_n(&whole, raw, n, lim, cap);
    rc = whole.rc;

    for (size_t k = 1; k < n; k++) {
        char *first = dup_bytes(raw, k), *second;
        int rc1, rc2;

        http1_parser_init(&ps);
        req_init(&r1, h1, cap);
        rc1 = http1_parse_head(&ps, first, k, lim, &r1);
        if (rc1 != HTTP1_INCOMPLETE) {
            /* decided early: only possible if the whole parse decides the same */
            assert_same(whole.rc, whole.buf, &whole.req, rc1, first, &r1);
            free(first);
            continue;
        }
        second = dup_bytes(raw, n); /* allocated before first is freed: it moved */
        req_init(&r2, h2, cap);
        rc2 = http1_parse_head(&ps, second, n, lim, &r2);
        assert_same(whole.rc, whole.buf, &whole.req, rc2, second, &r2);
        free(first);
        free(second);
    }

    http1_parser_init(&ps);
    for (size_t k = 1; k <= n; k++) {
        char *b = dup_bytes(raw, k);
        int rc1;

        req_init(&r1, h1, cap);
        rc1 = http1_parse_head(&ps, b, k, lim, &r1);
        if (rc1 == HTTP1_INCOMPLETE) {
            /* nothing is scanned twice: all but a trailing CR is consumed */
            assert_int_equal(ps.pos, k - (raw[k - 1] == '\r' ? 1 : 0));
            free(b);
            continue;
        }
        assert_same(whole.rc, whole.buf, &whole.req, rc1, b, &r1);
        if (rc1 == HTTP1_OK)
            assert_int_equal(k, r1.head_len); /* completes on its last byte */
        free(b);
        done(&whole);
        return rc;
    }
    assert_int_equal(whole.rc, HTTP1_INCOMPLETE);
    done(&whole);
    return rc;
}

static int check_splits(const char *raw)
{
    return check_splits_lim(raw, strlen(raw), &LIM, NHDR);
}

/* A rejection: exact code, an error message, and the same at every split. */
static void expect_reject_n(const char *raw, size_t n, int code)
{
    struct parsed p;

    assert_int_equal(parse_n(&p, raw, n, &LIM, NHDR), code);
    assert_non_null(p.req.error);
    assert_true(strlen(p.req.error) > 0);
    done(&p);
    assert_int_equal(check_splits_lim(raw, n, &LIM, NHDR), code);
}

static void expect_reject(const char *raw, int code)
{
    expect_reject_n(raw, strlen(raw), code);
}

#define REJECT(name, raw, code)                                                                    \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        expect_reject(raw, code);                                                                  \
    }

#define BAD(name, raw) REJECT(name, raw, HTTP1_E_BAD_REQUEST)

/* ------------------------------------------------------------------------ */
/* Valid requests                                                            */
/* ------------------------------------------------------------------------ */

static void test_get_simple(void **state)
{
    (void)state;
    const char *raw = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    SPAN(&p, method, "GET");
    SPAN(&p, target, "/index.html");
    SPAN(&p, path, "/index.html");
    assert_null(p.req.query);
    assert_int_equal(p.req.minor_version, 1);
    assert_true(p.req.keep_alive);
    assert_true(p.req.has_host);
    assert_false(p.req.expect_continue);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_NONE);
    assert_int_equal(p.req.head_len, strlen(raw));
    assert_int_equal(p.req.num_headers, 2);
    assert_header(&p, 0, "Host", "example.com");
    assert_header(&p, 1, "Accept", "*/*");
    assert_null(p.req.error);
    /* pointers point into the buffer that was passed */
    assert_true(p.req.method >= p.buf && p.req.method < p.buf + p.req.head_len);
    done(&p);
    check_splits(raw);
}

static void test_post_content_length(void **state)
{
    (void)state;
    const char *head = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    char raw[256];
    struct parsed p;

    snprintf(raw, sizeof(raw), "%shello", head);
    assert_int_equal(parse(&p, raw), HTTP1_OK);
    SPAN(&p, method, "POST");
    assert_int_equal(p.req.body_kind, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 5);
    assert_int_equal(p.req.head_len, strlen(head));
    assert_memory_equal(p.buf + p.req.head_len, "hello", 5);
    done(&p);
    check_splits(raw);
}

static void test_post_chunked(void **state)
{
    (void)state;
    const char *raw = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_CHUNKED);
    assert_int_equal(p.req.head_len, strstr(raw, "\r\n\r\n") + 4 - raw);
    done(&p);
    check_splits(raw);
}

static void test_te_case_insensitive(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(
        parse(&p, "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  ChUnKeD \r\n\r\n"), HTTP1_OK);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_CHUNKED);
    done(&p);
}

static void test_te_empty_elements_ignored(void **state)
{
    (void)state;
    struct parsed p;

    /* RFC 9110 5.6.1: empty list elements are not codings */
    assert_int_equal(
        parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n"), HTTP1_OK);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_CHUNKED);
    done(&p);
}

static void test_head_request(void **state)
{
    (void)state;
    const char *raw = "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    SPAN(&p, method, "HEAD");
    assert_int_equal(p.req.body_kind, HTTP1_BODY_NONE);
    done(&p);
    check_splits(raw);
}

static void test_http10_keep_alive(void **state)
{
    (void)state;
    const char *raw = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    assert_int_equal(p.req.minor_version, 0);
    assert_true(p.req.keep_alive);
    assert_false(p.req.has_host); /* Host is optional in 1.0 */
    done(&p);
    check_splits(raw);
}

static void test_http10_default_close(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "GET / HTTP/1.0\r\nHost: a\r\n\r\n"), HTTP1_OK);
    assert_false(p.req.keep_alive);
    assert_true(p.req.has_host);
    done(&p);
}

static void test_http11_connection_close(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"), HTTP1_OK);
    assert_false(p.req.keep_alive);
    done(&p);
    /* token list, across fields; close wins over keep-alive */
    assert_int_equal(parse(&p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
                               "Connection: upgrade, close\r\n\r\n"),
                     HTTP1_OK);
    assert_false(p.req.keep_alive);
    done(&p);
    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"),
                     HTTP1_OK);
    assert_true(p.req.keep_alive); /* "closed" is not "close" */
    done(&p);
}

static void test_absolute_form(void **state)
{
    (void)state;
    const char *raw = "GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    SPAN(&p, target, "http://example.com/a/b?x=1");
    SPAN(&p, path, "http://example.com/a/b");
    SPAN(&p, query, "x=1");
    done(&p);
    assert_int_equal(parse(&p, "GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                     HTTP1_OK);
    done(&p);
    check_splits(raw);
}

static void test_options_star(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK);
    SPAN(&p, target, "*");
    done(&p);
}

static void test_query_split(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "GET /search?q=a?b&c=d HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK);
    SPAN(&p, path, "/search");
    SPAN(&p, query, "q=a?b&c=d");
    done(&p);
    /* a bare '?' is an empty query, not an absent one */
    assert_int_equal(parse(&p, "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK);
    SPAN(&p, path, "/p");
    assert_non_null(p.req.query);
    assert_int_equal(p.req.query_len, 0);
    done(&p);
}

static void test_ows_stripping(void **state)
{
    (void)state;
    const char *raw = "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v a l \t \r\nX-B:\r\nX-C:   \r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    assert_header(&p, 0, "Host", "a");
    assert_header(&p, 1, "X-A", "v a l");
    assert_header(&p, 2, "X-B", "");
    assert_header(&p, 3, "X-C", "");
    done(&p);
    check_splits(raw);
}

static void test_obs_text_in_value(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n"),
                     HTTP1_OK);
    assert_header(&p, 1, "X-Name", "caf\xc3\xa9");
    done(&p);
}

static void test_duplicate_identical_content_length(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(
        parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n"),
        HTTP1_OK);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 7);
    done(&p);
    assert_int_equal(parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7,7\r\n\r\n"),
                     HTTP1_OK);
    assert_int_equal(p.req.content_length, 7);
    done(&p);
}

static void test_content_length_zero_and_leading_zeros(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
                     HTTP1_OK);
    assert_int_equal(p.req.body_kind, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 0);
    done(&p);
    assert_int_equal(parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"),
                     HTTP1_OK);
    assert_int_equal(p.req.content_length, 7);
    done(&p);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    const char *raw = "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_OK);
    SPAN(&p, method, "GET");
    assert_int_equal(p.req.head_len, strlen(raw)); /* the skipped lines count */
    done(&p);
    check_splits(raw);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                               "Content-Length: 3\r\n\r\n"),
                     HTTP1_OK);
    assert_true(p.req.expect_continue);
    done(&p);
    /* unknown expectations are ignored, not refused with 417 */
    assert_int_equal(parse(&p, "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), HTTP1_OK);
    assert_false(p.req.expect_continue);
    done(&p);
    /* RFC 9110 10.1.1: a 1.0 client cannot expect 100 */
    assert_int_equal(parse(&p, "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), HTTP1_OK);
    assert_false(p.req.expect_continue);
    done(&p);
}

static void test_find_header(void **state)
{
    (void)state;
    struct parsed p;
    const struct http1_header *h;

    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: one\r\nx-dup: two\r\n"
                               "Content-TYPE: text/plain\r\n\r\n"),
                     HTTP1_OK);
    h = http1_find_header(&p.req, "content-type");
    assert_non_null(h);
    assert_span(p.buf, h->value, h->value_len, "text/plain");
    h = http1_find_header(&p.req, "X-DUP");
    assert_non_null(h);
    assert_span(p.buf, h->value, h->value_len, "one"); /* the first one */
    assert_null(http1_find_header(&p.req, "Content-Typ"));
    assert_null(http1_find_header(&p.req, "Content-Types"));
    assert_null(http1_find_header(&p.req, "Missing"));
    done(&p);
}

static void test_pipelined_bytes_not_in_head(void **state)
{
    (void)state;
    const char *first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    char raw[256];
    struct parsed p;

    snprintf(raw, sizeof(raw), "%sGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", first);
    assert_int_equal(parse(&p, raw), HTTP1_OK);
    assert_int_equal(p.req.head_len, strlen(first));
    SPAN(&p, target, "/1");
    done(&p);
}

static void test_methods_are_tokens(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_E_BAD_REQUEST);
    done(&p); /* '*' only with OPTIONS */
    assert_int_equal(parse(&p, "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP1_OK);
    SPAN(&p, method, "PURGE");
    done(&p);
}

static void test_incomplete_then_complete(void **state)
{
    (void)state;
    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http1_header h[NHDR];
    struct http1_request req;
    struct http1_parser ps;

    http1_parser_init(&ps);
    req_init(&req, h, NHDR);
    assert_int_equal(http1_parse_head(&ps, raw, 0, &LIM, &req), HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_head(&ps, raw, 17, &LIM, &req), HTTP1_INCOMPLETE);
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw) - 1, &LIM, &req), HTTP1_INCOMPLETE);
    assert_null(req.error);
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw), &LIM, &req), HTTP1_OK);
    /* calling again after completion gives the same answer */
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw), &LIM, &req), HTTP1_OK);
    assert_int_equal(req.head_len, strlen(raw));
    assert_int_equal(req.num_headers, 1);
}

static void test_error_repeats(void **state)
{
    (void)state;
    const char *raw = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
    struct http1_header h[NHDR];
    struct http1_request req;
    struct http1_parser ps;
    const char *first;

    http1_parser_init(&ps);
    req_init(&req, h, NHDR);
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw), &LIM, &req), HTTP1_E_BAD_REQUEST);
    first = req.error;
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw), &LIM, &req), HTTP1_E_BAD_REQUEST);
    assert_string_equal(req.error, first);
}

static void test_null_limits_use_defaults(void **state)
{
    (void)state;
    struct http1_header h[NHDR];
    struct http1_request req;
    struct http1_parser ps;
    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    http1_parser_init(&ps);
    req_init(&req, h, NHDR);
    assert_int_equal(http1_parse_head(&ps, raw, strlen(raw), NULL, &req), HTTP1_OK);
}

/* ------------------------------------------------------------------------ */
/* Rejections: line endings and the request line                             */
/* ------------------------------------------------------------------------ */

BAD(test_bare_lf_request_line, "GET / HTTP/1.1\nHost: a\r\n\r\n")
BAD(test_bare_lf_header, "GET / HTTP/1.1\r\nHost: a\n\r\n")
BAD(test_bare_lf_final, "GET / HTTP/1.1\r\nHost: a\r\n\n")
BAD(test_bare_lf_leading, "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_bare_cr_request_line, "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_bare_cr_header_value, "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n")
BAD(test_bare_cr_final, "GET / HTTP/1.1\r\nHost: a\r\n\rX")
BAD(test_too_many_leading_empty_lines, "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_version_lowercase, "GET / http/1.1\r\nHost: a\r\n\r\n")
BAD(test_version_garbage, "GET / HTTP/1.1x\r\nHost: a\r\n\r\n")
BAD(test_version_short, "GET / HTTP/1\r\nHost: a\r\n\r\n")
BAD(test_version_two_digit_major, "GET / HTTP/11.1\r\nHost: a\r\n\r\n")
BAD(test_version_missing, "GET /\r\nHost: a\r\n\r\n")
BAD(test_target_missing, "GET\r\nHost: a\r\n\r\n")
REJECT(test_version_2_0, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP1_E_VERSION)
REJECT(test_version_1_2, "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP1_E_VERSION)
REJECT(test_version_0_9, "GET / HTTP/0.9\r\n\r\n", HTTP1_E_VERSION)
BAD(test_double_space_before_target, "GET  / HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_double_space_before_version, "GET /  HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_trailing_space_after_version, "GET / HTTP/1.1 \r\nHost: a\r\n\r\n")
BAD(test_tab_separator, "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_leading_space_request_line, " GET / HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_method_invalid_char, "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_control_char, "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_del, "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_high_byte, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_not_origin_form, "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_star_not_options, "GET * HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_authority_form, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n")
BAD(test_target_absolute_no_host, "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_userinfo, "GET http://user@evil.com/ HTTP/1.1\r\nHost: a\r\n\r\n")
BAD(test_target_other_scheme, "GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n")

static void test_nul_in_request_line(void **state)
{
    (void)state;
    static const char raw[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
    expect_reject_n(raw, sizeof(raw) - 1, HTTP1_E_BAD_REQUEST);
}

/* ------------------------------------------------------------------------ */
/* Rejections: header fields                                                 */
/* ------------------------------------------------------------------------ */

BAD(test_whitespace_before_colon, "GET / HTTP/1.1\r\nHost : a\r\n\r\n")
BAD(test_tab_before_colon, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n")
BAD(test_obs_fold, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n")
BAD(test_obs_fold_tab, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n")
BAD(test_whitespace_after_request_line, "GET / HTTP/1.1\r\n Host: a\r\n\r\n")
BAD(test_empty_header_name, "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n")
BAD(test_header_without_colon, "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n")
BAD(test_header_name_invalid_char, "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n")
BAD(test_header_value_control_char, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n")
BAD(test_header_value_del, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n")
BAD(test_header_value_escape, "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n")

static void test_header_value_nul(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n";
    expect_reject_n(raw, sizeof(raw) - 1, HTTP1_E_BAD_REQUEST);
}

/* ------------------------------------------------------------------------ */
/* Rejections: framing, Host                                                 */
/* ------------------------------------------------------------------------ */

static void test_cl_and_te(void **state)
{
    (void)state;
    const char *raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    struct parsed p;

    assert_int_equal(parse(&p, raw), HTTP1_E_BAD_REQUEST);
    assert_string_equal(p.req.error, "both Content-Length and Transfer-Encoding");
    done(&p);
    expect_reject(raw, HTTP1_E_BAD_REQUEST);
    /* the order of the fields does not matter */
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 5\r\n\r\n",
                  HTTP1_E_BAD_REQUEST);
}

BAD(test_cl_not_digits, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n")
BAD(test_cl_plus_sign, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n")
BAD(test_cl_minus_sign, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n")
BAD(test_cl_inner_space, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n")
BAD(test_cl_hex, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n")
BAD(test_cl_empty, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n")
BAD(test_cl_overflow, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n")
BAD(test_cl_trailing_comma, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n")
BAD(test_cl_empty_element, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n")
BAD(test_cl_differing_fields,
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
BAD(test_cl_differing_list, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n")
REJECT(test_cl_over_max_body, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n",
       HTTP1_E_BODY_LARGE)
REJECT(test_cl_huge, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
       HTTP1_E_BODY_LARGE)

static void test_cl_at_max_body(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"),
                     HTTP1_OK);
    assert_int_equal(p.req.content_length, HTTP1_DEFAULT_MAX_BODY);
    done(&p);
}

REJECT(test_te_gzip_chunked,
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP1_E_NOT_IMPL)
REJECT(
    test_te_split_fields_gzip_chunked,
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    HTTP1_E_NOT_IMPL)
BAD(test_te_chunked_gzip, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
BAD(test_te_identity, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n")
BAD(test_te_gzip_only, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")
BAD(test_te_chunked_twice,
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n")
BAD(test_te_chunked_two_fields, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                                "chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
BAD(test_te_empty, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n")
BAD(test_te_near_miss, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n")
BAD(test_te_http10, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
BAD(test_host_missing, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
BAD(test_host_twice, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
BAD(test_host_twice_http10, "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n")
BAD(test_host_invalid_space, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
BAD(test_host_invalid_slash, "GET / HTTP/1.1\r\nHost: evil.com/x\r\n\r\n")

static void test_host_forms_accepted(void **state)
{
    (void)state;
    struct parsed p;

    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), HTTP1_OK);
    done(&p);
    assert_int_equal(parse(&p, "GET / HTTP/1.1\r\nHost: \r\n\r\n"), HTTP1_OK);
    assert_true(p.req.has_host);
    done(&p);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */
/* ------------------------------------------------------------------------ */

/* "GET /aaa...a HTTP/1.1\r\nHost: a\r\n\r\n" with a target of tlen bytes. */
static size_t make_long_target(char *out, size_t cap, size_t tlen)
{
    size_t n = 0;

    assert_true(tlen + 64 < cap);
    memcpy(out, "GET /", 5);
    n = 5;
    memset(out + n, 'a', tlen - 1);
    n += tlen - 1;
    memcpy(out + n, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    return n + 22;
}

static void test_uri_too_long(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[1024];
    struct parsed p;
    size_t n;

    lim.max_uri = 100;
    n = make_long_target(raw, sizeof(raw), 100);
    assert_int_equal(parse_n(&p, raw, n, &lim, NHDR), HTTP1_OK);
    done(&p);
    n = make_long_target(raw, sizeof(raw), 101);
    assert_int_equal(parse_n(&p, raw, n, &lim, NHDR), HTTP1_E_URI_LONG);
    assert_non_null(p.req.error);
    done(&p);
    assert_int_equal(check_splits_lim(raw, n, &lim, NHDR), HTTP1_E_URI_LONG);
}

static void test_uri_too_long_before_line_end(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[1024];
    struct parsed p;

    lim.max_uri = 100;
    memcpy(raw, "GET /", 5);
    memset(raw + 5, 'a', 200); /* no SP, no CRLF yet */
    assert_int_equal(parse_n(&p, raw, 4 + 100, &lim, NHDR), HTTP1_INCOMPLETE);
    done(&p);
    assert_int_equal(parse_n(&p, raw, 4 + 101, &lim, NHDR), HTTP1_E_URI_LONG);
    assert_non_null(p.req.error);
    done(&p);
}

static void test_uri_default_limit(void **state)
{
    (void)state;
    static char raw[HTTP1_DEFAULT_MAX_URI + 128];
    struct parsed p;
    size_t n = make_long_target(raw, sizeof(raw), HTTP1_DEFAULT_MAX_URI + 1);

    assert_int_equal(parse_n(&p, raw, n, &LIM, NHDR), HTTP1_E_URI_LONG);
    done(&p);
}

/* A head of exactly n bytes: "GET / HTTP/1.1\r\nHost: a\r\nX: vvv...\r\n\r\n". */
static size_t make_head_of_size(char *out, size_t n)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t plen = strlen(pre), vlen = n - plen - 4;

    memcpy(out, pre, plen);
    memset(out + plen, 'v', vlen);
    memcpy(out + plen + vlen, "\r\n\r\n", 4);
    return n;
}

static void test_head_too_large(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[1024];
    struct parsed p;

    lim.max_head = 200;
    make_head_of_size(raw, 200);
    assert_int_equal(parse_n(&p, raw, 200, &lim, NHDR), HTTP1_OK);
    assert_int_equal(p.req.head_len, 200);
    done(&p);
    make_head_of_size(raw, 201);
    assert_int_equal(parse_n(&p, raw, 201, &lim, NHDR), HTTP1_E_HEADERS_LARGE);
    assert_non_null(p.req.error);
    done(&p);
    assert_int_equal(check_splits_lim(raw, 201, &lim, NHDR), HTTP1_E_HEADERS_LARGE);
}

static void test_head_too_large_incomplete(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[1024];
    struct parsed p;

    /* no end of head in sight: 431 as soon as len passes the limit */
    lim.max_head = 200;
    make_head_of_size(raw, 600);
    assert_int_equal(parse_n(&p, raw, 200, &lim, NHDR), HTTP1_INCOMPLETE);
    done(&p);
    assert_int_equal(parse_n(&p, raw, 201, &lim, NHDR), HTTP1_E_HEADERS_LARGE);
    assert_non_null(p.req.error);
    done(&p);
}

static void test_head_default_limit(void **state)
{
    (void)state;
    static char raw[HTTP1_DEFAULT_MAX_HEAD + 64];
    struct parsed p;

    make_head_of_size(raw, HTTP1_DEFAULT_MAX_HEAD);
    assert_int_equal(parse_n(&p, raw, HTTP1_DEFAULT_MAX_HEAD, &LIM, NHDR), HTTP1_OK);
    done(&p);
    make_head_of_size(raw, HTTP1_DEFAULT_MAX_HEAD + 1);
    assert_int_equal(parse_n(&p, raw, HTTP1_DEFAULT_MAX_HEAD + 1, &LIM, NHDR),
                     HTTP1_E_HEADERS_LARGE);
    done(&p);
}

/* Host plus nfields-1 "X-n: v" fields. */
static size_t make_fields(char *out, size_t cap, unsigned nfields)
{
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");

    for (unsigned i = 1; i < nfields; i++)
        n += (size_t)snprintf(out + n, cap - n, "X-%u: v\r\n", i);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    return n;
}

static void test_too_many_headers(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[4096];
    struct parsed p;
    size_t n;

    lim.max_headers = 10;
    n = make_fields(raw, sizeof(raw), 10);
    assert_int_equal(parse_n(&p, raw, n, &lim, NHDR), HTTP1_OK);
    assert_int_equal(p.req.num_headers, 10);
    done(&p);
    n = make_fields(raw, sizeof(raw), 11);
    assert_int_equal(parse_n(&p, raw, n, &lim, NHDR), HTTP1_E_HEADERS_LARGE);
    assert_non_null(p.req.error);
    done(&p);
    assert_int_equal(check_splits_lim(raw, n, &lim, NHDR), HTTP1_E_HEADERS_LARGE);
}

static void test_headers_cap_smaller_than_limit(void **state)
{
    (void)state;
    struct http1_limits lim = LIM;
    static char raw[4096];
    struct parsed p;
    size_t n;

    lim.max_headers = 100;
    n = make_fields(raw, sizeof(raw), 5);
    assert_int_equal(parse_n(&p, raw, n, &lim, 5), HTTP1_OK);
    done(&p);
    n = make_fields(raw, sizeof(raw), 6);
    assert_int_equal(parse_n(&p, raw, n, &lim, 5), HTTP1_E_HEADERS_LARGE);
    assert_non_null(p.req.error);
    done(&p);
}

/* ------------------------------------------------------------------------ */
/* Every split point                                                         */
/* ------------------------------------------------------------------------ */

static void test_splits_valid_requests(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nPOST /api/v1/items?limit=10&x=%20 HTTP/1.1\r\nHost: api.example.com:8443\r\n"
        "User-Agent: test/1.0\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
        "Connection: keep-alive\r\nX-Empty:\r\nX-Spaces:  a  b  \r\n\r\n{\"a\": \"bcd\"}\n",
        ("PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
         "4;ext=\"q\\\"x\"\r\nWiki\r\n0\r\nTrailer: t\r\n\r\n"),
        "GET http://h.example/p?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n",
    };

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        assert_int_equal(check_splits(reqs[i]), HTTP1_OK);
}

static void test_splits_rejected_requests(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int code;
    } reqs[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         HTTP1_E_BAD_REQUEST},
        {"GET / HTTP/1.1\r\r\n", HTTP1_E_BAD_REQUEST},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r", HTTP1_INCOMPLETE},
        {"GET / HTTP/3.0\r\n", HTTP1_E_VERSION},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n", HTTP1_E_NOT_IMPL},
    };

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        assert_int_equal(check_splits(reqs[i].raw), reqs[i].code);
}

/* ------------------------------------------------------------------------ */
/* Chunked bodies                                                            */
/* ------------------------------------------------------------------------ */

struct decoded {
    int rc;
    size_t consumed, produced;
    const char *error;
    char out[32768];
};

static int decode(struct decoded *r, const char *src, size_t n, uint64_t max_body)
{
    struct http1_chunked d;

    http1_chunked_init(&d);
    r->error = NULL;
    r->rc =
        http1_chunked_decode(&d, src, n, r->out, &r->consumed, &r->produced, max_body, &r->error);
    return r->rc;
}

/*
 * Decode body whole, then cut at every index into two calls, then one byte
 * at a time, then in place (whole and in two pieces): all must agree.
 */
static int check_chunked(const char *body, size_t n, uint64_t max_body)
{
    static struct decoded whole;
    static char out[32768];
    struct http1_chunked d;
    size_t c, p;

    assert_true(n <= sizeof(out));
    decode(&whole, body, n, max_body);
    assert_true(whole.produced <= whole.consumed);
    assert_true(whole.consumed <= n);
    if (whole.rc != HTTP1_OK && whole.rc != HTTP1_INCOMPLETE)
        assert_non_null(whole.error);
    if (whole.rc == HTTP1_INCOMPLETE)
        assert_int_equal(whole.consumed, n);

    for (size_t k = 0; k <= n; k++) {
        size_t cons = 0, prod = 0;
        const char *err = NULL;
        int rc;

        http1_chunked_init(&d);
        rc = http1_chunked_decode(&d, body, k, out, &c, &p, max_body, &err);
        cons += c;
        prod += p;
        if (rc == HTTP1_INCOMPLETE) {
            assert_int_equal(c, k);
            rc = http1_chunked_decode(&d, body + k, n - k, out + prod, &c, &p, max_body, &err);
            cons += c;
            prod += p;
        }
        assert_int_equal(rc, whole.rc);
        assert_int_equal(cons, whole.consumed);
        assert_int_equal(prod, whole.produced);
        assert_memory_equal(out, whole.out, prod);
        if (rc != HTTP1_OK && rc != HTTP1_INCOMPLETE)
            assert_string_equal(err, whole.error);
    }

    {
        size_t cons = 0, prod = 0;
        const char *err = NULL;
        int rc = HTTP1_INCOMPLETE;

        http1_chunked_init(&d);
        for (size_t k = 0; k < n && rc == HTTP1_INCOMPLETE; k++) {
            rc = http1_chunked_decode(&d, body + k, 1, out + prod, &c, &p, max_body, &err);
            cons += c;
            prod += p;
        }
        assert_int_equal(rc, whole.rc);
        assert_int_equal(cons, whole.consumed);
        assert_int_equal(prod, whole.produced);
        assert_memory_equal(out, whole.out, prod);
    }

    for (size_t k = 0; k <= n; k += (k < 8 || n - k < 8) ? 1 : 7) {
        /* in place: dst is the same buffer, behind the read position */
        char *buf = dup_bytes(body, n);
        size_t in = 0, prod = 0;
        int rc;

        http1_chunked_init(&d);
        rc = http1_chunked_decode(&d, buf, k, buf, &c, &p, max_body, NULL);
        in += c;
        prod += p;
        if (rc == HTTP1_INCOMPLETE) {
            rc = http1_chunked_decode(&d, buf + in, n - in, buf + prod, &c, &p, max_body, NULL);
            in += c;
            prod += p;
        }
        assert_int_equal(rc, whole.rc);
        assert_int_equal(prod, whole.produced);
        assert_memory_equal(buf, whole.out, prod);
        free(buf);
    }
    return whole.rc;
}

#define CHECK_CHUNKED(lit, max) check_chunked((lit), sizeof(lit) - 1, (max))

static void test_chunked_simple(void **state)
{
    (void)state;
    static const char body[] = "5\r\nhello\r\n0\r\n\r\n";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_OK);
    assert_int_equal(r.consumed, sizeof(body) - 1);
    assert_int_equal(r.produced, 5);
    assert_memory_equal(r.out, "hello", 5);
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_multi_hex(void **state)
{
    (void)state;
    static const char body[] = "a\r\n0123456789\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                               "000\r\n\r\n";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_OK);
    assert_int_equal(r.produced, 36);
    assert_memory_equal(r.out, "0123456789abcdefghijklmnopqrstuvwxyz", 36);
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_extensions(void **state)
{
    (void)state;
    static const char body[] = "3;a=b;c\r\nabc\r\n"
                               "3 ; name = \"quoted \\\" ;value\" ;x=y\r\ndef\r\n"
                               "0;last\r\n\r\n";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_OK);
    assert_int_equal(r.produced, 6);
    assert_memory_equal(r.out, "abcdef", 6);
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_trailers_dropped(void **state)
{
    (void)state;
    static const char body[] = "2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other:\r\n\r\n";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_OK);
    assert_int_equal(r.consumed, sizeof(body) - 1);
    assert_int_equal(r.produced, 2);
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_stops_at_end(void **state)
{
    (void)state;
    static const char body[] = "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_OK);
    assert_int_equal(r.consumed, strlen("2\r\nhi\r\n0\r\n\r\n"));
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_incomplete(void **state)
{
    (void)state;
    static const char body[] = "5\r\nhel";
    struct decoded r;

    assert_int_equal(decode(&r, body, sizeof(body) - 1, 1000), HTTP1_INCOMPLETE);
    assert_int_equal(r.consumed, sizeof(body) - 1);
    assert_int_equal(r.produced, 3);
}

static void test_chunked_done_is_sticky(void **state)
{
    (void)state;
    static const char body[] = "0\r\n\r\n";
    struct http1_chunked d;
    size_t c, p;
    char out[16];

    http1_chunked_init(&d);
    assert_int_equal(http1_chunked_decode(&d, body, 5, out, &c, &p, 10, NULL), HTTP1_OK);
    assert_int_equal(http1_chunked_decode(&d, "1\r\n", 3, out, &c, &p, 10, NULL), HTTP1_OK);
    assert_int_equal(c, 0);
    assert_int_equal(p, 0);
}

static void test_chunked_in_place(void **state)
{
    (void)state;
    char buf[] = "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    struct http1_chunked d;
    size_t c, p;

    http1_chunked_init(&d);
    assert_int_equal(http1_chunked_decode(&d, buf, strlen(buf), buf, &c, &p, 100, NULL), HTTP1_OK);
    assert_int_equal(p, 7);
    assert_memory_equal(buf, "abcdefg", 7);
}

static void test_chunked_sixteen_digits(void **state)
{
    (void)state;
    static const char body[] = "0000000000000003\r\nabc\r\n0\r\n\r\n";
    assert_int_equal(CHECK_CHUNKED(body, 1000), HTTP1_OK);
}

static void test_chunked_max_body(void **state)
{
    (void)state;
    static const char body[] = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    struct decoded r;

    assert_int_equal(CHECK_CHUNKED(body, 11), HTTP1_OK);
    assert_int_equal(decode(&r, body, sizeof(body) - 1, 10), HTTP1_E_BODY_LARGE);
    assert_non_null(r.error);
    assert_int_equal(r.produced, 5); /* refused at the size line, before the data */
    assert_int_equal(CHECK_CHUNKED(body, 10), HTTP1_E_BODY_LARGE);
    assert_int_equal(decode(&r, "ffffffffffffffff\r\n", 18, HTTP1_DEFAULT_MAX_BODY),
                     HTTP1_E_BODY_LARGE);
}

static void chunked_reject(const char *body, size_t n, int code)
{
    struct decoded r;

    assert_int_equal(decode(&r, body, n, UINT64_MAX), code);
    assert_non_null(r.error);
    assert_true(strlen(r.error) > 0);
    assert_int_equal(check_chunked(body, n, UINT64_MAX), code);
}

#define CHUNK_BAD(name, lit)                                                                       \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        chunked_reject((lit), sizeof(lit) - 1, HTTP1_E_BAD_REQUEST);                               \
    }

CHUNK_BAD(test_chunked_size_not_hex, "g\r\nabc\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_size_missing, "\r\nabc\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_size_sign, "+5\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_size_0x, "0x5\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_size_17_digits, "00000000000000005\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_size_overflow, "10000000000000000\r\n")
CHUNK_BAD(test_chunked_bare_lf_after_size, "5\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_bare_cr_after_size, "5\rhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_trailing_space, "5 \r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_data_too_long, "5\r\nhelloX\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_data_bare_lf, "5\r\nhello\n0\r\n\r\n")
CHUNK_BAD(test_chunked_data_bare_cr, "5\r\nhello\r0\r\n\r\n")
CHUNK_BAD(test_chunked_ext_no_name, "5;=x\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_ext_space_in_name, "5;a b\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_ext_control, "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_ext_unterminated_quote, "5;a=\"x\r\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_ext_bare_lf, "5;a=b\nhello\r\n0\r\n\r\n")
CHUNK_BAD(test_chunked_trailer_obs_fold, "0\r\nX: a\r\n b\r\n\r\n")
CHUNK_BAD(test_chunked_trailer_no_colon, "0\r\nX-A\r\n\r\n")
CHUNK_BAD(test_chunked_trailer_space_before_colon, "0\r\nX-A : b\r\n\r\n")
CHUNK_BAD(test_chunked_trailer_control, "0\r\nX-A: b\x7f\r\n\r\n")
CHUNK_BAD(test_chunked_trailer_bare_lf, "0\r\nX-A: b\n\r\n")
CHUNK_BAD(test_chunked_final_bare_lf, "0\r\n\n")
CHUNK_BAD(test_chunked_final_bare_cr, "0\r\n\rX")

static void test_chunked_ext_too_long(void **state)
{
    (void)state;
    static char body[8192];
    size_t n = 0;

    body[n++] = '1';
    body[n++] = ';';
    memset(body + n, 'e', 5000);
    n += 5000;
    memcpy(body + n, "\r\nx\r\n0\r\n\r\n", 10);
    n += 10;
    chunked_reject(body, n, HTTP1_E_BAD_REQUEST);
    /* just under the bound is fine */
    n = 2 + 4000;
    memcpy(body + n, "\r\nx\r\n0\r\n\r\n", 10);
    assert_int_equal(check_chunked(body, n + 10, 1000), HTTP1_OK);
}

static void test_chunked_trailers_too_long(void **state)
{
    (void)state;
    static char body[20000];
    size_t n = 0;

    memcpy(body, "0\r\n", 3);
    n = 3;
    while (n < 17000) {
        memcpy(body + n, "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 39);
        n += 39;
    }
    memcpy(body + n, "\r\n", 2);
    n += 2;
    chunked_reject(body, n, HTTP1_E_BAD_REQUEST);
}

/* ------------------------------------------------------------------------ */
/* Dates and response heads                                                  */
/* ------------------------------------------------------------------------ */

static void assert_date(int64_t t, const char *want)
{
    char out[HTTP1_DATE_LEN + 1];

    memset(out, 'x', sizeof(out));
    http1_format_date(t, out);
    assert_string_equal(out, want);
}

static void test_date_known(void **state)
{
    (void)state;
    assert_date(784111777, "Sun, 06 Nov 1994 08:49:37 GMT"); /* RFC 9110's example */
    assert_date(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_date(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_date(1700000000, "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_date(2147483647, "Tue, 19 Jan 2038 03:14:07 GMT");
    assert_date(2147483648, "Tue, 19 Jan 2038 03:14:08 GMT");
}

static void test_date_leap_years(void **state)
{
    (void)state;
    assert_date(951782400, "Tue, 29 Feb 2000 00:00:00 GMT"); /* 400-year rule */
    assert_date(951868800, "Wed, 01 Mar 2000 00:00:00 GMT");
    assert_date(1078012800, "Sun, 29 Feb 2004 00:00:00 GMT");
    assert_date(1709208000, "Thu, 29 Feb 2024 12:00:00 GMT");
    assert_date(4107456000, "Sun, 28 Feb 2100 00:00:00 GMT"); /* 100-year rule */
    assert_date(4107542400, "Mon, 01 Mar 2100 00:00:00 GMT");
    assert_date(1735689599, "Tue, 31 Dec 2024 23:59:59 GMT"); /* day 366 */
}

static void test_date_clamped(void **state)
{
    (void)state;
    assert_date(253402300799, "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_date(INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_date(-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT");
    assert_date(INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT");
}

static void test_date_matches_gmtime(void **state)
{
    (void)state;
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char want[64];
    uint64_t x = 88172645463325252ull;

    /* every 7919 minutes over 1900..2200, plus pseudo-random instants */
    for (int64_t t = -2208988800; t < 7258118400; t += 7919 * 60 + 13) {
        struct tm tm;
        time_t tt = (time_t)t;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 2)
            tt = (time_t)(int64_t)(x % 20000000000ull) - 2000000000;
        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_date((int64_t)tt, want);
    }
}

static const char DATE[] = "Sun, 06 Nov 1994 08:49:37 GMT";

static void assert_head(const struct http1_response *r, const char *want)
{
    char out[1024];
    size_t n = http1_response_head(out, sizeof(out), r);

    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void test_response_basic(void **state)
{
    (void)state;
    struct http1_response r = {.status = 200,
                               .minor_version = 1,
                               .keep_alive = true,
                               .date = DATE,
                               .server = "trireme",
                               .content_type = "application/json",
                               .content_length = 12};

    assert_head(&r, "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Server: trireme\r\nContent-Type: application/json\r\n"
                    "Content-Length: 12\r\n\r\n");
}

static void test_response_close(void **state)
{
    (void)state;
    struct http1_response r = {.status = 404, .minor_version = 1, .date = DATE};

    assert_head(&r, "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

static void test_response_http10_keep_alive(void **state)
{
    (void)state;
    struct http1_response r = {.status = 200, .minor_version = 0, .keep_alive = true};

    assert_head(&r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

static void test_response_no_content_length(void **state)
{
    (void)state;
    struct http1_response r = {
        .status = 204, .minor_version = 1, .keep_alive = true, .content_length = 99};

    assert_head(&r, "HTTP/1.1 204 No Content\r\n\r\n");
    r.status = 304;
    assert_head(&r, "HTTP/1.1 304 Not Modified\r\n\r\n");
    r.status = 100;
    assert_head(&r, "HTTP/1.1 100 Continue\r\n\r\n");
    r.status = 299; /* unknown to the table, but it has a body length */
    assert_head(&r, "HTTP/1.1 299 Unknown\r\nContent-Length: 99\r\n\r\n");
}

static void test_response_head_only(void **state)
{
    (void)state;
    /* HEAD keeps the Content-Length of the GET it stands for */
    struct http1_response r = {.status = 200,
                               .minor_version = 1,
                               .keep_alive = true,
                               .head_only = true,
                               .content_length = 1234};

    assert_head(&r, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
}

static void test_response_until_close(void **state)
{
    (void)state;
    /* an event stream: no length, the close ends it, whatever keep_alive said */
    struct http1_response r = {.status = 200,
                               .minor_version = 1,
                               .keep_alive = true,
                               .content_type = "text/event-stream",
                               .content_length = 5,
                               .until_close = true};

    assert_head(&r, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    "Connection: close\r\n\r\n");
}

static void test_response_request_id_and_extra(void **state)
{
    (void)state;
    static const char extra[] = "Location: /x\r\nCache-Control: no-store\r\n";
    struct http1_response r = {.status = 301,
                               .minor_version = 1,
                               .keep_alive = false,
                               .date = DATE,
                               .server = "t",
                               .content_length = 0,
                               .request_id = "abc123XYZ",
                               .request_id_len = 6,
                               .extra = extra,
                               .extra_len = sizeof(extra) - 1};

    assert_head(&r, "HTTP/1.1 301 Moved Permanently\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Server: t\r\nContent-Length: 0\r\nConnection: close\r\n"
                    "X-Request-Id: abc123\r\nLocation: /x\r\nCache-Control: no-store\r\n\r\n");
}

static void test_response_large_length(void **state)
{
    (void)state;
    struct http1_response r = {
        .status = 200, .keep_alive = true, .minor_version = 1, .content_length = UINT64_MAX};

    assert_head(&r, "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n");
}

static void test_response_cap_too_small(void **state)
{
    (void)state;
    struct http1_response r = {.status = 500,
                               .minor_version = 1,
                               .date = DATE,
                               .server = "trireme",
                               .content_type = "text/plain",
                               .content_length = 42,
                               .request_id = "rid",
                               .request_id_len = 3};
    char out[512];
    size_t need = http1_response_head(out, sizeof(out), &r);

    assert_true(need > 0);
    for (size_t cap = 0; cap < need; cap++) {
        char small[512];
        assert_int_equal(http1_response_head(small, cap, &r), 0);
    }
    assert_int_equal(http1_response_head(out, need, &r), need);
}

static void test_response_bad_status(void **state)
{
    (void)state;
    struct http1_response r = {.status = 42};
    char out[256];

    assert_int_equal(http1_response_head(out, sizeof(out), &r), 0);
    r.status = 1000;
    assert_int_equal(http1_response_head(out, sizeof(out), &r), 0);
}

static void test_reason_phrases(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *text;
    } want[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(http1_reason(want[i].code), want[i].text);
    assert_string_equal(http1_reason(299), "Unknown");
    assert_string_equal(http1_reason(0), "Unknown");
    assert_string_equal(http1_reason(-1), "Unknown");
    assert_string_equal(http1_reason(99999), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* valid requests */
        cmocka_unit_test(test_get_simple),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_post_chunked),
        cmocka_unit_test(test_te_case_insensitive),
        cmocka_unit_test(test_te_empty_elements_ignored),
        cmocka_unit_test(test_head_request),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_http10_default_close),
        cmocka_unit_test(test_http11_connection_close),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_options_star),
        cmocka_unit_test(test_query_split),
        cmocka_unit_test(test_ows_stripping),
        cmocka_unit_test(test_obs_text_in_value),
        cmocka_unit_test(test_duplicate_identical_content_length),
        cmocka_unit_test(test_content_length_zero_and_leading_zeros),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_pipelined_bytes_not_in_head),
        cmocka_unit_test(test_methods_are_tokens),
        cmocka_unit_test(test_incomplete_then_complete),
        cmocka_unit_test(test_error_repeats),
        cmocka_unit_test(test_null_limits_use_defaults),
        cmocka_unit_test(test_host_forms_accepted),
        cmocka_unit_test(test_cl_at_max_body),
        /* rejections: line endings and request line */
        cmocka_unit_test(test_bare_lf_request_line),
        cmocka_unit_test(test_bare_lf_header),
        cmocka_unit_test(test_bare_lf_final),
        cmocka_unit_test(test_bare_lf_leading),
        cmocka_unit_test(test_bare_cr_request_line),
        cmocka_unit_test(test_bare_cr_header_value),
        cmocka_unit_test(test_bare_cr_final),
        cmocka_unit_test(test_too_many_leading_empty_lines),
        cmocka_unit_test(test_version_lowercase),
        cmocka_unit_test(test_version_garbage),
        cmocka_unit_test(test_version_short),
        cmocka_unit_test(test_version_two_digit_major),
        cmocka_unit_test(test_version_missing),
        cmocka_unit_test(test_target_missing),
        cmocka_unit_test(test_version_2_0),
        cmocka_unit_test(test_version_1_2),
        cmocka_unit_test(test_version_0_9),
        cmocka_unit_test(test_double_space_before_target),
        cmocka_unit_test(test_double_space_before_version),
        cmocka_unit_test(test_trailing_space_after_version),
        cmocka_unit_test(test_tab_separator),
        cmocka_unit_test(test_leading_space_request_line),
        cmocka_unit_test(test_method_invalid_char),
        cmocka_unit_test(test_target_control_char),
        cmocka_unit_test(test_target_del),
        cmocka_unit_test(test_target_high_byte),
        cmocka_unit_test(test_target_not_origin_form),
        cmocka_unit_test(test_target_star_not_options),
        cmocka_unit_test(test_target_authority_form),
        cmocka_unit_test(test_target_absolute_no_host),
        cmocka_unit_test(test_target_userinfo),
        cmocka_unit_test(test_target_other_scheme),
        cmocka_unit_test(test_nul_in_request_line),
        /* rejections: header fields */
        cmocka_unit_test(test_whitespace_before_colon),
        cmocka_unit_test(test_tab_before_colon),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_obs_fold_tab),
        cmocka_unit_test(test_whitespace_after_request_line),
        cmocka_unit_test(test_empty_header_name),
        cmocka_unit_test(test_header_without_colon),
        cmocka_unit_test(test_header_name_invalid_char),
        cmocka_unit_test(test_header_value_control_char),
        cmocka_unit_test(test_header_value_del),
        cmocka_unit_test(test_header_value_escape),
        cmocka_unit_test(test_header_value_nul),
        /* rejections: framing and Host */
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_cl_not_digits),
        cmocka_unit_test(test_cl_plus_sign),
        cmocka_unit_test(test_cl_minus_sign),
        cmocka_unit_test(test_cl_inner_space),
        cmocka_unit_test(test_cl_hex),
        cmocka_unit_test(test_cl_empty),
        cmocka_unit_test(test_cl_overflow),
        cmocka_unit_test(test_cl_trailing_comma),
        cmocka_unit_test(test_cl_empty_element),
        cmocka_unit_test(test_cl_differing_fields),
        cmocka_unit_test(test_cl_differing_list),
        cmocka_unit_test(test_cl_over_max_body),
        cmocka_unit_test(test_cl_huge),
        cmocka_unit_test(test_te_gzip_chunked),
        cmocka_unit_test(test_te_split_fields_gzip_chunked),
        cmocka_unit_test(test_te_chunked_gzip),
        cmocka_unit_test(test_te_identity),
        cmocka_unit_test(test_te_gzip_only),
        cmocka_unit_test(test_te_chunked_twice),
        cmocka_unit_test(test_te_chunked_two_fields),
        cmocka_unit_test(test_te_empty),
        cmocka_unit_test(test_te_near_miss),
        cmocka_unit_test(test_te_http10),
        cmocka_unit_test(test_host_missing),
        cmocka_unit_test(test_host_twice),
        cmocka_unit_test(test_host_twice_http10),
        cmocka_unit_test(test_host_invalid_space),
        cmocka_unit_test(test_host_invalid_slash),
        /* limits */
        cmocka_unit_test(test_uri_too_long),
        cmocka_unit_test(test_uri_too_long_before_line_end),
        cmocka_unit_test(test_uri_default_limit),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_head_too_large_incomplete),
        cmocka_unit_test(test_head_default_limit),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_headers_cap_smaller_than_limit),
        /* every split point */
        cmocka_unit_test(test_splits_valid_requests),
        cmocka_unit_test(test_splits_rejected_requests),
        /* chunked */
        cmocka_unit_test(test_chunked_simple),
        cmocka_unit_test(test_chunked_multi_hex),
        cmocka_unit_test(test_chunked_extensions),
        cmocka_unit_test(test_chunked_trailers_dropped),
        cmocka_unit_test(test_chunked_stops_at_end),
        cmocka_unit_test(test_chunked_incomplete),
        cmocka_unit_test(test_chunked_done_is_sticky),
        cmocka_unit_test(test_chunked_in_place),
        cmocka_unit_test(test_chunked_sixteen_digits),
        cmocka_unit_test(test_chunked_max_body),
        cmocka_unit_test(test_chunked_size_not_hex),
        cmocka_unit_test(test_chunked_size_missing),
        cmocka_unit_test(test_chunked_size_sign),
        cmocka_unit_test(test_chunked_size_0x),
        cmocka_unit_test(test_chunked_size_17_digits),
        cmocka_unit_test(test_chunked_size_overflow),
        cmocka_unit_test(test_chunked_bare_lf_after_size),
        cmocka_unit_test(test_chunked_bare_cr_after_size),
        cmocka_unit_test(test_chunked_trailing_space),
        cmocka_unit_test(test_chunked_data_too_long),
        cmocka_unit_test(test_chunked_data_bare_lf),
        cmocka_unit_test(test_chunked_data_bare_cr),
        cmocka_unit_test(test_chunked_ext_no_name),
        cmocka_unit_test(test_chunked_ext_space_in_name),
        cmocka_unit_test(test_chunked_ext_control),
        cmocka_unit_test(test_chunked_ext_unterminated_quote),
        cmocka_unit_test(test_chunked_ext_bare_lf),
        cmocka_unit_test(test_chunked_trailer_obs_fold),
        cmocka_unit_test(test_chunked_trailer_no_colon),
        cmocka_unit_test(test_chunked_trailer_space_before_colon),
        cmocka_unit_test(test_chunked_trailer_control),
        cmocka_unit_test(test_chunked_trailer_bare_lf),
        cmocka_unit_test(test_chunked_final_bare_lf),
        cmocka_unit_test(test_chunked_final_bare_cr),
        cmocka_unit_test(test_chunked_ext_too_long),
        cmocka_unit_test(test_chunked_trailers_too_long),
        /* dates and responses */
        cmocka_unit_test(test_date_known),
        cmocka_unit_test(test_date_leap_years),
        cmocka_unit_test(test_date_clamped),
        cmocka_unit_test(test_date_matches_gmtime),
        cmocka_unit_test(test_response_basic),
        cmocka_unit_test(test_response_close),
        cmocka_unit_test(test_response_http10_keep_alive),
        cmocka_unit_test(test_response_no_content_length),
        cmocka_unit_test(test_response_head_only),
        cmocka_unit_test(test_response_until_close),
        cmocka_unit_test(test_response_request_id_and_extra),
        cmocka_unit_test(test_response_large_length),
        cmocka_unit_test(test_response_cap_too_small),
        cmocka_unit_test(test_response_bad_status),
        cmocka_unit_test(test_reason_phrases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
