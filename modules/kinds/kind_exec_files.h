/*
 * kind_exec_files.h - a job's uploaded files (sql/010_files.sql) as real
 * files for an exec kind's program.
 *
 * Before a one-shot program starts, exec_files_fetch() looks up the job's
 * files and, when it has any, creates a private directory (mkdtemp, mode
 * 0700) under --upload-tmp-dir ($TMPDIR, else /tmp, when empty) and writes
 * each file there as <dir>/<name> (names are [A-Za-z0-9._-], never "." or
 * ".."), mode 0600. Everything goes through the loop's PostgreSQL pool:
 * one query for the list, then one query per stored chunk, one at a time,
 * so no more than one chunk (--upload-chunk) is in memory whatever the
 * file's size. Each chunk is written to its file through the loop's ring
 * (IORING_OP_WRITE), so a slow disk delays that job's start, never the
 * loop.
 *
 * exec_files_remove() deletes the directory and what is in it; the caller
 * calls it after the attempt, whatever its outcome.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_FILES_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_FILES_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernel/pg.h"

/* A job's files ($1: its id as text), by name: id, name, filename,
 * content_type, size. Also what http kinds list ("files": true). */
#define SQL_JOB_FILES                                                                              \
    "SELECT id, name, filename, content_type, size FROM trireme.job_files WHERE job_id = $1"       \
    " ORDER BY name"

struct exec_files;
struct chunk_write;
/* err: NULL when every file is in place (or the job has none). */
typedef void (*exec_files_fn)(struct exec_files *f, const char *err);

struct exec_file_row {
    int64_t id, size;
    char *name; /* into the json list */
};

struct exec_files {
    exec_files_fn fn;
    void *data;
    /* the outcome, valid after fn (until exec_files_remove) */
    char dir[PATH_MAX]; /* "" when none was made */
    json_t *list;       /* [{name, filename, content_type, size, path}] or NULL */
    /* internal */
    struct pg_pool *pg;
    struct pg_query q;
    bool busy;
    const char *vals[2];
    char p0[24], p1[16];
    struct exec_file_row *rows;
    unsigned nrows, cur, seq;
    int64_t written;
    int fd;
    struct chunk_write *w; /* a chunk being written, or NULL */
};

struct job_run;
struct loop;
/* Whether r may have uploaded files: they live in PostgreSQL whatever the
 * queue backend, so a worker without a database has none to fetch, and a
 * Redis job says whether it came with any (so other jobs cost no query). */
bool exec_files_possible(const struct job_run *r);
/* The directory root of exec_files_fetch: --upload-tmp-dir. */
const char *exec_files_root(struct loop *l);

/* Start fetching the files of job `job_id` into a directory under root
 * ("" for $TMPDIR, else /tmp). f->fn runs later, exactly once, unless
 * exec_files_cancel() is called first. */
void exec_files_fetch(struct exec_files *f, struct pg_pool *pg, const char *root, int64_t job_id);
/* Stop a fetch in progress (its callback will not run). */
void exec_files_cancel(struct exec_files *f);
/* Remove the directory and its files, forget the list. Idempotent. */
void exec_files_remove(struct exec_files *f);

#endif
