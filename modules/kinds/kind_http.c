/*
 * kind_http.c - running http kinds: one request per attempt through the
 * loop's kernel/http_client of that kind; see kind_http.h.
 *
 * Requests are pooled per loop (their body and header buffers grow to the
 * largest job and are kept). The clients keep connections alive, which
 * keeps the loop alive: once the worker drains and no request is left,
 * they are closed (from a timer: never from a done callback).
 */
#include "modules/kinds/kind_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "kernel/hmac.h"
#include "kernel/http_client.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/server.h"
#include "kernel/pg.h"
#include "kernel/xalloc.h"
#include "modules/jobs/upload_url.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind_exec_files.h"
#include "modules/kinds/kinds_file.h"
#include "modules/registry.h"
#include "modules/webhooks/standard.h"
#include "proto/base64.h"
#include "proto/http_url.h"
#include "proto/rfc3339.h"

#define HTTP_KIND_HEAD_MAX   1200  /* the Trireme-* and webhook-* lines of one request */
#define HTTP_KIND_SECRET_HEX 32    /* a hand-off token's secret: 128 random bits in hex */
#define HTTP_KIND_FILES_MS   10000 /* the lookup of a job's files ("files": true) */

struct http_loop {
    struct loop *loop;
    const struct kinds_file *f;
    struct http_client *cl; /* per declared kind (used by http kinds only) */
    bool *cl_up;
    struct list spare, busy; /* requests: free, in flight */
    unsigned inflight;
    bool draining, closed;
    struct timer close_timer;
};

struct http_req {
    struct list node;
    struct http_loop *hl;
    const struct declared_kind *dk;
    struct job_run *run;
    struct http_call call;
    struct dns_lookup lk;
    char *body;
    size_t body_cap, body_len;
    char *head;
    size_t head_cap, head_len;
    char url[HTTP_KIND_URL_MAX + 1];
    char secret[HTTP_KIND_SECRET_HEX + 1]; /* this attempt's token's, or "" (no hand-off) */
    struct pg_query fq;                    /* "files": the lookup of the job's files */
    const char *fvals[1];
    char fid[24];
};

static struct kinds_loop *kl_of(struct loop *l)
{
    return l->modules[MODULE_KINDS];
}

/* --- the request ------------------------------------------------------------ */

static void grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    *p = xrealloc(*p, c);
    *cap = c;
}

/* files: the job's [{name, filename, content_type, size, url, expires_at}],
 * or NULL for none. */
static int build_body(struct http_req *q, json_t *payload, json_t *files)
{
    struct job_run *r = q->run;
    char pre[256 + 2 * KINDS_NAME_MAX + 2 * 256];
    char kind[2 * KINDS_NAME_MAX + 8], queue[2 * 256 + 8];
    json_t *k = json_string(r->kind->name), *qu = json_string(r->queue ? r->queue : "");
    size_t kl = json_dumpb(k, kind, sizeof(kind), JSON_ENCODE_ANY);
    size_t ql = json_dumpb(qu, queue, sizeof(queue), JSON_ENCODE_ANY);
    json_decref(k);
    json_decref(qu);
    if (kl >= sizeof(kind) || ql >= sizeof(queue))
        return -1;
    int n = snprintf(pre, sizeof(pre),
                     "{\"id\":%lld,\"kind\":%.*s,\"queue\":%.*s,\"attempt\":%d,\"max_attempts\":%d,"
                     "\"payload\":",
                     (long long)r->id, (int)kl, kind, (int)ql, queue, r->attempt, r->max_attempts);
    size_t pl = json_dumpb(payload, NULL, 0, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!pl)
        pl = 4; /* null */
    size_t fl = files ? json_dumpb(files, NULL, 0, JSON_COMPACT) : 0;
    grow(&q->body, &q->body_cap, (size_t)n + pl + fl + sizeof(",\"files\":") + 2);
    memcpy(q->body, pre, (size_t)n);
    size_t w = payload ? json_dumpb(payload, q->body + n, pl, JSON_ENCODE_ANY | JSON_COMPACT) : 0;
    if (!w) {
        memcpy(q->body + n, "null", 4);
        w = 4;
    }
    w += (size_t)n;
    if (fl) {
        memcpy(q->body + w, ",\"files\":", sizeof(",\"files\":") - 1);
        w += sizeof(",\"files\":") - 1;
        w += json_dumpb(files, q->body + w, fl, JSON_COMPACT);
    }
    q->body[w] = '}';
    q->body_len = w + 1;
    return 0;
}

