/*
 * kind_exec_spec.c - an exec kind's fields in the --kinds file, checked
 * once at start: the program is found and executable, the working
 * directory exists, every limit is in range. What can be resolved at load
 * is (argv[0] against PATH, the inherited environment), so starting an
 * attempt does no lookups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/config.h"
#include "kernel/xalloc.h"
#include "modules/kinds/kind_exec.h"

static const char *const default_inherit[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};

static int bad(const char **field, const char *f, char *msg, size_t cap, const char *why)
{
    *field = f;
    snprintf(msg, cap, "%s", why);
    return -1;
}

/* argv[0] without a slash is looked up in PATH, as a shell would. */
static char *resolve(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char buf[4096];
        if (n && n + strlen(prog) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                return xstrdup(buf);
        }
        p += n + (p[n] == ':');
    }
    return NULL;
}

static bool env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static void env_add(struct exec_spec *s, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *kv = xmalloc(n);
    snprintf(kv, n, "%s=%s", name, value);
    for (unsigned i = 0; i < s->nenv; i++) /* a declared value replaces an inherited one */
        if (!strncmp(s->env[i], kv, strlen(name) + 1)) {
            free(s->env[i]);
            s->env[i] = kv;
            return;
        }
    s->env[s->nenv++] = kv;
}

