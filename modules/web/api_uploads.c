/*
 * api_uploads.c - POST /v1/jobs as multipart/form-data: a "job" part (the
 * JSON object a plain POST /v1/jobs takes, one job) and file parts, each
 * stored in PostgreSQL (sql/010_files.sql) as its bytes arrive.
 *
 * The body is streamed (web.h: web_stream_route): proto/multipart parses
 * each piece, a file's bytes fill a chunk of --upload-chunk bytes, and a
 * full chunk goes out as one INSERT on the loop's pool (pipelined with the
 * others) while the next fills. At most UPLOAD_INFLIGHT chunks are in
 * flight; past that the handler takes no more bytes and the connection
 * stops reading until one commits, so an upload holds about
 * (UPLOAD_INFLIGHT + 1) chunks whatever the file's size, and a slow
 * database slows the client down instead of filling memory.
 *
 * A file's row is written first (its id numbers the chunks) with job_id
 * NULL, whatever the queue backend. When the body is complete the queue
 * backend's enqueue_files enqueues the job and attaches the files to it
 * (sets job_id and size) so that no worker ever sees the job without them
 * (queue_api.h; PostgreSQL in one statement, Redis through an id reserved
 * first). An upload refused on the way (413 over a limit, 400 malformed)
 * or cut off by its client deletes the rows it wrote, chunks cascading:
 * nothing is kept. If that delete itself fails, or the server stops
 * mid-upload, the rows stay unattached (job_id NULL) until
 * --retention-upload-orphans deletes them (modules/jobs/retention.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/log.h"
#include "kernel/pg.h"
#include "kernel/pg_array.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/jobs/job_input.h"
#include "modules/web/api_jobs.h"
#include "modules/jobs/upload_url.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "proto/multipart.h"
#include "proto/utf8.h"

#define UPLOAD_JOB_PART "job"

#define SQL_FILE_ROW                                                                               \
    "INSERT INTO trireme.job_files (name, filename, content_type) VALUES ($1, $2, $3) RETURNING "  \
    "id"
#define SQL_CHUNK "INSERT INTO trireme.job_file_chunks (file_id, seq, data) VALUES ($1, $2, $3)"
/* Only rows not attached: files attached to a job are the job's, even
 * when its enqueue's answer was lost (the enqueue may still have
 * happened; on the Redis backend the worker's sweep decides). */
#define SQL_DROP "DELETE FROM trireme.job_files WHERE id = ANY($1::bigint[]) AND job_id IS NULL"

enum part { P_NONE, P_JOB, P_FILE };

struct upload;

struct up_chunk {
    struct pg_query q;
    struct upload *u;
    char *data;
    size_t len;
    bool busy;
    const char *vals[3];
    int lens[3], fmts[3];
    char fid[24], seq[16];
};

struct up_file {
    int64_t id; /* 0 until its row is written */
    char name[MULTIPART_MAX_NAME + 1];
    char filename[MULTIPART_MAX_FILENAME + 1];
    char content_type[MULTIPART_MAX_CTYPE + 1];
    uint64_t size;
    unsigned chunks;
};

struct upload {
    struct web_request *r; /* NULL once answered or gone */
    const struct config *cfg;
    struct pg_pool *pg;
    unsigned refs; /* the request, and each statement in flight */
    struct multipart mp;
    enum part part;
    bool file_ended; /* the current file's last chunk is still to go */
    bool done;       /* closing delimiter seen */
    bool have_job;
    bool finishing;    /* the job went to the queue backend */
    bool part_pending; /* a file part's headers wait for the previous file's row */
    char *job;
    size_t job_len;
    struct up_file *files;
    unsigned nfiles;
    struct up_chunk chunk[UPLOAD_INFLIGHT + 1];
    struct up_chunk *fill; /* the one filling, never busy */
    struct pg_query row_q;
    const char *row_vals[3];
    bool row_busy;
    struct queue_call *final; /* the backend's enqueue_files, until answered */
    uint64_t total;
};

static void unref(struct upload *u)
{
    if (--u->refs)
        return;
    for (unsigned i = 0; i <= UPLOAD_INFLIGHT; i++)
        free(u->chunk[i].data);
    free(u->files);
    free(u->job);
    free(u);
}

/* "{1,2,3}" of the files' ids that have rows (the caller frees it). */
static char *ids_array(const struct upload *u)
{
    struct pg_array a = {0};
    pg_array_begin(&a);
    for (unsigned i = 0; i < u->nfiles; i++)
        if (u->files[i].id)
            pg_array_int(&a, u->files[i].id);
    pg_array_end(&a);
    return a.s; /* pg_array_free would free just this */
}