/* The previous attempt's HTTP status, from the head of its error as
 * on_done() writes it ("HTTP 503 ..."); 0 when it got no HTTP answer. */
static int prev_status(const struct job_run *r)
{
    const char *e = r->prev_error;
    if (r->attempt < 2 || strncmp(e, "HTTP ", 5))
        return 0;
    for (int i = 5; i < 8; i++)
        if (e[i] < '0' || e[i] > '9')
            return 0;
    return e[8] == ' ' ? atoi(e + 5) : 0;
}

static void build_head(struct http_req *q)
{
    const struct http_spec *s = &q->dk->http;
    struct job_run *r = q->run;
    int64_t now = r->loop->wall_s;
    uint64_t tmo = r->timeout_ms < s->timeout_ms ? r->timeout_ms : s->timeout_ms;
    grow(&q->head, &q->head_cap, HTTP_KIND_HEAD_MAX + s->headers_len + 1);
    char *o = q->head;
    size_t cap = q->head_cap;
    int n = snprintf(o, cap,
                     "Content-Type: application/json\r\nTrireme-Job-Id: %lld\r\n"
                     "Trireme-Job-Kind: %s\r\nTrireme-Job-Queue: %s\r\nTrireme-Job-Attempt: %d\r\n"
                     "Trireme-Job-Max-Attempts: %d\r\nTrireme-Retry-Count: %d\r\n"
                     "Trireme-Previous-Response: %d\r\nTrireme-Job-Deadline: %lld\r\n",
                     (long long)r->id, r->kind->name, r->queue ? r->queue : "", r->attempt,
                     r->max_attempts, r->attempt - 1, prev_status(r),
                     (long long)(now + (int64_t)(tmo / 1000) + 1));
    if (q->secret[0])
        n +=
            snprintf(o + n, cap - (size_t)n, "Trireme-Job-Token: %d.%s\r\n", r->attempt, q->secret);
    if (s->secret_len) {
        char id[32], ts[24];
        int il = snprintf(id, sizeof(id), "job_%lld", (long long)r->id);
        int tl = snprintf(ts, sizeof(ts), "%lld", (long long)now);
        char sig[STDWH_SIG_MAX];
        stdwh_sign(s->secret, s->secret_len, id, (size_t)il, ts, (size_t)tl, q->body, q->body_len,
                   sig);
        n += snprintf(o + n, cap - (size_t)n,
                      "webhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: v1,%s\r\n", id,
                      ts, sig);
    }
    if (s->headers_len) {
        memcpy(o + n, s->headers, s->headers_len);
        n += (int)s->headers_len;
    }
    q->head_len = (size_t)n;
}

/* --- the answer ------------------------------------------------------------- */

static const struct http1_header *header(const struct http_reply *a, const char *name)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < a->num_headers; i++)
        if (a->headers[i].name_len == n && !strncasecmp(a->headers[i].name, name, n))
            return &a->headers[i];
    return NULL;
}

static void maybe_close(struct http_loop *hl)
{
    if (hl->draining && !hl->inflight && !hl->closed)
        loop_timer_in(hl->loop, &hl->close_timer, 0);
}

static void req_put(struct http_req *q)
{
    struct http_loop *hl = q->hl;
    q->run = NULL;
    list_remove(&q->node);
    list_append(&hl->spare, &q->node);
    hl->inflight--;
    maybe_close(hl);
}

static void end(struct http_req *q, json_t *result, const char *error, bool final,
                int64_t not_before_ms)
{
    struct job_run *r = q->run;
    r->ctx = NULL;
    req_put(q);
    if (!error)
        job_finish(r, result, NULL, false);
    else if (final)
        job_finish(r, NULL, error, true);
    else if (not_before_ms > 0)
        job_retry_after(r, error, (uint64_t)not_before_ms);
    else
        job_finish(r, NULL, error, false);
}

