/*
 * job_input.c - job validation shared by POST /v1/jobs and `trireme enqueue`.
 */
#include "modules/jobs/job_input.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel/config.h"
#include "modules/kinds/kind.h"
#include "modules/kinds/kinds_file.h"
#include "proto/rfc3339.h"

static int fail(const char **field, const char *f, char *msg, size_t cap, const char *m)
{
    *field = f;
    snprintf(msg, cap, "%s", m);
    return -1;
}

static int name_field(json_t *in, json_t *out, const char *key, bool required, const char **field,
                      char *msg, size_t cap)
{
    json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v)) {
        if (required)
            return fail(field, key, msg, cap, "is required");
        return 0;
    }
    if (!json_is_string(v))
        return fail(field, key, msg, cap, "must be a string");
    size_t n = json_string_length(v);
    if (n == 0 || n > JOB_NAME_MAX) {
        snprintf(msg, cap, "must be 1 to %d characters", JOB_NAME_MAX);
        *field = key;
        return -1;
    }
    json_object_set(out, key, v);
    return 0;
}

/* Seconds as a number, or a duration string; -1 when invalid, and when the
 * milliseconds would not fit (never an overflow: callers then compare
 * against their named maximum). */
static int64_t duration_ms(json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        return s < 0 || s > INT64_MAX / 1000 ? -1 : (int64_t)s * 1000;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d < 0 || !isfinite(d) || d > 9e12 ? -1 : (int64_t)(d * 1000);
    }
    if (json_is_string(v))
        return config_parse_duration_ms(json_string_value(v));
    return -1;
}

static int int_field(json_t *in, json_t *out, const char *key, long long lo, long long hi,
                     const char **field, char *msg, size_t cap)
{
    json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, cap, "must be an integer from %lld to %lld", lo, hi);
        *field = key;
        return -1;
    }
    json_object_set(out, key, v);
    return 0;
}

json_t *job_input_normalize(json_t *in, const char **field, char *msg, size_t cap)
{
    if (!json_is_object(in)) {
        fail(field, "job", msg, cap, "must be a JSON object");
        return NULL;
    }
    static const char *const known[] = {"kind",     "queue",        "payload", "run_at",    "delay",
                                        "priority", "max_attempts", "timeout", "unique_key"};
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            *field = *key ? key : "\"\""; /* an empty key still names itself */
            snprintf(msg, cap,
                     "is not a job field (kind, queue, payload, run_at, delay, "
                     "priority, max_attempts, timeout, unique_key)");
            return NULL;
        }
    }
    json_t *out = json_object();
    if (name_field(in, out, "kind", true, field, msg, cap) ||
        name_field(in, out, "queue", false, field, msg, cap) ||
        name_field(in, out, "unique_key", false, field, msg, cap) ||
        int_field(in, out, "priority", -32768, 32767, field, msg, cap) ||
        int_field(in, out, "max_attempts", 1, JOB_MAX_ATTEMPTS, field, msg, cap))
        goto bad;
    json_t *kind = json_object_get(out, "kind");
    const struct job_kind *k = job_kind_find(json_string_value(kind), json_string_length(kind));
    if (!k) {
        char known_kinds[1024];
        size_t n = 0;
        known_kinds[0] = 0;
        for (unsigned i = 0; i < job_kinds_count() && n < sizeof(known_kinds); i++)
            n += (size_t)snprintf(known_kinds + n, sizeof(known_kinds) - n, "%s%s", i ? ", " : "",
                                  job_kind_at(i)->name);
        *field = "kind";
        snprintf(msg, cap, "is not a known job kind (known: %s)", known_kinds);
        goto bad;
    }
    if (job_kind_is_pull(k)) /* stored apart: the built-in worker never claims it */
        json_object_set_new(out, "pull", json_true());
    json_t *payload = json_object_get(in, "payload");
    if (payload && !json_is_null(payload))
        json_object_set(out, "payload", payload);
    else
        payload = NULL;
    if (k->validate) {
        json_t *empty = payload ? NULL : json_object();
        int bad_payload = k->validate(payload ? payload : empty, msg, cap);
        json_decref(empty);
        if (bad_payload) {
            *field = "payload";
            goto bad;
        }
    }
    json_t *run_at = json_object_get(in, "run_at"), *delay = json_object_get(in, "delay");
    if (run_at && !json_is_null(run_at) && delay && !json_is_null(delay)) {
        fail(field, "run_at", msg, cap, "cannot be combined with delay");
        goto bad;
    }
    if (run_at && !json_is_null(run_at)) {
        int64_t ms;
        if (!json_is_string(run_at) ||
            rfc3339_parse_ms(json_string_value(run_at), json_string_length(run_at), &ms)) {
            fail(field, "run_at", msg, cap,
                 "must be an RFC 3339 timestamp such as 2026-11-22T07:00:00Z");
            goto bad;
        }
        json_object_set_new(out, "run_at_ms", json_integer(ms));
    }
    if (delay && !json_is_null(delay)) {
        int64_t ms = duration_ms(delay);
        if (ms < 0) {
            fail(field, "delay", msg, cap, "must be seconds (a number) or a duration like \"10s\"");
            goto bad;
        }
        if (ms > JOB_DELAY_MAX_MS) {
            fail(field, "delay", msg, cap, "must be at most 10 years");
            goto bad;
        }
        json_object_set_new(out, "delay_ms", json_integer(ms));
    }
    json_t *timeout = json_object_get(in, "timeout");
    if (timeout && !json_is_null(timeout)) {
        int64_t ms = duration_ms(timeout);
        if (ms <= 0 || ms > INT32_MAX) {
            fail(field, "timeout", msg, cap,
                 "must be positive seconds or a duration like \"30s\" (at most 24 days)");
            goto bad;
        }
        json_object_set_new(out, "timeout_ms", json_integer(ms));
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}
