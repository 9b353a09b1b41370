/*
 * fuzz_sched_input.c - libFuzzer target for modules/schedules/sched_input.c,
 * what POST/PATCH /v1/schedules, `trireme schedules` and the --schedules
 * file pass through (built by tests/fuzz/run.sh against the instrumented
 * kernel and modules libraries; zones from /usr/share/zoneinfo).
 *
 * Input: one byte (bit 0: a partial update, as PATCH), then JSON.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - a refusal names a field with a printable, bounded message;
 *   - an accepted full schedule has a name, a cron expression of at most
 *     SCHED_CRON_MAX characters that proto/cron parses, a kind and a zone;
 *     every duration it holds is a non-negative integer, the catch-up
 *     window at most SCHED_CATCHUP_MAX_MS.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/schedules/schedules.h"
#include "proto/cron.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool partial = data[0] & 1;
    json_error_t je;
    json_t *in = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, &je);
    if (!in)
        return 0;
    const char *field = NULL;
    char msg[300];
    msg[0] = 0;
    json_t *out = sched_input_normalize(in, partial, "/usr/share/zoneinfo", &field, msg,
                                        sizeof(msg));
    if (!out) {
        CHECK(field && *field);
        size_t n = strnlen(msg, sizeof(msg));
        CHECK(n > 0 && n < sizeof(msg));
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)msg[i] >= 0x20);
    } else {
        CHECK(json_is_object(out));
        json_t *cron = json_object_get(out, "cron");
        if (!partial) {
            CHECK(json_is_string(json_object_get(out, "name")));
            CHECK(json_is_string(json_object_get(out, "kind")));
            CHECK(json_is_string(cron));
        }
        if (cron) {
            CHECK(json_is_string(cron) && json_string_length(cron) <= SCHED_CRON_MAX);
            struct cron c;
            char err[CRON_ERR_LEN];
            CHECK(cron_parse(json_string_value(cron), &c, err, sizeof(err)) == 0);
        }
        const char *key;
        json_t *v;
        json_object_foreach(out, key, v)
        {
            size_t k = strlen(key);
            if (k > 3 && !strcmp(key + k - 3, "_ms") && !json_is_null(v))
                CHECK(json_is_integer(v) && json_integer_value(v) >= 0);
        }
        json_t *cw = json_object_get(out, "catchup_window_ms");
        if (cw)
            CHECK(json_integer_value(cw) <= SCHED_CATCHUP_MAX_MS);
        json_decref(out);
    }
    json_decref(in);
    return 0;
}
