/*
 * sched_input.c - validating a schedule, shared by /v1/schedules, the
 * `trireme schedules` CLI and --schedules files.
 *
 * Every check that can fail happens here, before any SQL runs, so a bad
 * schedule is refused with the field that is wrong and never half-written.
 * The job template is checked by the same code as POST /v1/jobs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/schedules/schedules.h"
#include "proto/cron.h"

static json_t *fail(const char **field, const char *f, char *msg, size_t cap, const char *m,
                    json_t *out)
{
    *field = f;
    snprintf(msg, cap, "%s", m);
    json_decref(out);
    return NULL;
}

bool sched_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > SCHED_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@' || c == '+'))
            return false;
    }
    return true;
}

/* Seconds as a number, or a duration string ("90s", "1h"); -1 when invalid. */
static int64_t duration_ms(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) < 0 || json_integer_value(v) > 9000000000000LL
                   ? -1
                   : json_integer_value(v) * 1000;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d < 0 || !isfinite(d) || d > 9e12 ? -1 : (int64_t)(d * 1000 + 0.5);
    }
    if (json_is_string(v))
        return config_parse_duration_ms(json_string_value(v));
    return -1;
}

static const char *const read_only[] = {"id",          "source",     "last_fire", "next_fire",
                                        "last_job_id", "created_at", "updated_at"};
static const char *const known[] = {"name",           "cron",    "every",   "timezone",
                                    "queue",          "kind",    "payload", "priority",
                                    "max_attempts",   "timeout", "enabled", "misfire",
                                    "catchup_window", "overlap", "jitter"};

static bool in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i]))
            return true;
    return false;
}

static bool present(json_t *in, const char *key)
{
    json_t *v = json_object_get(in, key);
    return v && !json_is_null(v);
}

