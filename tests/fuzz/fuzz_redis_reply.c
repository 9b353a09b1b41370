/*
 * fuzz_redis_reply.c - libFuzzer target for the Redis reply path: bytes a
 * server (or anything on that port) sends, through the ring client's
 * reader (kernel/redis_reader: hiredis' with an array budget) as it is fed, into modules/rqueue's
 * job view (what GET /v1/jobs/{id} and `trireme jobs` show on the Redis backend). Built by
 * tests/fuzz/run.sh against the instrumented kernel and modules libraries.
 *
 * Input: one byte (the split step, 1..32), then the bytes, fed to the
 * reader in pieces of that size the way recv completions arrive.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - the reader either yields replies or reports a protocol error, never
 *     more replies than the bytes could hold;
 *   - every reply that is an array gives NULL or a JSON object with an
 *     integer-or-string id, and its text dumps and loads back equal.
 */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel/redis_reader.h"
#include "modules/rqueue/rqueue.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void view(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    json_t *j = rq_job_json_reply(r);
    if (j) {
        CHECK(json_is_object(j));
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK(text);
        json_error_t je;
        json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        CHECK(back && json_equal(back, j));
        json_decref(back);
        free(text);
        json_decref(j);
    }
    for (size_t i = 0; i < r->elements; i++)
        view(r->element[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 32;
    data++, size--;
    redisReader *rd = redis_reader_new();
    CHECK(rd);
    size_t replies = 0;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < step ? size - off : step;
        if (redisReaderFeed(rd, (const char *)data + off, n) != REDIS_OK)
            break;
        off += n;
        void *reply;
        int rc;
        while ((rc = redisReaderGetReply(rd, &reply)) == REDIS_OK && reply) {
            replies++;
            CHECK(replies <= size);
            view(reply);
            freeReplyObject(reply);
        }
        if (rc != REDIS_OK)
            break;
    }
    redis_reader_free(rd);
    return 0;
}
