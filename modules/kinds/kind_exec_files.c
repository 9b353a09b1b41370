/*
 * kind_exec_files.c - a job's uploaded files written out for its program;
 * see kind_exec_files.h.
 */
#include "modules/kinds/kind_exec_files.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "proto/multipart.h"

#define FILES_TIMEOUT_MS 30000 /* each statement */

#define SQL_CHUNK "SELECT data FROM trireme.job_file_chunks WHERE file_id = $1 AND seq = $2"

static void next_chunk(struct exec_files *f);

/* A chunk on its way to its file through the ring: its own allocation, so
 * a fetch cancelled meanwhile (its owner may then free it) leaves the
 * write to finish and free itself. */
struct chunk_write {
    struct op op;         /* first: the loop's completion */
    struct exec_files *f; /* NULL once the fetch was cancelled */
    struct loop *loop;
    int fd;
    int64_t at; /* the chunk's offset in the file */
    size_t len, off;
    char data[];
};

static void submit(struct exec_files *f, const char *sql, int nparams, int result_format,
                   pg_query_fn fn)
{
    f->q = (struct pg_query){
        .fn = fn,
        .data = f,
        .sql = sql,
        .nparams = nparams,
        .values = f->vals,
        .result_format = result_format,
        .timeout_ms = FILES_TIMEOUT_MS,
        .retry_safe = true,
    };
    f->busy = true;
    pg_query_submit(f->pg, &f->q);
}

static void close_fd(struct exec_files *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static void done(struct exec_files *f, const char *err)
{
    close_fd(f);
    free(f->rows);
    f->rows = NULL;
    f->fn(f, err);
}

static void fail_errno(struct exec_files *f, const char *what, const char *path)
{
    char msg[PATH_MAX + 200];
    snprintf(msg, sizeof(msg), "job files: %s %s: %s", what, path, strerror(errno));
    done(f, msg);
}

static void write_more(struct chunk_write *w);

static void on_written(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    (void)l;
    struct chunk_write *w = (struct chunk_write *)op;
    struct exec_files *f = w->f;
    if (!f) {
        free(w);
        return;
    }
    if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
        write_more(w);
        return;
    }
    if (cqe->res <= 0) { /* 0: nothing written, as a full disk can say */
        f->w = NULL;
        free(w);
        errno = cqe->res < 0 ? -cqe->res : ENOSPC;
        fail_errno(f, "cannot write", f->rows[f->cur].name);
        return;
    }
    w->off += (size_t)cqe->res;
    if (w->off < w->len) {
        write_more(w);
        return;
    }
    f->w = NULL;
    f->written += (int64_t)w->len;
    f->seq++;
    free(w);
    next_chunk(f);
}

static void write_more(struct chunk_write *w)
{
    struct io_uring_sqe *sqe = loop_sqe(w->loop, &w->op);
    io_uring_prep_write(sqe, w->fd, w->data + w->off, (unsigned)(w->len - w->off),
                        (uint64_t)(w->at + (int64_t)w->off));
}

static void on_chunk(struct pg_query *q, PGresult *res, const char *err)
{
    struct exec_files *f = q->data;
    struct exec_file_row *row = &f->rows[f->cur];
    char msg[300];
    f->busy = false;
    if (err) {
        snprintf(msg, sizeof(msg), "job files: reading a chunk of \"%s\" failed: %s", row->name,
                 err);
        done(f, msg);
        return;
    }
    if (PQntuples(res) == 0) { /* past the last chunk */
        if (f->written != row->size) {
            snprintf(msg, sizeof(msg),
                     "job files: \"%s\" has %" PRId64 " bytes stored, %" PRId64 " expected",
                     row->name, f->written, row->size);
            done(f, msg);
            return;
        }
        close_fd(f);
        f->cur++;
        f->seq = 0;
        f->written = 0;
        next_chunk(f);
        return;
    }
    /* Written through the ring: a slow disk never stalls the loop. The
     * chunk is copied out of the result, which is gone after this call. */
    size_t len = (size_t)PQgetlength(res, 0, 0);
    if (!len) {
        f->seq++;
        next_chunk(f);
        return;
    }
    struct chunk_write *w = xmalloc(sizeof(*w) + len);
    *w = (struct chunk_write){.op.fn = on_written,
                              .f = f,
                              .loop = f->pg->loop,
                              .fd = f->fd,
                              .at = f->written,
                              .len = len};
    memcpy(w->data, PQgetvalue(res, 0, 0), len);
    f->w = w;
    write_more(w);
}

