/*
 * fuzz_multipart.c - libFuzzer target for proto/multipart.c.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_multipart.c proto/multipart.c -o /tmp/fuzz_multipart
 *   /tmp/fuzz_multipart tests/fuzz/corpus/multipart/   (or: sh tests/fuzz/run.sh 60)
 *
 * Input: one control byte (low 5 bits: the piece size), then a line that is
 * a Content-Type value, then the body.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - multipart_boundary returns a valid boundary or says why not;
 *   - the body parsed in one piece and in pieces of the chosen size (each
 *     piece in its own exactly-sized allocation, so reading past it is an
 *     ASan report) gives the same events, the same part headers, the same
 *     body bytes and the same error;
 *   - consumed never exceeds the input; DATA pieces are non-empty; names
 *     are non-empty NUL-terminated strings within their limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/multipart.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A transcript of events: one letter per event, part headers and data
 * appended, so two runs compare with memcmp. */
struct log {
    char *p;
    size_t n, cap;
};

static void put(struct log *l, const void *s, size_t n)
{
    if (l->n + n > l->cap) {
        l->cap = (l->n + n) * 2 + 64;
        l->p = realloc(l->p, l->cap);
        CHECK(l->p != NULL);
    }
    memcpy(l->p + l->n, s, n);
    l->n += n;
}

static int run(const char *boundary, int blen, const uint8_t *body, size_t size, size_t step,
               struct log *l)
{
    struct multipart m;
    size_t pos = 0;
    int done = 0;

    multipart_init(&m, boundary, (size_t)blen);
    for (;;) {
        size_t k = size - pos < step ? size - pos : step, off = 0;
        char *piece = malloc(k ? k : 1);

        CHECK(piece != NULL);
        memcpy(piece, body + pos, k);
        for (;;) {
            size_t c = (size_t)-1;
            enum multipart_event ev = multipart_feed(&m, piece + off, k - off, &c);

            CHECK(c <= k - off);
            off += c;
            if (ev == MULTIPART_ERROR) {
                CHECK(m.error != NULL);
                put(l, "E", 1);
                put(l, m.error, strlen(m.error));
                free(piece);
                return -1;
            }
            if (ev == MULTIPART_AGAIN) {
                CHECK(off == k);
                break;
            }
            if (ev == MULTIPART_DONE) {
                CHECK(off == k);
                if (!done++) /* reported again for every later (epilogue) piece */
                    put(l, "D", 1);
                break;
            }
            if (ev == MULTIPART_PART) {
                size_t nl = strnlen(m.part.name, sizeof(m.part.name));
                CHECK(nl > 0 && nl <= MULTIPART_MAX_NAME);
                CHECK(strnlen(m.part.filename, sizeof(m.part.filename)) <= MULTIPART_MAX_FILENAME);
                CHECK(strnlen(m.part.content_type, sizeof(m.part.content_type)) <=
                      MULTIPART_MAX_CTYPE);
                put(l, "P", 1);
                put(l, &m.part, sizeof(m.part));
            } else if (ev == MULTIPART_DATA) {
                CHECK(m.ev_len > 0 && m.ev_data != NULL);
                put(l, m.ev_data, m.ev_len); /* data runs concatenate */
            } else {
                CHECK(ev == MULTIPART_PART_END);
                put(l, "]", 1);
            }
        }
        free(piece);
        pos += k;
        if (pos == size)
            break;
    }
    if (multipart_finish(&m) < 0) {
        CHECK(m.error != NULL);
        put(l, "F", 1);
        return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char b[MULTIPART_MAX_BOUNDARY + 1];
    const uint8_t *nl;
    struct log one = {0}, many = {0};
    size_t step, ctl;
    int blen, r1, r2;

    if (size < 1)
        return 0;
    step = 1 + (data[0] & 31);
    data++;
    size--;
    nl = memchr(data, '\n', size);
    ctl = nl ? (size_t)(nl - data) : size;
    blen = multipart_boundary((const char *)data, ctl, b, sizeof(b));
    CHECK(blen >= -1 && blen <= MULTIPART_MAX_BOUNDARY);
    if (blen <= 0)
        return 0;
    CHECK(strlen(b) == (size_t)blen && memchr(b, '\r', (size_t)blen) == NULL);
    data += ctl + 1;
    size -= ctl + 1 <= size ? ctl + 1 : size;

    r1 = run(b, blen, data, size, size ? size : 1, &one);
    r2 = run(b, blen, data, size, step, &many);
    CHECK(r1 == r2);
    CHECK(one.n == many.n && memcmp(one.p, many.p, one.n) == 0);
    free(one.p);
    free(many.p);
    return 0;
}