static void on_done(struct http_call *call, int err, const struct http_reply *a)
{
    struct http_req *q = container_of(call, struct http_req, call);
    const struct http_spec *s = &q->dk->http;
    char msg[HTTP_KIND_ERROR_BODY + 300];
    if (!q->run) { /* the loop is gone (forced exit): nothing to report to */
        req_put(q);
        return;
    }
    if (err) {
        const char *why = err == -ETIMEDOUT ? "timed out"
                          : err == -EPROTO ? "TLS handshake or certificate refused, or not HTTP/1.1"
                          : err == -EMSGSIZE     ? "answer larger than max_result"
                          : err == -EHOSTUNREACH ? "no such host"
                                                 : strerror(-err);
        snprintf(msg, sizeof(msg), "%s %s: %s", s->method, q->url, why);
        end(q, NULL, msg, err == -EMSGSIZE || err == -EINVAL, 0);
        return;
    }
    const struct http1_header *nr = header(a, "trireme-no-retry");
    bool no_retry = nr && nr->value_len == 4 && !strncasecmp(nr->value, "true", 4);
    if (a->status == 202 && q->secret[0]) {
        /* The endpoint took the job over: it reports through the job
         * callbacks with the token it was sent, within the kind's lease. */
        struct job_run *r = q->run;
        char secret[sizeof(q->secret)];
        memcpy(secret, q->secret, sizeof(secret));
        r->ctx = NULL;
        req_put(q);
        job_hand_off(r, secret, s->lease_ms);
        return;
    }
    if (a->status >= 200 && a->status < 300) {
        json_t *res = NULL;
        if (a->body_len && a->body_len <= s->max_result) {
            res = json_loadb(a->body, a->body_len, JSON_DECODE_ANY, NULL);
            if (!res) {
                char *t = xmalloc(a->body_len + 1);
                memcpy(t, a->body, a->body_len);
                exec_utf8_clean(t, a->body_len);
                res = json_stringn(t, a->body_len);
                free(t);
            }
        }
        end(q, res, NULL, false, 0);
        return;
    }
    size_t bl = a->body_len < HTTP_KIND_ERROR_BODY ? a->body_len : HTTP_KIND_ERROR_BODY;
    int n = snprintf(msg, sizeof(msg), "HTTP %d %.*s", a->status,
                     (int)(a->reason_len > 60 ? 60 : a->reason_len), a->reason);
    if (bl) {
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": ");
        memcpy(msg + n, a->body, bl);
        msg[n + (int)bl] = 0;
        exec_utf8_clean(msg + n, bl);
    }
    if (a->status == 429 || a->status == 503) {
        const struct http1_header *ra = header(a, "retry-after");
        int64_t ms = ra ? http_retry_after_ms(ra->value, ra->value_len, q->hl->loop->wall_s) : -1;
        end(q, NULL, msg, no_retry, ms);
        return;
    }
    end(q, NULL, msg, no_retry || a->status < 500, 0);
}

static void send_req(struct http_req *q)
{
    const struct http_spec *s = &q->dk->http;
    struct job_run *r = q->run;
    q->call = (struct http_call){
        .method = s->method,
        .url = q->url,
        .headers = q->head,
        .headers_len = q->head_len,
        .body = q->body,
        .body_len = q->body_len,
        .timeout_ms = r->timeout_ms < s->timeout_ms ? r->timeout_ms : s->timeout_ms,
        .done = on_done,
    };
    http_call_start(&q->hl->cl[q->dk->index], &q->call);
}

/* The generic kind: every address the name resolves to must be allowed; the
 * client's own lookup then hits the same cached answer. */
static void on_checked(struct dns_lookup *lk, int err, const struct dns_addrs *addrs)
{
    struct http_req *q = container_of(lk, struct http_req, lk);
    char msg[HTTP_KIND_URL_MAX + 200];
    if (!q->run) {
        req_put(q);
        return;
    }
    if (err) {
        snprintf(msg, sizeof(msg), "%s: cannot resolve its host (%s)", q->url, strerror(-err));
        end(q, NULL, msg, false, 0);
        return;
    }
    for (int i = 0; i < addrs->n; i++)
        if (!http_addr_allowed(&q->dk->http, (const struct sockaddr *)&addrs->addr[i])) {
            snprintf(msg, sizeof(msg),
                     "%s: refused: its host resolves to a private or loopback address not "
                     "listed in --http-allow-hosts",
                     q->url);
            LOG(LOG_WARN, "http kind: request refused (SSRF guard)", L_INT("job_id", q->run->id),
                L_STR("url", q->url));
            end(q, NULL, msg, true, 0);
            return;
        }
    send_req(q);
}

