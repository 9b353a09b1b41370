/*
 * kinds_file.c - reading and checking --kinds=FILE; see kinds_file.h.
 *
 * Types are a table: a new type (http, pull) adds its name, its parser and
 * its start/stop here, and nothing else changes.
 */
#include "modules/kinds/kinds_file.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"

struct kind_type_def {
    const char *name;
    enum kind_type type;
    const char *summary;
    int (*parse)(json_t *entry, struct declared_kind *d, const char **field, char *msg, size_t cap);
    void (*start)(struct job_run *r);
    void (*stop)(struct job_run *r);
};

static int parse_exec(json_t *entry, struct declared_kind *d, const char **field, char *msg,
                      size_t cap)
{
    if (exec_spec_parse(entry, &d->exec, field, msg, cap))
        return -1;
    d->kind.timeout_ms = d->exec.timeout_ms;
    return 0;
}

static const struct kind_type_def types[] = {
    {"exec", KIND_TYPE_EXEC, "a program run once per attempt (declared in --kinds)", parse_exec,
     exec_start, exec_stop},
    {"pull", KIND_TYPE_PULL, "run by external workers that pull it (POST /v1/claim)",
     pull_kind_parse, pull_kind_start, NULL},
    {"http", KIND_TYPE_HTTP, "pushed to an HTTP(S) endpoint (declared in --kinds)", http_kind_parse,
     http_kind_start, NULL},
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

bool kinds_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > KINDS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static void free_entry(struct declared_kind *d)
{
    if (d->type == KIND_TYPE_EXEC)
        exec_spec_free(&d->exec);
    if (d->type == KIND_TYPE_HTTP)
        http_spec_free(&d->http);
    free(d->name);
}

int kinds_file_name_free(const struct kinds_file *f, const char *name, size_t n, const char *what,
                         char *msg, size_t cap)
{
    char why[80] = "";
    if (!kinds_name_ok(name, n))
        snprintf(why, sizeof(why),
                 "the name must be 1 to %d letters, digits or _ - . :", KINDS_NAME_MAX);
    else if (job_kind_builtin(name, n))
        snprintf(why, sizeof(why), "the name of a built-in kind");
    for (unsigned i = 0; i < f->n && !*why; i++)
        if (strlen(f->v[i].name) == n && !memcmp(f->v[i].name, name, n))
            snprintf(why, sizeof(why), "declared twice");
    if (!*why && f->n >= KINDS_FILE_MAX)
        snprintf(why, sizeof(why), "more than %d kinds declared", KINDS_FILE_MAX);
    if (!*why)
        return 0;
    snprintf(msg, cap, "%s: kind '%.*s': %s", what, (int)(n > 80 ? 80 : n), name, why);
    return -1;
}

struct declared_kind *kinds_file_append(struct kinds_file *f, const char *name, size_t n,
                                        enum kind_type type)
{
    f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
    struct declared_kind *d = &f->v[f->n];
    memset(d, 0, sizeof(*d));
    d->name = xstrndup(name, n);
    d->index = f->n++;
    d->type = type;
    d->kind.name = d->name;
    return d;
}

/* A webhook source's kind: built in or declared above it in the file. */
static bool kind_known(const char *kind, void *ctx)
{
    const struct kinds_file *f = ctx;
    for (unsigned i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].name, kind))
            return true;
    return job_kind_builtin(kind, strlen(kind)) != NULL;
}

int kinds_file_load(const char *path, struct kinds_file *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (!*path)
        return 0;
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(msg, cap, "%s: not a readable JSON file: %s (line %d)", path, je.text, je.line);
        return -1;
    }
    json_t *kinds = json_object_get(doc, "kinds");
    if (!json_is_object(doc) || !json_is_object(kinds)) {
        snprintf(msg, cap, "%s: expected {\"kinds\": {\"NAME\": {\"type\": ...}, ...}}", path);
        json_decref(doc);
        return -1;
    }
    size_t n = json_object_size(kinds);
    if (n > KINDS_FILE_MAX) {
        snprintf(msg, cap, "%s: %zu kinds declared, at most %d", path, n, KINDS_FILE_MAX);
        json_decref(doc);
        return -1;
    }
    out->v = xcalloc(n ? n : 1, sizeof(*out->v));
    const char *name;
    json_t *e;
    json_object_foreach(kinds, name, e)
    {
        const char *field = NULL;
        char why[300] = "";
        struct declared_kind *d = &out->v[out->n];
        const struct kind_type_def *t = NULL;
        json_t *type = json_object_get(e, "type");
        if (kinds_file_name_free(out, name, strlen(name), path, msg, cap))
            goto bad;
        if (!json_is_object(e)) {
            snprintf(msg, cap, "%s: kind '%s': must be an object with a \"type\"", path, name);
            goto bad;
        }
        if (!json_is_string(type)) {
            snprintf(msg, cap, "%s: kind '%s': field 'type': is required (known: exec, pull, http)",
                     path, name);
            goto bad;
        }
        for (size_t i = 0; i < NTYPES; i++)
            if (!strcmp(types[i].name, json_string_value(type)))
                t = &types[i];
        if (!t) {
            snprintf(msg, cap,
                     "%s: kind '%s': field 'type': unknown type '%.40s' (known: exec, pull, http)",
                     path, name, json_string_value(type));
            goto bad;
        }
        d->type = t->type;
        if (t->parse(e, d, &field, why, sizeof(why))) {
            snprintf(msg, cap, "%s: kind '%s': field '%s': %s", path, name, field, why);
            free_entry(d);
            goto bad;
        }
        d->name = xstrdup(name);
        d->index = out->n;
        d->kind.name = d->name;
        d->kind.summary = t->summary;
        d->kind.start = t->start;
        d->kind.stop = t->stop;
        out->n++;
    }
    char why[500];
    if (webhook_sources_parse(json_object_get(doc, "webhooks"), &out->webhooks, kind_known, out,
                              why, sizeof(why))) {
        snprintf(msg, cap, "%s: %s", path, why);
        goto bad;
    }
    json_decref(doc);
    return 0;
bad:
    json_decref(doc);
    kinds_file_free(out);
    return -1;
}

void kinds_file_free(struct kinds_file *f)
{
    for (unsigned i = 0; i < f->n; i++)
        free_entry(&f->v[i]);
    free(f->v);
    webhook_sources_free(&f->webhooks);
    memset(f, 0, sizeof(*f));
}