/* Ask for the current file's next chunk, opening the file at its first. */
static void next_chunk(struct exec_files *f)
{
    if (f->cur == f->nrows) {
        done(f, NULL);
        return;
    }
    struct exec_file_row *row = &f->rows[f->cur];
    if (f->fd < 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", f->dir, row->name);
        f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f->fd < 0) {
            fail_errno(f, "cannot create", path);
            return;
        }
    }
    snprintf(f->p0, sizeof(f->p0), "%" PRId64, row->id);
    snprintf(f->p1, sizeof(f->p1), "%u", f->seq);
    f->vals[0] = f->p0;
    f->vals[1] = f->p1;
    submit(f, SQL_CHUNK, 2, 1, on_chunk);
}

static void on_list(struct pg_query *q, PGresult *res, const char *err)
{
    struct exec_files *f = q->data;
    char msg[300];
    f->busy = false;
    if (err) {
        snprintf(msg, sizeof(msg), "job files: listing them failed: %s", err);
        done(f, msg);
        return;
    }
    int n = PQntuples(res);
    if (n == 0) {
        done(f, NULL);
        return;
    }
    const char *root = f->dir;
    char tmpl[PATH_MAX];
    int tl = snprintf(tmpl, sizeof(tmpl), "%s/trireme-job-%s-XXXXXX", root, f->p0);
    if (tl < 0 || (size_t)tl >= sizeof(tmpl)) {
        f->dir[0] = '\0';
        done(f, "job files: --upload-tmp-dir is too long");
        return;
    }
    if (!mkdtemp(tmpl)) { /* mode 0700 */
        f->dir[0] = '\0';
        fail_errno(f, "cannot create a directory in", root);
        return;
    }
    snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
    f->list = json_array();
    f->rows = xcalloc((size_t)n, sizeof(*f->rows));
    f->nrows = (unsigned)n;
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(res, i, 1);
        char path[PATH_MAX];
        if (!multipart_name_ok(name, strlen(name))) {
            snprintf(msg, sizeof(msg), "job files: stored name \"%.128s\" is not a safe file name",
                     name);
            done(f, msg);
            return;
        }
        snprintf(path, sizeof(path), "%s/%s", f->dir, name);
        int64_t size = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s}", "name", name, "filename",
                              PQgetvalue(res, i, 2), "content_type", PQgetvalue(res, i, 3), "size",
                              (json_int_t)size, "path", path);
        json_array_append_new(f->list, o);
        f->rows[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        f->rows[i].size = size;
        f->rows[i].name = (char *)json_string_value(json_object_get(o, "name"));
    }
    f->cur = f->seq = 0;
    f->written = 0;
    next_chunk(f);
}

bool exec_files_possible(const struct job_run *r)
{
    return r->files && r->pg;
}

const char *exec_files_root(struct loop *l)
{
    return l->srv ? l->srv->cfg->upload_tmp_dir : "";
}

void exec_files_fetch(struct exec_files *f, struct pg_pool *pg, const char *root, int64_t job_id)
{
    const char *tmp = getenv("TMPDIR");
    if (!root || !*root)
        root = tmp && *tmp ? tmp : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s", root); /* the root until the directory exists */
    f->list = NULL;
    f->rows = NULL;
    f->nrows = f->cur = f->seq = 0;
    f->fd = -1;
    f->w = NULL;
    f->pg = pg;
    snprintf(f->p0, sizeof(f->p0), "%" PRId64, job_id);
    f->vals[0] = f->p0;
    submit(f, SQL_JOB_FILES, 1, 0, on_list);
}

void exec_files_cancel(struct exec_files *f)
{
    if (f->busy) {
        pg_query_abandon(f->pg, &f->q);
        f->busy = false;
    }
    if (f->w) { /* finishes on its own: its file is closed and removed */
        f->w->f = NULL;
        f->w = NULL;
    }
    close_fd(f);
    free(f->rows);
    f->rows = NULL;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) && errno != ENOENT)
        LOG(LOG_WARN, "exec: cannot remove from a job's file directory", L_STR("path", path),
            L_STR("error", strerror(errno)));
    return 0;
}

void exec_files_remove(struct exec_files *f)
{
    /* the directory and whatever the program left in it; never follows a
     * symbolic link out of it */
    if (f->list && f->dir[0])
        nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    json_decref(f->list);
    f->list = NULL;
    f->dir[0] = '\0';
}
