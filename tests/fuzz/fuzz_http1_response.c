/*
 * fuzz_http1_response.c - libFuzzer target for proto/http1_response.c and
 * proto/http_url.c.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_http1_response.c proto/http1.c proto/http1_response.c \
 *       proto/http_url.c -o /tmp/fuzz_http1_response
 *   /tmp/fuzz_http1_response tests/fuzz/corpus/http1_response/
 *
 * Input: one control byte (bit 0: the request was HEAD; bits 1-4: split
 * step), then the bytes a server sent. Checked, with abort() on failure:
 *   - the head parsed in one call and from growing prefixes (each in a
 *     fresh heap copy, so reads past len are ASan errors) agree exactly;
 *   - on success header pointers lie inside the head, the status is
 *     100..999 and the framing is consistent; on failure error is set;
 *   - http_url_parse on the same bytes never reads outside them, and on
 *     success host and target lie inside them (or target is "/").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1_response.h"
#include "proto/http_url.h"

#define NHDR    16
#define MAXHEAD 4096u

static int parse_once(const uint8_t *d, size_t n, bool head, struct http1_resp *r,
                      struct http1_header *h)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, d, n);
    struct http1_resp_parser p;
    http1_resp_parser_init(&p);
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->headers_cap = NHDR;
    int ret = http1_parse_response(&p, copy, n, MAXHEAD, head, r);
    if (ret == HTTP1_OK) {
        for (uint32_t i = 0; i < r->num_headers; i++) {
            const char *nm = h[i].name, *v = h[i].value;
            if (nm < copy || nm + h[i].name_len > copy + r->head_len || v < copy ||
                v + h[i].value_len > copy + r->head_len)
                abort();
        }
        if (r->status < 100 || r->status > 999 || r->head_len > n)
            abort();
        if (r->body == HTTP1_RESP_CLOSE && r->keep_alive)
            abort();
    } else if (ret != HTTP1_INCOMPLETE && !r->error) {
        abort();
    }
    free(copy);
    return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool head = data[0] & 1;
    size_t step = ((data[0] >> 1) & 15) + 1;
    data++;
    size--;
    struct http1_header h1[NHDR], h2[NHDR];
    struct http1_resp a, b;
    int ra = parse_once(data, size, head, &a, h1);

    /* growing prefixes through one parser state */
    struct http1_resp_parser p;
    http1_resp_parser_init(&p);
    memset(&b, 0, sizeof(b));
    b.headers = h2;
    b.headers_cap = NHDR;
    int rb = HTTP1_INCOMPLETE;
    for (size_t n = 0; rb == HTTP1_INCOMPLETE;) {
        n = n + step > size ? size : n + step;
        char *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        rb = http1_parse_response(&p, copy, n, MAXHEAD, head, &b);
        free(copy);
        if (n == size)
            break;
    }
    if (ra != rb)
        abort();
    if (ra == HTTP1_OK &&
        (a.status != b.status || a.head_len != b.head_len || a.num_headers != b.num_headers ||
         a.body != b.body || a.keep_alive != b.keep_alive || a.content_length != b.content_length))
        abort();

    char *u = malloc(size ? size : 1);
    memcpy(u, data, size);
    struct http_url url;
    const char *err;
    if (http_url_parse(u, size, &url, &err) == 0) {
        if (url.host < u || url.host + url.host_len > u + size || !url.host_len)
            abort();
        bool inside = url.target >= u && url.target + url.target_len <= u + size;
        if (!inside && (url.target_len != 1 || url.target[0] != '/'))
            abort();
    }
    free(u);
    return 0;
}
