/*
 * api_files.c - GET /v1/jobs/{id}/files/{name}: a file uploaded with a job
 * (sql/010_files.sql), streamed out chunk by chunk.
 *
 * Either credential opens it: an API key (or JWT) with jobs:read, as every
 * GET of the API (pull workers fetch their jobs' files this way), or a
 * signed, expiring URL made by modules/jobs/upload_url.c (?expires=&sig=), which
 * needs no key; a bad signature or one past its expiry is 403, whatever
 * the job. An unknown job or file is 404.
 *
 * The answer's head goes out with the stored size as Content-Length and
 * the uploader's Content-Type (as an attachment, never sniffed, and
 * sandboxed: it is a client's bytes served from the API's origin); then
 * the chunks, one query each on the loop's pool, the next one asked for
 * only while less than two chunks wait to be sent (else when the
 * connection has drained): a download holds about two chunks in memory
 * whatever the file's size and however slow its client.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/log.h"
#include "kernel/pg.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/web/api_jobs.h"
#include "modules/jobs/upload_url.h"
#include "modules/queue/queue.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

#define FILES_TIMEOUT_MS 30000
#define FILES_CTYPE_MAX  256

#define SQL_FILE                                                                                   \
    "SELECT id, content_type, size FROM trireme.job_files WHERE job_id = $1 AND name = $2"
#define SQL_CHUNK "SELECT data FROM trireme.job_file_chunks WHERE file_id = $1 AND seq = $2"

struct download {
    struct web_request *r;
    struct pg_pool *pg;
    struct pg_query q;
    bool busy, waiting_drain;
    const char *vals[2];
    char job[UPLOAD_NAME_MAX + 1], name[UPLOAD_NAME_MAX + 1];
    char fid[24], seq[16];
    unsigned next_seq;
    uint64_t size, sent, chunk;
};

static void on_abort(struct web_request *r)
{
    struct download *d = r->async;
    if (d->busy)
        pg_query_abandon(d->pg, &d->q);
    free(d);
}

static void submit(struct download *d, const char *sql, int result_format, pg_query_fn fn)
{
    d->q = (struct pg_query){
        .fn = fn,
        .data = d,
        .sql = sql,
        .nparams = 2,
        .values = d->vals,
        .result_format = result_format,
        .timeout_ms = FILES_TIMEOUT_MS,
        .retry_safe = true,
        .fail_fast = true,
    };
    d->busy = true;
    pg_query_submit(d->pg, &d->q);
}

static void on_chunk(struct pg_query *q, PGresult *res, const char *err);

static void next_chunk(struct download *d)
{
    snprintf(d->seq, sizeof(d->seq), "%u", d->next_seq++);
    d->vals[0] = d->fid;
    d->vals[1] = d->seq;
    submit(d, SQL_CHUNK, 1, on_chunk);
}

static void on_drained(struct web_request *r)
{
    struct download *d = r->async;
    if (d->waiting_drain) {
        d->waiting_drain = false;
        next_chunk(d);
    }
}

/* The head is out: the only way left to say it failed is to close. */
static void cut_off(struct download *d, const char *why)
{
    LOG(LOG_WARN, "file download cut off", L_STR("job_id", d->job), L_STR("file", d->name),
        L_STR("error", why), L_INT("sent", (int64_t)d->sent), L_INT("size", (int64_t)d->size),
        L_STRN("request_id", d->r->id, d->r->id_len));
    web_respond_abort(d->r); /* on_abort frees d */
}

static void on_chunk(struct pg_query *q, PGresult *res, const char *err)
{
    struct download *d = q->data;
    d->busy = false;
    if (err) {
        cut_off(d, err);
        return;
    }
    if (PQntuples(res) != 1) {
        cut_off(d, "a chunk is missing (the job was deleted meanwhile?)");
        return;
    }
    size_t len = (size_t)PQgetlength(res, 0, 0);
    if (len == 0 || d->sent + len > d->size) {
        cut_off(d, "the stored chunks do not add up to the file's size");
        return;
    }
    struct web_request *r = d->r;
    d->sent += len;
    bool last = d->sent == d->size;
    if (web_respond_write(r, PQgetvalue(res, 0, 0), len))
        return; /* the connection is closing: on_abort follows */
    if (last) {
        free(d); /* answered: the request is no longer ours */
        return;
    }
    if (web_respond_pending(r) < 2 * d->chunk)
        next_chunk(d);
    else
        d->waiting_drain = true;
}

/* A Content-Type header value as stored, or a neutral one. */
static const char *safe_ctype(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= FILES_CTYPE_MAX)
        return "application/octet-stream";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
            return "application/octet-stream";
    return v;
}