static int generic_url(json_t *payload, const struct http_spec *s, struct http_url *u, char *msg,
                       size_t cap)
{
    const char *url = json_string_value(json_object_get(payload, "url"));
    const char *why;
    if (!url || strlen(url) > HTTP_KIND_URL_MAX || http_url_parse(url, strlen(url), u, &why)) {
        snprintf(msg, cap,
                 "payload field 'url': must be an http:// or https:// URL of at most %u "
                 "characters",
                 HTTP_KIND_URL_MAX);
        return -1;
    }
    if (!http_host_allowed(s, u->host, u->host_len)) {
        snprintf(msg, cap, "payload field 'url': host '%.*s' is not in --http-allow-hosts",
                 (int)(u->host_len > 100 ? 100 : u->host_len), u->host);
        return -1;
    }
    return 0;
}

int http_generic_validate(json_t *payload, char *msg, size_t cap)
{
    const struct job_kind *k = job_kind_find(HTTP_KIND_GENERIC, strlen(HTTP_KIND_GENERIC));
    struct http_url u;
    if (!k)
        return 0;
    return generic_url(payload, &declared_kind_of(k)->http, &u, msg, cap);
}

/* The job's files as the body lists them, each with its signed URL. */
static json_t *files_json(struct http_req *q, PGresult *res)
{
    const struct config *cfg = q->hl->loop->srv->cfg;
    int64_t expires = q->hl->loop->wall_s + (int64_t)(cfg->upload_url_ttl_ms / 1000);
    char id[24], path[UPLOAD_URL_MAX], when[40];
    snprintf(id, sizeof(id), "%lld", (long long)q->run->id);
    rfc3339_format_s(expires, when, sizeof(when));
    size_t base = strlen(cfg->public_url);
    while (base && cfg->public_url[base - 1] == '/')
        base--;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 1); /* SQL_JOB_FILES' columns */
        if (!upload_signed_path(cfg->upload_url_secret, strlen(cfg->upload_url_secret), id, name,
                                expires, path, sizeof(path)))
            continue; /* a name uploads never accept: not stored */
        size_t pl = strlen(path);
        char *url = xmalloc(base + pl + 1);
        memcpy(url, cfg->public_url, base);
        memcpy(url + base, path, pl + 1);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "name", name,
                                              "filename", PQgetvalue(res, i, 2), "content_type",
                                              PQgetvalue(res, i, 3), "size",
                                              (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10),
                                              "url", url, "expires_at", when));
        free(url);
    }
    return list;
}

static void on_files(struct pg_query *pq, PGresult *res, const char *err)
{
    struct http_req *q = container_of(pq, struct http_req, fq);
    if (!q->run) {
        req_put(q);
        return;
    }
    if (err) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot list the job's files: %s", err);
        end(q, NULL, msg, false, 0);
        return;
    }
    json_t *files = PQntuples(res) ? files_json(q, res) : NULL;
    int bad = build_body(q, q->run->payload, files);
    json_decref(files);
    if (bad) {
        end(q, NULL, "cannot encode the request body", true, 0);
        return;
    }
    build_head(q);
    send_req(q);
}

/* "files": true: one indexed lookup of the job's files before the request
 * (kinds parse guarantees such a kind has its own url). */
static void list_files(struct http_req *q)
{
    snprintf(q->fid, sizeof(q->fid), "%lld", (long long)q->run->id);
    q->fvals[0] = q->fid;
    q->fq = (struct pg_query){
        .fn = on_files,
        .sql = SQL_JOB_FILES,
        .nparams = 1,
        .values = q->fvals,
        .timeout_ms = HTTP_KIND_FILES_MS,
        .retry_safe = true,
    };
    pg_query_submit(q->run->pg, &q->fq);
}