/* --- dropping what an abandoned upload wrote ------------------------------ */

struct up_drop {
    struct pg_query q;
    const char *vals[1];
    char *ids;
};

static void on_dropped(struct pg_query *q, PGresult *res, const char *err)
{
    struct up_drop *d = container_of(q, struct up_drop, q);
    if (err)
        LOG(LOG_WARN,
            "upload: could not delete the files of an abandoned upload (left for the "
            "orphan sweep)",
            L_STR("files", d->ids), L_STR("error", err));
    free(d->ids);
    free(d);
}

/* Deletes the rows written so far. Rows still being written when this
 * runs are unattached and stay so: the orphan sweep's. */
static void drop_files(struct upload *u)
{
    bool any = false;
    for (unsigned i = 0; i < u->nfiles; i++)
        any |= u->files[i].id != 0;
    if (!any)
        return;
    struct up_drop *d = xcalloc(1, sizeof(*d));
    d->ids = ids_array(u);
    d->vals[0] = d->ids;
    d->q = (struct pg_query){
        .fn = on_dropped,
        .sql = SQL_DROP,
        .nparams = 1,
        .values = d->vals,
        .timeout_ms = UPLOAD_TIMEOUT_MS,
        .retry_safe = true,
    };
    pg_query_submit(u->pg, &d->q);
    for (unsigned i = 0; i < u->nfiles; i++)
        u->files[i].id = 0;
}

/* --- answering ------------------------------------------------------------- */

static void on_abort(struct web_request *r)
{
    struct upload *u = r->async;
    u->r = NULL;
    /* Once the job went to the backend it comes with its files (only the
     * answer is lost, as for any enqueue); before, drop them. */
    if (u->final) {
        queue_call_forget(u->final);
        u->final = NULL;
        unref(u); /* the call's reference */
    }
    if (!u->finishing)
        drop_files(u);
    unref(u);
}

/* Refuse the upload: answer, and drop what was stored. */
static void refuse(struct upload *u, int status, const char *code, const char *msg)
{
    struct web_request *r = u->r;
    if (!r)
        return;
    u->r = NULL;
    r->on_abort = NULL;
    r->on_peer_eof = NULL;
    LOG(LOG_INFO, "upload refused", L_INT("status", status), L_STR("reason", msg),
        L_STRN("request_id", r->id, r->id_len));
    /* a 503 says when to try again, as every 503 of the API does */
    web_respond_error_h(r, status, code, msg, status == 503 ? API_RETRY_AFTER_HDR : NULL);
    drop_files(u);
    unref(u);
}

static void store_failed(struct upload *u, const char *what, const char *err)
{
    if (u->r)
        LOG(LOG_WARN, "upload: database write failed", L_STR("step", what), L_STR("error", err),
            L_STRN("request_id", u->r->id, u->r->id_len));
    refuse(u, 503, "unavailable", "the database could not store the upload; retry later");
}

static void too_large(struct upload *u, const char *limit, uint64_t value)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "upload larger than %s (%" PRIu64 " bytes)", limit, value);
    refuse(u, 413, "payload_too_large", msg);
}

static void on_attached(struct queue_call *c, const struct queue_answer *ans)
{
    struct upload *u = c->data;
    struct web_request *r = u->r;
    u->final = NULL;
    if (ans->status >= 300) {
        if (r)
            LOG(LOG_WARN, "upload: enqueue failed", L_INT("status", ans->status),
                L_STR("error", ans->detail ? ans->detail : ans->message),
                L_STRN("request_id", r->id, r->id_len));
        refuse(u, ans->status, ans->code, ans->message);
        unref(u);
        return;
    }
    /* the backend's enqueue answer: {"id","status","created"} */
    json_t *body = json_loadb(ans->body, ans->len, 0, NULL);
    json_int_t id = json_integer_value(json_object_get(body, "id"));
    bool created = json_is_true(json_object_get(body, "created"));
    if (!json_is_object(body) || id <= 0) {
        json_decref(body);
        refuse(u, 500, "internal", "unexpected enqueue answer");
        unref(u);
        return;
    }
    u->r = NULL;
    r->on_abort = NULL;
    r->on_peer_eof = NULL;
    if (!created)
        drop_files(u); /* unique_key matched an existing job: it keeps its own files */
    char ids[24];
    snprintf(ids, sizeof(ids), "%" JSON_INTEGER_FORMAT, id);
    json_t *files = json_array();
    const char *secret = u->cfg->upload_url_secret;
    int64_t expires = (int64_t)time(NULL) + (int64_t)(u->cfg->upload_url_ttl_ms / 1000);
    for (unsigned i = 0; created && i < u->nfiles; i++) {
        const struct up_file *f = &u->files[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "name", f->name, "filename", f->filename,
                              "content_type", f->content_type, "size", (json_int_t)f->size);
        /* With --upload-url-secret, a link that needs no API key until the
         * --upload-url-ttl is over: for whoever the client hands it to. */
        char url[UPLOAD_URL_MAX];
        if (*secret &&
            upload_signed_path(secret, strlen(secret), ids, f->name, expires, url, sizeof(url)))
            json_object_set_new(o, "url", json_string(url));
        json_array_append_new(files, o);
    }
    json_object_set_new(body, "files", files);
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    LOG(LOG_INFO, "upload stored", L_STR("job_id", ids), L_INT("files", u->nfiles),
        L_INT("bytes", (int64_t)u->total), L_STRN("request_id", r->id, r->id_len));
    web_respond_json(r, created ? 201 : 200, text, strlen(text));
    free(text);
    json_decref(body);
    unref(u); /* the request's reference */
    unref(u); /* the call's */
}