static void not_found(struct web_request *r, const char *job, const char *name)
{
    char msg[2 * UPLOAD_NAME_MAX + 80];
    snprintf(msg, sizeof(msg), "job %s has no file named \"%s\" (or no such job)", job, name);
    web_respond_error(r, 404, "not_found", msg);
}

static void on_file(struct pg_query *q, PGresult *res, const char *err)
{
    struct download *d = q->data;
    struct web_request *r = d->r;
    d->busy = false;
    if (err) {
        LOG(LOG_WARN, "file lookup failed", L_STR("job_id", d->job), L_STR("file", d->name),
            L_STR("error", err), L_STRN("request_id", r->id, r->id_len));
        r->on_abort = NULL;
        api_respond_unavailable(r, "the database could not be read; retry later");
        free(d);
        return;
    }
    if (PQntuples(res) != 1) {
        r->on_abort = NULL;
        not_found(r, d->job, d->name);
        free(d);
        return;
    }
    snprintf(d->fid, sizeof(d->fid), "%s", PQgetvalue(res, 0, 0));
    d->size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    char extra[UPLOAD_NAME_MAX + 256];
    snprintf(extra, sizeof(extra),
             "Content-Disposition: attachment; filename=\"%s\"\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Content-Security-Policy: sandbox\r\n"
             "Cache-Control: private, no-store\r\n",
             d->name);
    r->on_drained = on_drained;
    if (!web_respond_begin(r, 200, safe_ctype(PQgetvalue(res, 0, 1)), d->size, extra)) {
        free(d); /* answered with the head alone (HEAD, an empty file), or the client is gone */
        return;
    }
    next_chunk(d);
}

/* A signed URL's query, when the request has one: true when it may go on
 * (valid signature, or no signature: the caller checks the key), false
 * after answering 403. *signed_ok: the signature let it in. */
static bool check_signed(struct web_request *r, const char *job, const char *name, bool *signed_ok)
{
    const struct config *cfg = web_loop_of(r->loop)->srv->cfg;
    char exp[32], sig[UPLOAD_SIG_HEX + 2];
    int he = web_query(r, "expires", exp, sizeof(exp));
    int hs = web_query(r, "sig", sig, sizeof(sig));
    *signed_ok = false;
    if (he == 0 && hs == 0)
        return true;
    if (he != 1 || hs != 1) {
        web_respond_error(r, 403, "invalid_signature",
                          "a signed file URL needs both expires and sig, as issued");
        return false;
    }
    int rc = upload_check_signature(cfg->upload_url_secret, strlen(cfg->upload_url_secret), job,
                                    name, exp, strlen(exp), sig, strlen(sig), (int64_t)time(NULL));
    if (rc == -2) {
        web_respond_error(r, 403, "expired_signature", "this signed file URL has expired");
        return false;
    }
    if (rc) {
        web_respond_error(r, 403, "invalid_signature",
                          "the signature does not match this file URL");
        return false;
    }
    *signed_ok = true;
    return true;
}

void api_job_file(struct web_request *r)
{
    struct web_loop *wl = web_loop_of(r->loop);
    const struct config *cfg = wl->srv->cfg;
    size_t jl = 0, nl = 0;
    const char *job = web_param(r, "id", &jl), *name = web_param(r, "name", &nl);
    char jbuf[UPLOAD_NAME_MAX + 1], nbuf[UPLOAD_NAME_MAX + 1];
    bool signed_ok;

    if (!job || !name || !multipart_name_ok(job, jl) || !multipart_name_ok(name, nl)) {
        web_respond_error(r, 404, "not_found", "no such file");
        return;
    }
    memcpy(jbuf, job, jl);
    jbuf[jl] = '\0';
    memcpy(nbuf, name, nl);
    nbuf[nl] = '\0';
    if (!check_signed(r, jbuf, nbuf, &signed_ok))
        return;
    if (!signed_ok && !web_authorized(r))
        return;
    if (!wl->has_pg) {
        if (!(queue_backend_of(cfg)->needs & QUEUE_NEEDS_PG))
            not_found(r, jbuf, nbuf); /* no uploads without a database: no files */
        else
            api_respond_unavailable(r, "files need DATABASE_URL");
        return;
    }
    struct download *d = xcalloc(1, sizeof(*d));
    d->r = r;
    d->pg = &wl->pg;
    d->chunk = cfg->upload_chunk;
    memcpy(d->job, jbuf, jl + 1);
    memcpy(d->name, nbuf, nl + 1);
    d->vals[0] = d->job;
    d->vals[1] = d->name;
    r->async = d;
    r->on_abort = on_abort;
    submit(d, SQL_FILE, 0, on_file);
}
