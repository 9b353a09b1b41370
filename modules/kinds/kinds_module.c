/*
 * kinds_module.c - the kinds service: reads --kinds before any role starts
 * (roles check kinds at their own init: --kind-limits, --schedules), gives
 * each loop of a worker its exec state (pool processes start with it), lets
 * pool processes go when the worker drains, and at exit kills what still
 * runs.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/kinds/kind_exec.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind_http.h"
#include "modules/kinds/kind_limits.h"
#include "modules/kinds/kinds_file.h"
#include "modules/registry.h"

static int kinds_init(struct server *s)
{
    struct kinds_file *f = xcalloc(1, sizeof(*f));
    char msg[700];
    if (kinds_file_load(s->cfg->kinds_file, f, msg, sizeof(msg))) {
        LOG(LOG_ERROR, "--kinds: invalid kinds file", L_STR("error", msg));
        free(f);
        return -1;
    }
    if (kinds_file_add_http(f, environ, s->cfg->http_allow_hosts, msg, sizeof(msg))) {
        LOG(LOG_ERROR, "http kinds: invalid declaration", L_STR("error", msg));
        kinds_file_free(f);
        free(f);
        return -1;
    }
    if (kinds_file_add_pull(f, s->cfg->pull_kinds, msg, sizeof(msg))) {
        LOG(LOG_ERROR, "--pull-kinds: invalid", L_STR("error", msg));
        kinds_file_free(f);
        free(f);
        return -1;
    }
    for (unsigned i = 0; i < f->n; i++) {
        const struct declared_kind *d = &f->v[i];
        if (d->type != KIND_TYPE_HTTP || !d->http.files ||
            !(s->cfg->role_mask & (1u << MODULE_WORKER)))
            continue;
        const char *miss = !*s->cfg->upload_url_secret ? "--upload-url-secret"
                           : !*s->cfg->public_url      ? "--public-url"
                                                       : NULL;
        if (miss) {
            snprintf(msg, sizeof(msg),
                     "kind '%s' has \"files\": true, which needs %s (its endpoint gets signed "
                     "URLs of the job's files)",
                     d->name, miss);
            LOG(LOG_ERROR, "--kinds: invalid kinds file", L_STR("error", msg));
            kinds_file_free(f);
            free(f);
            return -1;
        }
    }
    s->module_state[MODULE_KINDS] = f;
    job_kinds_declare(f);
    if (*s->cfg->kinds_file)
        LOG(LOG_INFO, "kinds file loaded", L_STR("path", s->cfg->kinds_file), L_INT("kinds", f->n));
    return 0;
}

static int kinds_start(struct loop *l)
{
    const struct kinds_file *f = l->srv->module_state[MODULE_KINDS];
    if (f && f->n && (l->srv->cfg->role_mask & (1u << MODULE_WORKER))) {
        struct kinds_loop *kl = xcalloc(1, sizeof(*kl));
        kl->exec = exec_loop_new(l, f);
        kl->http = http_loop_new(l, f);
        l->modules[MODULE_KINDS] = kl;
    }
    return 0;
}

static void kinds_stop(struct loop *l)
{
    struct kinds_loop *kl = l->modules[MODULE_KINDS];
    if (kl) {
        exec_loop_drain(kl->exec);
        http_loop_drain(kl->http);
    }
}

static void kinds_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        struct kinds_loop *kl = s->loops[i].modules[MODULE_KINDS];
        if (kl) {
            exec_loop_free(kl->exec);
            http_loop_free(kl->http);
            free(kl);
        }
        s->loops[i].modules[MODULE_KINDS] = NULL;
    }
    struct kinds_file *f = s->module_state[MODULE_KINDS];
    job_kinds_declare(NULL);
    if (f)
        kinds_file_free(f);
    free(f);
    s->module_state[MODULE_KINDS] = NULL;
}

/* http kinds call HTTPS endpoints: declared in --kinds, by
 * TRIREME_HTTP_KIND_*, or the generic kind's --http-allow-hosts. */
static bool kinds_verifies_servers(const struct config *cfg)
{
    if (*cfg->kinds_file || *cfg->http_allow_hosts)
        return true;
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, "TRIREME_HTTP_KIND_", 18))
            return true;
    return false;
}

static const struct module_limit kinds_limits[] = {
    {"KINDS_FILE_MAX", KINDS_FILE_MAX, "", "kinds declared in --kinds"},
    {"KINDS_NAME_MAX", KINDS_NAME_MAX, "bytes", "a declared kind's name"},
    {"KIND_LIMITS_MAX", KIND_LIMITS_MAX, "", "--kind-limits rules"},
    {"EXEC_MAX_ARGS", EXEC_MAX_ARGS, "", "an exec kind's argv entries"},
    {"EXEC_MAX_ENV", EXEC_MAX_ENV, "", "an exec kind's environment entries"},
    {"EXEC_CONCURRENCY_MAX", EXEC_CONCURRENCY_MAX, "", "an exec kind's \"concurrency\""},
    {"EXEC_POOL_MAX_PROCS", EXEC_POOL_MAX_PROCS, "", "a pool kind's \"processes\""},
    {"EXEC_POOL_MAX_JOBS", EXEC_POOL_MAX_JOBS, "", "a pool kind's \"jobs_per_process\""},
    {"EXEC_STDERR_LINE_MAX", EXEC_STDERR_LINE_MAX, "bytes", "a stderr line logged whole"},
    {"HTTP_KIND_CONCURRENCY_MAX", HTTP_KIND_CONCURRENCY_MAX, "", "an http kind's \"concurrency\""},
    {"HTTP_KIND_HEADERS_MAX", HTTP_KIND_HEADERS_MAX, "", "headers one http kind adds"},
    {"HTTP_KIND_HEADER_MAX", HTTP_KIND_HEADER_MAX, "bytes", "one such \"Name: value\""},
    {"HTTP_KIND_URL_MAX", HTTP_KIND_URL_MAX, "bytes", "an http kind's url, or a generic job's"},
    {"HTTP_KIND_SECRET_MAX", HTTP_KIND_SECRET_MAX, "bytes", "a signing secret, decoded"},
    {"HTTP_KIND_ALLOW_MAX", HTTP_KIND_ALLOW_MAX, "", "--http-allow-hosts entries"},
    {"HTTP_KIND_ERROR_BODY", HTTP_KIND_ERROR_BODY, "bytes", "response body quoted in last_error"},
    {"JOB_PREV_ERROR_HEAD", JOB_PREV_ERROR_HEAD, "bytes",
     "of the previous error a retried run is given"},
    {NULL, 0, NULL, NULL},
};

const struct module kinds_module = {
    .name = "kinds",
    .summary = "job kinds declared by the operator (--kinds): exec programs",
    .verifies_servers = kinds_verifies_servers,
    .init = kinds_init,
    .start = kinds_start,
    .stop = kinds_stop,
    .cleanup = kinds_cleanup,
    .limits = kinds_limits,
};
