/*
 * fuzz_http1.c - libFuzzer target for proto/http1.c.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_http1.c proto/http1.c -o /tmp/fuzz_http1
 *   /tmp/fuzz_http1 tests/fuzz/corpus/http1/      (or: sh tests/fuzz/run.sh 60)
 *
 * Input: one control byte, then the bytes a client sent. The control byte
 * picks the split step (low 5 bits) and a set of limits (high 3 bits).
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - the head parsed in one call and parsed from growing prefixes (moving
 *     between two buffers, bytes past len poisoned for ASan) agree exactly;
 *   - on success every pointer lies inside the head and the framing fields
 *     are consistent; on failure error is set;
 *   - a chunked body decodes identically in one call, in pieces, and in
 *     place; produced <= consumed <= available, total <= max_body;
 *   - http1_find_header, http1_response_head and http1_format_date hold
 *     their contracts on values taken from the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#endif
#endif
#ifndef POISON
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NHDR 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static ptrdiff_t off(const char *base, const char *p)
{
    return p == NULL ? -1 : p - base;
}

static bool inside(const char *base, uint32_t len, const char *p, uint32_t n)
{
    return p != NULL && p >= base && p + n <= base + len;
}

static void same_head(int rc_a, const char *a, const struct http1_request *ra, int rc_b,
                      const char *b, const struct http1_request *rb)
{
    CHECK(rc_a == rc_b);
    if (rc_a != HTTP1_OK && rc_a != HTTP1_INCOMPLETE) {
        CHECK(ra->error != NULL && rb->error != NULL);
        CHECK(strcmp(ra->error, rb->error) == 0);
        return;
    }
    if (rc_a != HTTP1_OK)
        return;
    CHECK(ra->head_len == rb->head_len);
    CHECK(off(a, ra->method) == off(b, rb->method) && ra->method_len == rb->method_len);
    CHECK(off(a, ra->target) == off(b, rb->target) && ra->target_len == rb->target_len);
    CHECK(off(a, ra->path) == off(b, rb->path) && ra->path_len == rb->path_len);
    CHECK(off(a, ra->query) == off(b, rb->query) && ra->query_len == rb->query_len);
    CHECK(ra->minor_version == rb->minor_version);
    CHECK(ra->keep_alive == rb->keep_alive);
    CHECK(ra->expect_continue == rb->expect_continue);
    CHECK(ra->has_host == rb->has_host);
    CHECK(ra->body_kind == rb->body_kind);
    CHECK(ra->content_length == rb->content_length);
    CHECK(ra->num_headers == rb->num_headers);
    for (uint32_t i = 0; i < ra->num_headers; i++) {
        CHECK(off(a, ra->headers[i].name) == off(b, rb->headers[i].name));
        CHECK(off(a, ra->headers[i].value) == off(b, rb->headers[i].value));
        CHECK(ra->headers[i].name_len == rb->headers[i].name_len);
        CHECK(ra->headers[i].value_len == rb->headers[i].value_len);
    }
}

static void check_request(const char *buf, size_t len, const struct http1_limits *lim,
                          const struct http1_request *r)
{
    uint32_t h = r->head_len;

    CHECK(h > 0 && h <= len && h <= lim->max_head);
    CHECK(h >= 4 && memcmp(buf + h - 4, "\r\n\r\n", 4) == 0);
    CHECK(inside(buf, h, r->method, r->method_len) && r->method_len > 0);
    CHECK(inside(buf, h, r->target, r->target_len) && r->target_len > 0);
    CHECK(r->target_len <= lim->max_uri);
    CHECK(r->path == r->target && r->path_len <= r->target_len);
    if (r->query != NULL) {
        CHECK(r->query == r->path + r->path_len + 1 && r->query[-1] == '?');
        CHECK(r->path_len + 1 + r->query_len == r->target_len);
    } else {
        CHECK(r->path_len == r->target_len && r->query_len == 0);
        CHECK(memchr(r->target, '?', r->target_len) == NULL);
    }
    CHECK(r->minor_version <= 1);
    CHECK(r->num_headers <= lim->max_headers && r->num_headers <= NHDR);
    CHECK(r->minor_version == 0 || r->has_host);
    if (r->body_kind == HTTP1_BODY_CHUNKED)
        CHECK(r->minor_version == 1);
    if (r->body_kind == HTTP1_BODY_LENGTH)
        CHECK(r->content_length <= lim->max_body);
    else
        CHECK(r->content_length == 0);
    if (r->minor_version == 0)
        CHECK(!r->expect_continue);
    CHECK(r->error == NULL);

    for (uint32_t i = 0; i < r->num_headers; i++) {
        const struct http1_header *f = &r->headers[i], *g;
        char name[64];

        CHECK(inside(buf, h, f->name, f->name_len) && f->name_len > 0);
        CHECK(inside(buf, h, f->value, f->value_len));
        CHECK(memchr(f->name, ':', f->name_len) == NULL);
        if (f->value_len > 0) {
            CHECK(f->value[0] != ' ' && f->value[0] != '\t');
            CHECK(f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
        }
        for (uint32_t k = 0; k < f->value_len; k++)
            CHECK(f->value[k] != '\r' && f->value[k] != '\n' && f->value[k] != '\0');
        if (f->name_len < sizeof(name)) {
            memcpy(name, f->name, f->name_len);
            name[f->name_len] = '\0';
            g = http1_find_header(r, name);
            CHECK(g != NULL && g <= f && g->name_len == f->name_len);
        }
    }
}

/* The chunked body at src[0..n): one call, pieces of `step`, in place. */
static void check_chunked(const char *src, size_t n, size_t step, uint64_t max_body)
{
    struct http1_chunked d;
    size_t c1, p1, c, p, cons, prod;
    const char *e1 = NULL, *e = NULL;
    char *whole = malloc(n + 1), *out = malloc(n + 1), *inplace = malloc(n + 1);
    int rc1, rc;

    CHECK(whole && out && inplace);
    http1_chunked_init(&d);
    rc1 = http1_chunked_decode(&d, src, n, whole, &c1, &p1, max_body, &e1);
    CHECK(rc1 == HTTP1_OK || rc1 == HTTP1_INCOMPLETE || rc1 == HTTP1_E_BAD_REQUEST ||
          rc1 == HTTP1_E_BODY_LARGE);
    CHECK(p1 <= c1 && c1 <= n);
    CHECK(d.total == p1 && d.total <= max_body);
    if (rc1 == HTTP1_INCOMPLETE)
        CHECK(c1 == n);
    if (rc1 < HTTP1_INCOMPLETE)
        CHECK(e1 != NULL);

    /* pieces */
    http1_chunked_init(&d);
    cons = prod = 0;
    rc = HTTP1_INCOMPLETE;
    while (rc == HTTP1_INCOMPLETE && cons < n) {
        size_t k = n - cons < step ? n - cons : step;
        rc = http1_chunked_decode(&d, src + cons, k, out + prod, &c, &p, max_body, &e);
        CHECK(p <= c && c <= k);
        if (rc == HTTP1_INCOMPLETE)
            CHECK(c == k);
        cons += c;
        prod += p;
    }
    CHECK(rc == rc1 && cons == c1 && prod == p1);
    CHECK(memcmp(out, whole, prod) == 0);
    if (rc < HTTP1_INCOMPLETE)
        CHECK(strcmp(e, e1) == 0);

    /* in place, also in pieces: writes never overtake reads */
    memcpy(inplace, src, n);
    http1_chunked_init(&d);
    cons = prod = 0;
    rc = HTTP1_INCOMPLETE;
    while (rc == HTTP1_INCOMPLETE && cons < n) {
        size_t k = n - cons < step * 3 ? n - cons : step * 3;
        rc = http1_chunked_decode(&d, inplace + cons, k, inplace + prod, &c, &p, max_body, NULL);
        cons += c;
        prod += p;
    }
    CHECK(rc == rc1 && cons == c1 && prod == p1);
    CHECK(memcmp(inplace, whole, prod) == 0);

    free(whole);
    free(out);
    free(inplace);
}