int kinds_field_duration(json_t *e, const char *key, uint64_t *out, uint64_t lo, uint64_t hi,
                         const char **field, char *msg, size_t cap)
{
    json_t *v = json_object_get(e, key);
    if (!v)
        return 0;
    int64_t ms = json_is_integer(v)  ? json_integer_value(v) * 1000
                 : json_is_string(v) ? config_parse_duration_ms(json_string_value(v))
                                     : -1;
    if (ms < (int64_t)lo || (uint64_t)ms > hi) {
        *field = key;
        snprintf(msg, cap,
                 "must be a duration (seconds, or like \"30s\", \"5m\") from %llu ms to %llu ms",
                 (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = (uint64_t)ms;
    return 0;
}

int kinds_field_size(json_t *e, const char *key, uint64_t *out, uint64_t lo, uint64_t hi,
                     const char **field, char *msg, size_t cap)
{
    json_t *v = json_object_get(e, key);
    if (!v)
        return 0;
    int64_t n = json_is_integer(v)  ? json_integer_value(v)
                : json_is_string(v) ? config_parse_size(json_string_value(v))
                                    : -1;
    if (n < (int64_t)lo || (uint64_t)n > hi) {
        *field = key;
        snprintf(msg, cap, "must be a size (bytes, or like \"64k\", \"512m\") from %llu to %llu",
                 (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

int exec_spec_parse(json_t *e, struct exec_spec *s, const char **field, char *msg, size_t cap)
{
    static const char *const known[] = {"type",
                                        "argv",
                                        "env",
                                        "inherit_env",
                                        "cwd",
                                        "concurrency",
                                        "timeout",
                                        "kill_after",
                                        "memory_limit",
                                        "max_stdout",
                                        "stderr_tail",
                                        "max_progress_line",
                                        "mode",
                                        "processes",
                                        "jobs_per_process",
                                        "max_jobs_per_process"};
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            *field = key; /* lives in the file's document, as long as the message */
            snprintf(msg, cap,
                     "is not an exec field (argv, env, inherit_env, cwd, concurrency, "
                     "timeout, kill_after, memory_limit, max_stdout, stderr_tail, "
                     "max_progress_line, mode, processes, jobs_per_process, "
                     "max_jobs_per_process)");
            return -1;
        }
    }
    json_t *argv = json_object_get(e, "argv");
    size_t argc = json_array_size(argv);
    if (!json_is_array(argv) || argc == 0 || argc > EXEC_MAX_ARGS)
        return bad(field, "argv", msg, cap,
                   "must be a non-empty array of strings (the program first)");
    s->argv = xcalloc(argc + 1, sizeof(char *));
    for (size_t i = 0; i < argc; i++) {
        json_t *a = json_array_get(argv, i);
        if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
            return bad(field, "argv", msg, cap, "must hold strings only (without NUL bytes)");
        if (i == 0) {
            s->argv[0] = resolve(json_string_value(a));
            if (!s->argv[0]) {
                *field = "argv";
                snprintf(msg, cap, "'%.200s' is not an executable file%s", json_string_value(a),
                         strchr(json_string_value(a), '/') ? "" : " found in PATH");
                return -1;
            }
        } else {
            s->argv[i] = xstrdup(json_string_value(a));
        }
    }
    json_t *inherit = json_object_get(e, "inherit_env"), *env = json_object_get(e, "env");
    if (inherit && (!json_is_array(inherit) || json_array_size(inherit) > EXEC_MAX_ENV))
        return bad(field, "inherit_env", msg, cap, "must be an array of variable names");
    if (env && (!json_is_object(env) || json_object_size(env) > EXEC_MAX_ENV))
        return bad(field, "env", msg, cap, "must be an object of NAME: \"value\" strings");
    size_t ninherit =
        inherit ? json_array_size(inherit) : sizeof(default_inherit) / sizeof(default_inherit[0]);
    s->env = xcalloc(ninherit + json_object_size(env) + 1, sizeof(char *));
    for (size_t i = 0; i < ninherit; i++) {
        json_t *nv = inherit ? json_array_get(inherit, i) : NULL;
        const char *name = inherit ? json_string_value(nv) : default_inherit[i];
        if (!name || !env_name_ok(name))
            return bad(field, "inherit_env", msg, cap,
                       "must hold variable names (letters, digits, _)");
        const char *val = getenv(name);
        if (val)
            env_add(s, name, val);
    }
    json_object_foreach(env, key, v)
    {
        if (!env_name_ok(key) || !strncmp(key, "TRIREME_", 8))
            return bad(field, "env", msg, cap,
                       "names are letters, digits and _, and not TRIREME_* (set per job)");
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return bad(field, "env", msg, cap, "values must be strings (without NUL bytes)");
        env_add(s, key, json_string_value(v));
    }
    json_t *cwd = json_object_get(e, "cwd");
    if (cwd) {
        struct stat st;
        if (!json_is_string(cwd) || stat(json_string_value(cwd), &st) || !S_ISDIR(st.st_mode))
            return bad(field, "cwd", msg, cap, "must name an existing directory");
        s->cwd = xstrdup(json_string_value(cwd));
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->concurrency = cpus > 0 ? (unsigned)cpus : 1;
    json_t *conc = json_object_get(e, "concurrency");
    if (conc) {
        if (!json_is_integer(conc) || json_integer_value(conc) < 1 ||
            json_integer_value(conc) > EXEC_CONCURRENCY_MAX) {
            *field = "concurrency";
            snprintf(msg, cap, "must be an integer from 1 to %d", EXEC_CONCURRENCY_MAX);
            return -1;
        }
        s->concurrency = (unsigned)json_integer_value(conc);
    }
    s->kill_after_ms = EXEC_KILL_AFTER_MS;
    uint64_t mem = 0, out = EXEC_MAX_STDOUT, tail = EXEC_STDERR_TAIL, prog = EXEC_MAX_PROGRESS;
    if (kinds_field_duration(e, "timeout", &s->timeout_ms, 10, 7 * 24 * 3600 * 1000ULL, field, msg,
                             cap) ||
        kinds_field_duration(e, "kill_after", &s->kill_after_ms, 0, 3600 * 1000ULL, field, msg,
                             cap) ||
        kinds_field_size(e, "memory_limit", &mem, 1 << 20, 1ULL << 48, field, msg, cap) ||
        kinds_field_size(e, "max_stdout", &out, 0, 256 << 20, field, msg, cap) ||
        kinds_field_size(e, "stderr_tail", &tail, 0, 64 << 10, field, msg, cap) ||
        kinds_field_size(e, "max_progress_line", &prog, 16, 64 << 10, field, msg, cap))
        return -1;
    json_t *mode = json_object_get(e, "mode");
    if (mode && (!json_is_string(mode) || (strcmp(json_string_value(mode), "oneshot") &&
                                           strcmp(json_string_value(mode), "pool"))))
        return bad(field, "mode", msg, cap,
                   "must be \"oneshot\" (a program per attempt) or "
                   "\"pool\" (long-lived processes, a job per line)");
    s->pool = mode && !strcmp(json_string_value(mode), "pool");
    s->processes = s->concurrency < EXEC_POOL_MAX_PROCS ? s->concurrency : EXEC_POOL_MAX_PROCS;
    s->jobs_per_process = 1;
    static const struct {
        const char *key;
        unsigned lo, hi;
    } pool_ints[] = {{"processes", 1, EXEC_POOL_MAX_PROCS},
                     {"jobs_per_process", 1, EXEC_POOL_MAX_JOBS},
                     {"max_jobs_per_process", 0, 1000000000}};
    unsigned *dst[] = {&s->processes, &s->jobs_per_process, &s->max_jobs_per_process};
    for (size_t i = 0; i < 3; i++) {
        json_t *pv = json_object_get(e, pool_ints[i].key);
        if (!pv)
            continue;
        *field = pool_ints[i].key;
        if (!s->pool) {
            snprintf(msg, cap, "applies to \"mode\": \"pool\" only");
            return -1;
        }
        if (!json_is_integer(pv) || json_integer_value(pv) < pool_ints[i].lo ||
            json_integer_value(pv) > pool_ints[i].hi) {
            snprintf(msg, cap, "must be an integer from %u to %u", pool_ints[i].lo,
                     pool_ints[i].hi);
            return -1;
        }
        *dst[i] = (unsigned)json_integer_value(pv);
    }
    if (s->pool && conc) {
        *field = "concurrency";
        snprintf(msg, cap, "a pool runs processes x jobs_per_process jobs at once: set those");
        return -1;
    }
    s->memory_limit = mem;
    s->max_stdout = (size_t)out;
    s->stderr_tail = (size_t)tail;
    s->max_progress_line = (size_t)prog;
    return 0;
}

void exec_spec_free(struct exec_spec *s)
{
    for (char **p = s->argv; p && *p; p++)
        free(*p);
    for (char **p = s->env; p && *p; p++)
        free(*p);
    free(s->argv);
    free(s->env);
    free(s->cwd);
    memset(s, 0, sizeof(*s));
}
