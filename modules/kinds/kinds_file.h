/*
 * kinds_file.h - --kinds=FILE: the job kinds the operator declares.
 *
 * The file is JSON: {"kinds": {"NAME": {"type": "exec", ...}, ...}}. Each
 * entry has a type; the type's parser checks the rest (exec: see
 * kind_exec.h). Names follow the kind name rules of the API and must not
 * shadow a built-in kind. Read once at start; any error stops the start
 * with a message naming the file, the entry and the field.
 */
#ifndef TRIREME_MODULES_KINDS_KINDS_FILE_H
#define TRIREME_MODULES_KINDS_KINDS_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel/container_of.h"
#include "modules/kinds/kind.h"
#include "modules/kinds/kind_exec.h"
#include "modules/kinds/kind_http.h"
#include "modules/webhooks/webhooks.h"

#define KINDS_FILE_MAX 256 /* declared kinds */
#define KINDS_NAME_MAX 64  /* a declared kind's name (--kind-limits holds 64) */

enum kind_type { KIND_TYPE_EXEC, KIND_TYPE_PULL, KIND_TYPE_HTTP };

struct declared_kind {
    struct job_kind kind; /* what the registry hands out; kind.name is name */
    char *name;
    unsigned index; /* in kinds_file.v */
    enum kind_type type;
    struct exec_spec exec;
    struct http_spec http; /* KIND_TYPE_HTTP (kind_http.h) */
};

struct kinds_file {
    struct declared_kind *v;
    unsigned n;
    struct webhook_sources webhooks; /* "webhooks": inbound sources */
};

/* path "" declares nothing (an empty set). 0, or -1 with msg set: "FILE:
 * kind 'NAME': field 'F': what is wrong". */
int kinds_file_load(const char *path, struct kinds_file *out, char *msg, size_t cap);
void kinds_file_free(struct kinds_file *f);
/* A declared kind's name: 1 to KINDS_NAME_MAX letters, digits or _ - . : */
bool kinds_name_ok(const char *s, size_t n);
/* name can be declared next in f: a valid name, no built-in kind's, not
 * declared yet, and room for one more. 0, or -1 with msg "WHAT: kind
 * 'NAME': why". */
int kinds_file_name_free(const struct kinds_file *f, const char *name, size_t n, const char *what,
                         char *msg, size_t cap);
/* One more kind declared outside the file (--pull-kinds, the environment),
 * its name checked by kinds_file_name_free: named and numbered, of type;
 * the caller fills in the rest. */
struct declared_kind *kinds_file_append(struct kinds_file *f, const char *name, size_t n,
                                        enum kind_type type);

/* The kinds module's per-loop state (loop->modules[MODULE_KINDS]). */
struct exec_loop;
struct kinds_loop {
    void *exec;             /* kind_exec.h */
    struct http_loop *http; /* kind_http.h */
};

/* kinds_pull.c: pull kinds, run by external workers (POST /v1/claim). */
/* Add the comma-separated kinds of --pull-kinds to f (a name the file
 * declared already is an error). 0, or -1 with msg set. */
int kinds_file_add_pull(struct kinds_file *f, const char *list, char *msg, size_t cap);
int pull_kind_parse(json_t *entry, struct declared_kind *d, const char **field, char *msg,
                    size_t cap);
/* The built-in worker's start of a pull kind: it never runs one. */
void pull_kind_start(struct job_run *r);
/* k is a pull kind (NULL: false). */
bool job_kind_is_pull(const struct job_kind *k);

static inline struct declared_kind *declared_kind_of(const struct job_kind *k)
{
    return container_of(k, struct declared_kind, kind);
}

#endif