void http_kind_start(struct job_run *r)
{
    struct kinds_loop *kl = kl_of(r->loop);
    struct http_loop *hl = kl ? kl->http : NULL;
    const struct declared_kind *dk = declared_kind_of(r->kind);
    if (!hl || !hl->cl_up[dk->index] || hl->closed) {
        job_finish(r, NULL, "http kinds are not set up on this loop", false);
        return;
    }
    struct http_req *q;
    if (!list_empty(&hl->spare)) {
        q = list_entry(hl->spare.next, struct http_req, node);
        list_remove(&q->node);
    } else {
        q = xcalloc(1, sizeof(*q));
    }
    q->hl = hl;
    q->dk = dk;
    q->run = r;
    list_append(&hl->busy, &q->node);
    hl->inflight++;
    char msg[HTTP_KIND_URL_MAX + 200];
    json_t *payload = r->payload;
    struct http_url u;
    if (!dk->http.url) {
        if (generic_url(r->payload, &dk->http, &u, msg, sizeof(msg))) {
            end(q, NULL, msg, true, 0);
            return;
        }
        snprintf(q->url, sizeof(q->url), "%s",
                 json_string_value(json_object_get(r->payload, "url")));
        payload = json_object_get(r->payload, "payload");
    } else {
        snprintf(q->url, sizeof(q->url), "%s", dk->http.url);
    }
    r->ctx = q;
    q->secret[0] = 0;
    if (job_can_hand_off(r)) {
        unsigned char raw[HTTP_KIND_SECRET_HEX / 2];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            abort(); /* the kernel's CSPRNG never fails once booted */
        for (size_t b = 0; b < sizeof(raw); b++)
            snprintf(q->secret + 2 * b, 3, "%02x", raw[b]);
    }
    if (dk->http.files && exec_files_possible(r)) {
        list_files(q);
        return;
    }
    if (build_body(q, payload, NULL)) {
        end(q, NULL, "cannot encode the request body", true, 0);
        return;
    }
    build_head(q);
    if (!dk->http.url) {
        char host[256];
        snprintf(host, sizeof(host), "%.*s", (int)(u.host_len > 255 ? 255 : u.host_len), u.host);
        q->lk = (struct dns_lookup){.fn = on_checked};
        dns_resolve(&hl->cl[dk->index].dns, host, &q->lk);
        return;
    }
    send_req(q);
}

/* --- per loop ----------------------------------------------------------------- */

static void on_close_timer(struct loop *l, struct timer *t)
{
    (void)l;
    struct http_loop *hl = container_of(t, struct http_loop, close_timer);
    if (hl->closed || hl->inflight)
        return;
    hl->closed = true;
    for (unsigned i = 0; i < hl->f->n; i++)
        if (hl->cl_up[i])
            http_client_close(&hl->cl[i]);
}

struct http_loop *http_loop_new(struct loop *l, const struct kinds_file *f)
{
    bool any = false;
    for (unsigned i = 0; i < f->n; i++)
        any = any || f->v[i].type == KIND_TYPE_HTTP;
    if (!any)
        return NULL;
    struct http_loop *hl = xcalloc(1, sizeof(*hl));
    hl->loop = l;
    hl->f = f;
    hl->cl = xcalloc(f->n, sizeof(*hl->cl));
    hl->cl_up = xcalloc(f->n, sizeof(*hl->cl_up));
    hl->close_timer.fn = on_close_timer;
    list_init(&hl->spare);
    list_init(&hl->busy);
    unsigned loops = l->srv ? (unsigned)l->srv->nloops : 1;
    for (unsigned i = 0; i < f->n; i++) {
        const struct declared_kind *d = &f->v[i];
        if (d->type != KIND_TYPE_HTTP)
            continue;
        unsigned c = d->http.concurrency / loops + (d->http.concurrency % loops > (unsigned)l->id);
        struct http_client_limits lim = {
            .connect_timeout_ms = HTTP_CLIENT_CONNECT_TIMEOUT_MS,
            .timeout_ms = d->http.timeout_ms,
            .max_response = d->http.max_result + HTTP_CLIENT_MAX_HEAD,
            .max_per_origin = c ? c : 1,
            .idle_ms = HTTP_CLIENT_IDLE_MS,
        };
        if (http_client_init(&hl->cl[i], l, l->srv ? l->srv->tls : NULL, &lim) == 0)
            hl->cl_up[i] = true;
        else
            LOG(LOG_ERROR, "http kind: cannot set up its client", L_STR("kind", d->name));
    }
    return hl;
}

void http_loop_drain(struct http_loop *hl)
{
    if (!hl)
        return;
    hl->draining = true;
    maybe_close(hl);
}

/* After the loop ended: what still waits is forgotten (the worker frees its
 * runs itself); a forced exit may leave connections to the process's end. */
void http_loop_free(struct http_loop *hl)
{
    if (!hl)
        return;
    struct list *n;
    list_for_each(n, &hl->busy) list_entry(n, struct http_req, node)->run = NULL;
    if (!hl->closed) {
        hl->closed = true;
        hl->draining = false; /* no close timer on an ended loop */
        for (unsigned i = 0; i < hl->f->n; i++)
            if (hl->cl_up[i])
                http_client_close(&hl->cl[i]);
    }
    while (!list_empty(&hl->spare)) {
        struct http_req *q = list_entry(hl->spare.next, struct http_req, node);
        list_remove(&q->node);
        free(q->body);
        free(q->head);
        free(q);
    }
    if (!hl->inflight) {
        free(hl->cl);
        free(hl->cl_up);
        free(hl);
    }
}