json_t *sched_input_normalize(json_t *in, bool partial, const char *tzdir, const char **field,
                              char *msg, size_t cap)
{
    if (!json_is_object(in))
        return fail(field, "schedule", msg, cap, "must be a JSON object", NULL);
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val)
    {
        if (!in_list(key, known, sizeof(known) / sizeof(known[0])) &&
            !in_list(key, read_only, sizeof(read_only) / sizeof(read_only[0])))
            return fail(field, *key ? key : "\"\"", msg, cap,
                        "is not a schedule field (name, cron or every, timezone, queue, "
                        "kind, payload, priority, max_attempts, timeout, enabled, misfire, "
                        "catchup_window, overlap, jitter)",
                        NULL);
    }
    json_t *out = json_object();
    json_t *v = json_object_get(in, "name");
    if (present(in, "name")) {
        if (!json_is_string(v) || !sched_name_valid(json_string_value(v), json_string_length(v)))
            return fail(field, "name", msg, cap,
                        "must be 1 to 200 characters of A-Z a-z 0-9 . _ - : @ +", out);
        json_object_set(out, "name", v);
    } else if (!partial) {
        return fail(field, "name", msg, cap, "is required", out);
    }

    /* When: cron, or every (an interval, stored as "@every Ns"). */
    char expr[SCHED_CRON_MAX + 1], why[CRON_ERR_LEN];
    if (present(in, "cron") && present(in, "every"))
        return fail(field, "every", msg, cap, "cannot be combined with cron", out);
    if (present(in, "cron")) {
        v = json_object_get(in, "cron");
        if (!json_is_string(v))
            return fail(field, "cron", msg, cap, "must be a cron expression (a string)", out);
        if (json_string_length(v) > SCHED_CRON_MAX) {
            snprintf(msg, cap, "must be at most %d characters", SCHED_CRON_MAX);
            *field = "cron";
            json_decref(out);
            return NULL;
        }
        snprintf(expr, sizeof(expr), "%s", json_string_value(v));
        if (!expr[strspn(expr, " \t")]) /* given but empty: never "no change" */
            return fail(field, "cron", msg, cap,
                        "must be a cron expression such as \"*/5 * * * *\" (it is empty)", out);
    } else if (present(in, "every")) {
        int64_t ms = duration_ms(json_object_get(in, "every"));
        if (ms < 1000 || ms % 1000 || ms / 1000 > CRON_EVERY_MAX)
            return fail(field, "every", msg, cap,
                        "must be whole seconds (a number, or a duration like \"90s\"), at least 1",
                        out);
        snprintf(expr, sizeof(expr), "@every %llds", (long long)(ms / 1000));
    } else if (!partial) {
        return fail(field, "cron", msg, cap, "is required (or every)", out);
    } else {
        expr[0] = 0;
    }
    if (expr[0]) {
        struct cron c;
        if (cron_parse(expr, &c, why, sizeof(why)))
            return fail(field, present(in, "every") ? "every" : "cron", msg, cap, why, out);
        json_object_set_new(out, "cron", json_string(expr));
    }

    if (present(in, "timezone")) {
        v = json_object_get(in, "timezone");
        if (!json_is_string(v))
            return fail(field, "timezone", msg, cap, "must be an IANA time zone name", out);
        struct tz *z = xmalloc(sizeof(*z));
        char zerr[300];
        int bad = sched_zone_load(tzdir, json_string_value(v), z, zerr, sizeof(zerr));
        free(z);
        if (bad)
            return fail(field, "timezone", msg, cap, zerr, out);
        json_object_set(out, "timezone", v);
    }

    /* The job template, checked as POST /v1/jobs would check the job. */
    json_t *job = json_object();
    static const char *const tmpl[] = {"kind",     "queue",        "payload",
                                       "priority", "max_attempts", "timeout"};
    for (size_t i = 0; i < sizeof(tmpl) / sizeof(tmpl[0]); i++)
        if (json_object_get(in, tmpl[i]))
            json_object_set(job, tmpl[i], json_object_get(in, tmpl[i]));
    bool kind_given = present(in, "kind");
    if (!kind_given && !partial) {
        json_decref(job);
        return fail(field, "kind", msg, cap, "is required", out);
    }
    if (!kind_given) /* PATCH without kind: check the other fields on their own */
        json_object_set_new(job, "kind", json_string("noop"));
    json_t *nj = job_input_normalize(job, field, msg, cap);
    json_decref(job);
    if (!nj) {
        json_decref(out);
        return NULL;
    }
    const char *k2;
    json_object_foreach(nj, k2, val)
    {
        if (!strcmp(k2, "kind") && !kind_given)
            continue;
        json_object_set(out, k2, val);
    }
    json_decref(nj);
    if (json_object_get(in, "timeout") && json_is_null(json_object_get(in, "timeout")))
        json_object_set_new(out, "timeout_ms", json_null()); /* PATCH: clear it */
    if (json_object_get(in, "payload") && json_is_null(json_object_get(in, "payload")))
        json_object_set_new(out, "payload", json_object());

    if (present(in, "enabled")) {
        v = json_object_get(in, "enabled");
        if (!json_is_boolean(v))
            return fail(field, "enabled", msg, cap, "must be true or false", out);
        json_object_set(out, "enabled", v);
    }
    if (present(in, "misfire")) {
        v = json_object_get(in, "misfire");
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "skip") && strcmp(s, "fire_once") && strcmp(s, "fire_all")))
            return fail(field, "misfire", msg, cap, "must be skip, fire_once or fire_all", out);
        json_object_set(out, "misfire", v);
    }
    if (present(in, "overlap")) {
        v = json_object_get(in, "overlap");
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "allow") && strcmp(s, "skip_if_running")))
            return fail(field, "overlap", msg, cap, "must be allow or skip_if_running", out);
        json_object_set(out, "overlap", v);
    }
    if (present(in, "catchup_window")) {
        int64_t ms = duration_ms(json_object_get(in, "catchup_window"));
        if (ms < 0 || ms > SCHED_CATCHUP_MAX_MS)
            return fail(field, "catchup_window", msg, cap,
                        "must be seconds or a duration like \"1h\", at most 7 days", out);
        json_object_set_new(out, "catchup_window_ms", json_integer(ms));
    }
    if (present(in, "jitter")) {
        int64_t ms = duration_ms(json_object_get(in, "jitter"));
        if (ms < 0 || ms > SCHED_JITTER_MAX_MS)
            return fail(field, "jitter", msg, cap,
                        "must be seconds or a duration like \"500ms\", at most 1 hour", out);
        json_object_set_new(out, "jitter_ms", json_integer(ms));
    }
    return out;
}
