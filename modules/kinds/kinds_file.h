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

#include <stddef.h>

#include "modules/kinds/kind.h"
#include "modules/kinds/kind_exec.h"

#define KINDS_FILE_MAX 256 /* declared kinds */
#define KINDS_NAME_MAX 64  /* a declared kind's name (--kind-limits holds 64) */

enum kind_type { KIND_TYPE_EXEC };

struct declared_kind {
    struct job_kind kind; /* what the registry hands out; kind.name is name */
    char *name;
    unsigned index; /* in kinds_file.v */
    enum kind_type type;
    struct exec_spec exec;
};

struct kinds_file {
    struct declared_kind *v;
    unsigned n;
};

/* path "" declares nothing (an empty set). 0, or -1 with msg set: "FILE:
 * kind 'NAME': field 'F': what is wrong". */
int kinds_file_load(const char *path, struct kinds_file *out, char *msg, size_t cap);
void kinds_file_free(struct kinds_file *f);

static inline struct declared_kind *declared_kind_of(const struct job_kind *k)
{
    return (struct declared_kind *)((char *)k - offsetof(struct declared_kind, kind));
}

#endif
