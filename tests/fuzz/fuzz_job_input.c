/*
 * fuzz_job_input.c - libFuzzer target for modules/jobs/job_input.c, what
 * every POST /v1/jobs, `trireme enqueue` and schedule job passes through
 * before it joins a shared statement (built by tests/fuzz/run.sh against
 * the instrumented kernel and modules libraries).
 *
 * Input: any bytes, read as JSON; a document that does not parse is done.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - a refusal names a field and a printable message shorter than the
 *     buffer;
 *   - an accepted job is an object whose kind is registered, whose names
 *     fit JOB_NAME_MAX, whose numbers lie in their documented ranges
 *     (delay within JOB_DELAY_MAX_MS, max_attempts 1..JOB_MAX_ATTEMPTS,
 *     a positive timeout), and which the Redis backend can turn into its
 *     script arguments (eight per job).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/jobs/job_input.h"
#include "modules/kinds/kind.h"
#include "modules/rqueue/rqueue.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_name(json_t *o, const char *key, int required)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        CHECK(!required);
        return;
    }
    CHECK(json_is_string(v));
    CHECK(json_string_length(v) >= 1 && json_string_length(v) <= JOB_NAME_MAX);
}

static void check_range(json_t *o, const char *key, json_int_t lo, json_int_t hi)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return;
    CHECK(json_is_integer(v));
    CHECK(json_integer_value(v) >= lo && json_integer_value(v) <= hi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!in)
        return 0;
    const char *field = NULL;
    char msg[300];
    msg[0] = 0;
    json_t *out = job_input_normalize(in, &field, msg, sizeof(msg));
    if (!out) {
        CHECK(field && *field);
        size_t n = strnlen(msg, sizeof(msg));
        CHECK(n > 0 && n < sizeof(msg));
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)msg[i] >= 0x20);
    } else {
        CHECK(json_is_object(out));
        check_name(out, "kind", 1);
        const char *kind = json_string_value(json_object_get(out, "kind"));
        CHECK(job_kind_find(kind, strlen(kind)) != NULL);
        check_name(out, "queue", 0);
        check_name(out, "unique_key", 0);
        check_range(out, "delay_ms", 0, JOB_DELAY_MAX_MS);
        check_range(out, "max_attempts", 1, JOB_MAX_ATTEMPTS);
        check_range(out, "timeout_ms", 1, INT64_MAX);
        struct rq_args a = {0};
        rq_enqueue_job_args(&a, out);
        CHECK(a.n == 8);
        rq_args_free(&a);
        json_decref(out);
    }
    json_decref(in);
    return 0;
}