static void check_response(const uint8_t *data, size_t size, const struct http1_request *r)
{
    char date[HTTP1_DATE_LEN + 1], out[512];
    struct http1_response resp;
    int64_t t = 0;
    size_t n, cap;

    memcpy(&t, data, size < sizeof(t) ? size : sizeof(t));
    http1_format_date(t, date);
    CHECK(strlen(date) == HTTP1_DATE_LEN && memcmp(date + 25, " GMT", 4) == 0);
    CHECK(date[3] == ',' && date[7] == ' ' && date[19] == ':' && date[22] == ':');

    memset(&resp, 0, sizeof(resp));
    resp.status = 100 + (int)(size % 500);
    resp.minor_version = r->minor_version;
    resp.keep_alive = r->keep_alive;
    resp.date = date;
    resp.server = "trireme";
    resp.content_length = (uint64_t)t;
    resp.request_id = r->target;
    resp.request_id_len = r->target_len < 128 ? r->target_len : 128;
    cap = size % sizeof(out);
    n = http1_response_head(out, cap, &resp);
    CHECK(n <= cap);
    if (n != 0) {
        CHECK(n >= 4 && memcmp(out, "HTTP/1.1 ", 9) == 0);
        CHECK(memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
        CHECK(http1_response_head(out, n - 1, &resp) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http1_limits profiles[8] = {
        {HTTP1_DEFAULT_MAX_HEAD, HTTP1_DEFAULT_MAX_URI, NHDR, HTTP1_DEFAULT_MAX_BODY},
        {256, 32, 4, 64},
        {64, 16, 2, 0},
        {1024, 512, 16, 16},
        {HTTP1_DEFAULT_MAX_HEAD, 8, NHDR, 1},
        {100, 100, 100, 100},
        {32, 1000, 1, 1000},
        {HTTP1_DEFAULT_MAX_HEAD, HTTP1_DEFAULT_MAX_URI, 8, UINT64_MAX},
    };
    struct http1_header h1[NHDR], h2[NHDR];
    struct http1_request r1, r2;
    struct http1_parser ps;
    const struct http1_limits *lim;
    size_t step, k, have, prev;
    char *whole, *a, *b;
    int rc1, rc2 = HTTP1_INCOMPLETE;

    if (size < 1)
        return 0;
    step = 1 + (data[0] & 31);
    lim = &profiles[data[0] >> 5];
    data++;
    size--;

    /* one shot, in a buffer of exactly the input's size */
    whole = malloc(size + 1);
    CHECK(whole != NULL);
    memcpy(whole, data, size);
    http1_parser_init(&ps);
    memset(&r1, 0, sizeof(r1));
    r1.headers = h1;
    r1.headers_cap = NHDR;
    rc1 = http1_parse_head(&ps, whole, size, lim, &r1);
    CHECK(rc1 == HTTP1_OK || rc1 == HTTP1_INCOMPLETE || rc1 == HTTP1_E_BAD_REQUEST ||
          rc1 == HTTP1_E_BODY_LARGE || rc1 == HTTP1_E_URI_LONG || rc1 == HTTP1_E_HEADERS_LARGE ||
          rc1 == HTTP1_E_NOT_IMPL || rc1 == HTTP1_E_VERSION);
    if (rc1 == HTTP1_OK)
        check_request(whole, size, lim, &r1);
    else if (rc1 != HTTP1_INCOMPLETE)
        CHECK(r1.error != NULL && r1.error[0] != '\0');
    if (rc1 == HTTP1_INCOMPLETE)
        CHECK(size <= lim->max_head);

    /*
     * Growing prefixes, alternating between two buffers so the request
     * moves between calls. Bytes not yet "received" are poisoned: reading
     * past len is an ASan report. Filling both buffers as we go keeps the
     * harness linear, like the parser must be.
     */
    a = malloc(size + 1);
    b = malloc(size + 1);
    CHECK(a != NULL && b != NULL);
    POISON(a, size + 1);
    POISON(b, size + 1);
    http1_parser_init(&ps);
    have = 0;
    for (unsigned call = 0; have < size || call == 0; call++) {
        char *cur = (call & 1) ? b : a;

        prev = have;
        k = have + step < size ? have + step : size;
        UNPOISON(a + have, k - have);
        UNPOISON(b + have, k - have);
        memcpy(a + have, data + have, k - have);
        memcpy(b + have, data + have, k - have);
        have = k;
        memset(&r2, 0, sizeof(r2));
        r2.headers = h2;
        r2.headers_cap = NHDR;
        rc2 = http1_parse_head(&ps, cur, have, lim, &r2);
        if (rc2 != HTTP1_INCOMPLETE) {
            same_head(rc1, whole, &r1, rc2, cur, &r2);
            if (rc2 == HTTP1_OK) /* the head ends in the bytes this call added */
                CHECK(r2.head_len > prev && r2.head_len <= have);
            break;
        }
        CHECK(ps.pos <= have && ps.scanned <= ps.pos);
        CHECK(have - ps.pos <= 1); /* nothing left unscanned but a CR */
    }
    if (rc2 == HTTP1_INCOMPLETE)
        CHECK(rc1 == HTTP1_INCOMPLETE);
    UNPOISON(a, size + 1);
    UNPOISON(b, size + 1);
    free(a);
    free(b);

    if (rc1 == HTTP1_OK && r1.body_kind == HTTP1_BODY_CHUNKED)
        check_chunked(whole + r1.head_len, size - r1.head_len, step, lim->max_body);
    else
        check_chunked(whole, size, step, lim->max_body); /* the input as a body */
    check_response(data, size, &r1);

    free(whole);
    return 0;
}