/* The body is complete and every chunk stored: enqueue and attach. */
static void maybe_finish(struct upload *u)
{
    if (!u->r || !u->done || u->finishing || u->row_busy || u->fill->len)
        return;
    for (unsigned i = 0; i <= UPLOAD_INFLIGHT; i++)
        if (u->chunk[i].busy)
            return;
    if (!u->have_job) {
        refuse(u, 400, "invalid_job", "a multipart job needs a part named \"job\" (the job JSON)");
        return;
    }
    json_error_t jerr;
    json_t *in = json_loadb(u->job, u->job_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in || !json_is_object(in)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "part \"job\" is not a JSON object: %s",
                 in ? "another JSON value" : jerr.text);
        json_decref(in);
        refuse(u, 400, "invalid_json", msg);
        return;
    }
    const char *field = NULL;
    char why[300], msg[400];
    json_t *j = job_input_normalize(in, &field, why, sizeof(why));
    if (!j) {
        snprintf(msg, sizeof(msg), "job.%s %s", field, why);
        json_decref(in);
        refuse(u, 400, "invalid_job", msg);
        return;
    }
    json_decref(in);
    void *state;
    const char *no_store;
    const struct queue_api_ops *ops = api_jobs_ops(web_loop_of(u->r->loop), &state, &no_store);
    if (!ops) {
        json_decref(j);
        refuse(u, 503, "unavailable", no_store);
        return;
    }
    json_t *arr = json_array();
    json_array_append_new(arr, j);
    char *ids = ids_array(u);
    u->finishing = true;
    u->refs++;
    u->final = ops->enqueue_files(state, arr, ids, on_attached, u);
    free(ids);
}

/* --- writing ------------------------------------------------------------- */

static void on_chunk(struct pg_query *q, PGresult *res, const char *err)
{
    struct up_chunk *c = container_of(q, struct up_chunk, q);
    struct upload *u = c->u;
    c->busy = false;
    c->len = 0;
    if (err)
        store_failed(u, "chunk", err);
    else if (u->r) {
        web_stream_more(u->r);
        maybe_finish(u);
    }
    unref(u);
}

static void on_row(struct pg_query *q, PGresult *res, const char *err)
{
    struct upload *u = container_of(q, struct upload, row_q);
    u->row_busy = false;
    if (err || PQntuples(res) != 1)
        store_failed(u, "file row", err ? err : "no id");
    else {
        u->files[u->nfiles - 1].id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!u->r) /* gone meanwhile: this row too */
            drop_files(u);
        else {
            web_stream_more(u->r);
            maybe_finish(u);
        }
    }
    unref(u);
}

/* Send the filling chunk when it is full or its file ended. False when it
 * must be sent and cannot be yet (its file's row, or a free slot, is not
 * there): the caller takes no more bytes for now. */
static bool flush_ready(struct upload *u)
{
    struct up_chunk *c = u->fill, *next = NULL;
    struct up_file *f;

    if (c->len == 0 || (c->len < u->cfg->upload_chunk && !u->file_ended))
        return true;
    f = &u->files[u->nfiles - 1];
    if (f->id == 0)
        return false;
    for (unsigned i = 0; i <= UPLOAD_INFLIGHT; i++)
        if (&u->chunk[i] != c && !u->chunk[i].busy)
            next = &u->chunk[i];
    if (!next)
        return false;
    snprintf(c->fid, sizeof(c->fid), "%" PRId64, f->id);
    snprintf(c->seq, sizeof(c->seq), "%u", f->chunks++);
    c->vals[0] = c->fid;
    c->vals[1] = c->seq;
    c->vals[2] = c->data;
    c->lens[2] = (int)c->len;
    c->fmts[2] = 1; /* binary: the bytes as they are, no escaping */
    c->q = (struct pg_query){
        .fn = on_chunk,
        .sql = SQL_CHUNK,
        .nparams = 3,
        .values = c->vals,
        .lengths = c->lens,
        .formats = c->fmts,
        .timeout_ms = UPLOAD_TIMEOUT_MS,
        .fail_fast = true,
    };
    c->busy = true;
    u->refs++;
    pg_query_submit(u->pg, &c->q);
    u->fill = next;
    if (u->file_ended && c->len < u->cfg->upload_chunk)
        u->file_ended = false; /* that was the file's last piece */
    return true;
}

static void start_part(struct upload *u)
{
    const struct multipart_part *p = &u->mp.part;
    char msg[300];

    if (!p->has_filename) {
        if (strcmp(p->name, UPLOAD_JOB_PART)) {
            snprintf(msg, sizeof(msg),
                     "multipart field \"%.128s\" is neither \"job\" nor a file (a part with a "
                     "filename)",
                     p->name);
            refuse(u, 400, "invalid_upload", msg);
            return;
        }
        if (u->have_job || u->part == P_JOB) {
            refuse(u, 400, "invalid_upload", "two parts named \"job\"");
            return;
        }
        u->part = P_JOB;
        return;
    }
    if (!multipart_name_ok(p->name, strlen(p->name))) {
        snprintf(msg, sizeof(msg),
                 "file field name \"%.128s\" must be 1 to %d of A-Z a-z 0-9 . _ - (not . or ..)",
                 p->name, UPLOAD_NAME_MAX);
        refuse(u, 400, "invalid_upload", msg);
        return;
    }
    if (!strcmp(p->name, UPLOAD_JOB_PART)) {
        refuse(u, 400, "invalid_upload", "part \"job\" must be JSON, not a file");
        return;
    }
    if (!utf8_valid(p->filename, strlen(p->filename)) ||
        !utf8_valid(p->content_type, strlen(p->content_type))) {
        snprintf(msg, sizeof(msg), "file \"%s\": filename or Content-Type is not UTF-8", p->name);
        refuse(u, 400, "invalid_upload", msg);
        return;
    }
    for (unsigned i = 0; i < u->nfiles; i++)
        if (!strcmp(u->files[i].name, p->name)) {
            snprintf(msg, sizeof(msg), "two files named \"%s\"", p->name);
            refuse(u, 400, "invalid_upload", msg);
            return;
        }
    if (u->nfiles == u->cfg->upload_max_files) {
        snprintf(msg, sizeof(msg), "more than --upload-max-files (%u) files",
                 u->cfg->upload_max_files);
        refuse(u, 413, "payload_too_large", msg);
        return;
    }
    struct up_file *f = &u->files[u->nfiles++];
    memset(f, 0, sizeof(*f));
    strcpy(f->name, p->name);
    strcpy(f->filename, p->filename);
    strcpy(f->content_type, p->content_type[0] ? p->content_type : "application/octet-stream");
    u->row_vals[0] = f->name;
    u->row_vals[1] = f->filename;
    u->row_vals[2] = f->content_type;
    u->row_q = (struct pg_query){
        .fn = on_row,
        .sql = SQL_FILE_ROW,
        .nparams = 3,
        .values = u->row_vals,
        .timeout_ms = UPLOAD_TIMEOUT_MS,
        .fail_fast = true,
    };
    u->row_busy = true;
    u->refs++;
    pg_query_submit(u->pg, &u->row_q);
    u->part = P_FILE;
    u->file_ended = false;
}

static void take_data(struct upload *u, const char *p, size_t n)
{
    if (u->part == P_JOB) {
        if (u->job_len + n > u->cfg->max_body) {
            too_large(u, "--max-body-bytes for the job part", u->cfg->max_body);
            return;
        }
        memcpy(u->job + u->job_len, p, n);
        u->job_len += n;
        return;
    }
    struct up_file *f = &u->files[u->nfiles - 1];
    if (f->size + n > u->cfg->upload_max_file) {
        too_large(u, "--upload-max-file", u->cfg->upload_max_file);
        return;
    }
    f->size += n;
    memcpy(u->fill->data + u->fill->len, p, n);
    u->fill->len += n;
}

static size_t feed(struct upload *u, const char *data, size_t len, bool last)
{
    size_t off = 0;

    while (u->r) {
        if (!flush_ready(u))
            break; /* resumed by on_chunk / on_row */
        if (u->part_pending) {
            if (u->row_busy)
                break; /* resumed by on_row */
            u->part_pending = false;
            start_part(u);
            continue;
        }
        if (u->done) {
            off = len; /* epilogue */
            break;
        }
        size_t lim = len - off, c = 0;
        /* a file's bytes go to the filling chunk: never offer more than it
         * holds (a DATA piece is at most what is offered, plus the few
         * delimiter bytes the parser held back: the chunk has room) */
        if (u->part == P_FILE) {
            size_t room =
                u->fill->len >= u->cfg->upload_chunk ? 0 : u->cfg->upload_chunk - u->fill->len;
            if (lim > room)
                lim = room;
        }
        enum multipart_event ev = multipart_feed(&u->mp, data + off, lim, &c);
        off += c;
        u->total += c;
        switch (ev) {
        case MULTIPART_AGAIN:
            if (off == len)
                goto out;
            break;
        case MULTIPART_ERROR: {
            char msg[200];
            snprintf(msg, sizeof(msg), "malformed multipart body: %s", u->mp.error);
            refuse(u, 400, "invalid_upload", msg);
            return len;
        }
        case MULTIPART_PART:
            if (u->row_busy) {          /* the previous (empty) file's row: one at a time */
                u->part_pending = true; /* m->part stays valid: nothing more is fed */
                break;
            }
            start_part(u);
            break;
        case MULTIPART_DATA:
            take_data(u, u->mp.ev_data, u->mp.ev_len);
            break;
        case MULTIPART_PART_END:
            if (u->part == P_JOB)
                u->have_job = true;
            else if (u->part == P_FILE)
                u->file_ended = true;
            u->part = P_NONE;
            break;
        case MULTIPART_DONE:
            u->done = true;
            break;
        }
    }
out:
    if (u->r && last && off == len) {
        if (!u->done && multipart_finish(&u->mp) < 0) {
            char msg[200];
            snprintf(msg, sizeof(msg), "malformed multipart body: %s", u->mp.error);
            refuse(u, 400, "invalid_upload", msg);
            return len;
        }
        maybe_finish(u);
    }
    return off;
}

static size_t on_body(struct web_request *r, const char *data, size_t len, bool last)
{
    struct upload *u = r->async;
    u->refs++; /* a refusal inside must not free u under feed() */
    size_t took = feed(u, data, len, last);
    unref(u);
    return took;
}

static void on_peer_eof(struct web_request *r)
{
    struct upload *u = r->async;
    refuse(u, 400, "invalid_upload", "the client closed before sending the whole body");
}

void api_upload_enqueue(struct web_request *r)
{
    struct web_loop *wl = web_loop_of(r->loop);
    const struct config *cfg = wl->srv->cfg;
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    const struct http1_header *ct;
    int bl;

    if (!web_authorized(r))
        return;
    /* a malformed request is 400 whatever the backend */
    ct = http1_find_header(r->http, "content-type");
    bl = multipart_boundary(ct->value, ct->value_len, boundary, sizeof(boundary));
    if (bl <= 0) {
        web_respond_error(r, 400, "invalid_upload",
                          "Content-Type multipart/form-data needs a valid boundary parameter");
        return;
    }
    if (!wl->has_pg) {
        api_respond_unavailable(r, "uploads need DATABASE_URL");
        return;
    }
    if (r->http->content_length > cfg->upload_max_request) {
        char msg[160];
        snprintf(msg, sizeof(msg), "upload larger than --upload-max-request (%u bytes)",
                 cfg->upload_max_request);
        web_respond_error(r, 413, "payload_too_large", msg);
        return;
    }
    struct upload *u = xcalloc(1, sizeof(*u));
    u->r = r;
    u->cfg = cfg;
    u->pg = &wl->pg;
    u->refs = 1;
    multipart_init(&u->mp, boundary, (size_t)bl);
    u->job = xmalloc(cfg->max_body ? cfg->max_body : 1);
    u->files = xcalloc(cfg->upload_max_files, sizeof(*u->files));
    for (unsigned i = 0; i <= UPLOAD_INFLIGHT; i++) {
        u->chunk[i].u = u;
        /* room for the delimiter bytes a piece may carry past the limit */
        u->chunk[i].data = xmalloc(cfg->upload_chunk + MULTIPART_MAX_BOUNDARY + 4);
    }
    u->fill = &u->chunk[0];
    r->async = u;
    r->on_abort = on_abort;
    r->on_peer_eof = on_peer_eof;
    r->on_body = on_body;
}
