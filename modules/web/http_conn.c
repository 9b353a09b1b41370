/*
 * http_conn.c - one HTTP/1.1 connection: parse, dispatch, answer, repeat.
 *
 * States: HEAD (reading a request head), BODY (reading its body), HANDLING
 * (a handler owns the request). Requests are handled one at a time in
 * arrival order, so pipelined answers leave in order; answers given in one
 * pass go out in one send. Request bytes stay in c->in until answered; a
 * chunked body is decoded in place after the head, so it is contiguous.
 *
 * The head is parsed once per request. During the process() pass that
 * parsed it, hc->req and the loop's view array point into c->in, which
 * cannot move then. A request still in flight when the pass ends (c->in
 * may move as bytes arrive) keeps its head as offsets (head_keep: the
 * *_off members and hc->fields, a block of wl->field_pool), and
 * head_point() / head_view() rebuild the pointers when it is touched again.
 *
 * A multipart/form-data body for a stream route (web.h) is the exception:
 * its handler runs once the head is in, and stream_feed() hands it the
 * body's bytes as they arrive, cutting them out of c->in after the head;
 * when the handler takes less, reading pauses (conn_recv_pause) until it
 * calls web_stream_more(). Bodies as large as --upload-max-request thus
 * never sit in memory.
 *
 * process() is the only reader of c->in and never runs inside itself: an
 * asynchronous answer arms the `next` timer, and the loop runs process()
 * for what queued up behind it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/tls.h"
#include "kernel/conn.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/web/cors.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

enum http_state { ST_HEAD, ST_BODY, ST_HANDLING };

/* An offset that points nowhere (no query; the path is root_path). */
#define NO_OFF UINT32_MAX

/* The path of an absolute-form target that has none (see use_origin_path). */
static const char root_path[] = "/";

/* One header field of the request in flight, as offsets from its first byte. */
struct head_field {
    uint32_t name_off, name_len, value_off, value_len;
};

struct http_conn {
    struct conn c;    /* the kernel hands us &c (hc_of) */
    struct list link; /* in wl->conns */
    struct web_loop *wl;
    struct timer next; /* armed by an asynchronous answer: process() what queued */
    struct http1_parser parser;
    struct http1_request req; /* its pointers: see head_point() */
    struct http1_chunked chunked;
    struct web_request r;
    uint32_t method_off, target_off, path_off, query_off;
    uint32_t body_raw; /* raw bytes (head included) read so far */
    uint32_t body_out; /* decoded body end (head included) */
    uint8_t state;
    bool started;       /* bytes of the current request have arrived */
    bool continue_sent; /* 100 Continue already written */
    bool in_process;    /* process() runs: an answer needs no on_next */
    bool peer_eof;
    bool head_kept;            /* the head is in the offsets: it outlived its pass */
    bool stream_paused;        /* a streamed body's handler took less: recv paused */
    uint64_t stream_left;      /* a streamed body's bytes not yet taken by on_body */
    struct buf fields;         /* req.num_headers struct head_field */
    const char *route_pattern; /* matched, for the metrics' labels; NULL: none */
    const char *route_method;
    /* a streamed answer (web_respond_begin) in progress */
    bool resp_streaming, resp_keep;
    int resp_status;
    uint64_t resp_left, resp_len, resp_sent;
    uint32_t resp_used;
};

static struct http_conn *hc_of(struct conn *c)
{
    return container_of(c, struct http_conn, c);
}

static const struct config *cfg_of(struct http_conn *hc)
{
    return hc->wl->srv->cfg;
}

/* --- answering ---------------------------------------------------------- */

static void access_log(struct http_conn *hc, int status, uint64_t bytes)
{
    if (!cfg_of(hc)->access_log || !log_enabled(LOG_INFO))
        return;
    struct web_request *r = &hc->r;
    const struct http1_request *h = &hc->req;
    uint64_t us = (hc->c.loop->now_ns - r->start_ns) / 1000;
    LOG(LOG_INFO, "request", L_STRN("method", h->method, h->method_len),
        L_STRN("path", h->path, h->path_len), L_INT("status", status), L_INT("bytes", bytes),
        L_INT("duration_us", us), L_STRN("request_id", r->id, r->id_len));
}

static void reset_request(struct http_conn *hc)
{
    http1_parser_init(&hc->parser);
    memset(&hc->req, 0, sizeof(hc->req));
    hc->state = ST_HEAD;
    hc->started = false;
    hc->continue_sent = false;
    hc->body_raw = hc->body_out = 0;
    hc->r.on_abort = NULL;
    hc->r.on_peer_eof = NULL;
    hc->r.async = NULL;
    hc->r.on_body = NULL;
    hc->r.on_drained = NULL;
    hc->r.streaming = false;
    hc->resp_streaming = false;
    hc->stream_left = 0;
    hc->route_pattern = hc->route_method = NULL;
    if (hc->stream_paused) {
        hc->stream_paused = false;
        conn_recv_resume(&hc->c);
    }
    if (hc->head_kept) {
        buf_release(&hc->wl->field_pool, &hc->fields);
        hc->head_kept = false;
    }
}

/* The Date: value, rebuilt when the loop's cached wall clock moved on. */
static const char *http_date(struct web_loop *wl)
{
    if (wl->http_date_s != wl->loop->wall_s) {
        http1_format_date(wl->loop->wall_s, wl->http_date);
        wl->http_date_s = wl->loop->wall_s;
    }
    return wl->http_date;
}

/* --- the request head, kept as offsets ----------------------------------- */

/* Set hc->req's method, target, path and query from the offsets, for
 * wherever c->in holds the request now. */
static void head_point(struct http_conn *hc)
{
    const char *base = buf_head(&hc->c.in);
    struct http1_request *h = &hc->req;
    h->method = base + hc->method_off;
    h->target = base + hc->target_off;
    h->path = hc->path_off == NO_OFF ? root_path : base + hc->path_off;
    h->query = hc->query_off == NO_OFF ? NULL : base + hc->query_off;
}

/* head_point(), and the header fields into the loop's view array, which
 * holds the fields of the request whose handler runs now (see web.h: a
 * handler reads request bytes during its call only). */
static void head_view(struct http_conn *hc)
{
    const char *base = buf_head(&hc->c.in);
    struct http1_request *h = &hc->req;
    head_point(hc);
    h->headers = hc->wl->view;
    h->headers_cap = cfg_of(hc)->max_headers;
    for (uint32_t i = 0; i < h->num_headers; i++) {
        const struct head_field *f = (const struct head_field *)buf_head(&hc->fields) + i;
        h->headers[i] = (struct http1_header){.name = base + f->name_off,
                                              .value = base + f->value_off,
                                              .name_len = f->name_len,
                                              .value_len = f->value_len};
    }
}

/* RFC 9112 3.2.2: a server MUST accept the absolute-form. The parser
 * leaves path = target up to '?' ("http://host/healthz"), which no route
 * matches: route and log its path component instead ("/healthz", or "/"
 * when the URI has none). The parser guarantees an http(s):// prefix and
 * a non-empty authority for any target not starting with '/' or '*'. */
static void use_origin_path(struct http1_request *h)
{
    if (!h->path_len || h->path[0] == '/' || h->path[0] == '*')
        return;
    const char *end = h->path + h->path_len;
    const char *p = memchr(h->path, ':', h->path_len);
    if (!p || end - p < 3)
        return;
    const char *slash = memchr(p + 3, '/', (size_t)(end - (p + 3)));
    if (slash) {
        h->path_len = (uint32_t)(end - slash);
        h->path = slash;
    } else {
        h->path = root_path;
        h->path_len = 1;
    }
}

/* The request at data outlives this pass: keep its head (hc->req, header
 * fields in the view array) as offsets. false: out of memory. */
static bool head_keep(struct http_conn *hc, const char *data)
{
    struct http1_request *h = &hc->req;
    size_t size = (size_t)h->num_headers * sizeof(struct head_field);
    struct head_field *kept =
        size ? (struct head_field *)buf_reserve(&hc->wl->field_pool, &hc->fields, size) : NULL;
    if (size && !kept)
        return false;
    buf_commit(&hc->fields, size);
    hc->method_off = (uint32_t)(h->method - data);
    hc->target_off = (uint32_t)(h->target - data);
    hc->path_off = h->path == root_path ? NO_OFF : (uint32_t)(h->path - data);
    hc->query_off = h->query ? (uint32_t)(h->query - data) : NO_OFF;
    for (uint32_t i = 0; i < h->num_headers; i++) {
        const struct http1_header *f = &h->headers[i];
        kept[i] = (struct head_field){.name_off = (uint32_t)(f->name - data),
                                      .name_len = f->name_len,
                                      .value_off = (uint32_t)(f->value - data),
                                      .value_len = f->value_len};
    }
    hc->head_kept = true;
    return true;
}

uint32_t http_conn_fields_size(unsigned max_headers)
{
    return (uint32_t)(max_headers * sizeof(struct head_field));
}

/* Write status line, headers and body to c->out. */
static void write_response(struct http_conn *hc, int status, const char *ctype, const char *body,
                           uint64_t len, const char *extra, bool keep_alive)
{
    struct http1_response resp = {
        .status = status,
        .minor_version = hc->req.minor_version,
        .keep_alive = keep_alive,
        .head_only = hc->r.head,
        .date = http_date(hc->wl),
        .server = WEB_SERVER_NAME,
        .content_type = ctype,
        .content_length = len,
        .until_close = len == WEB_LEN_UNTIL_CLOSE,
        .request_id = hc->r.id_len ? hc->r.id : NULL,
        .request_id_len = hc->r.id_len,
        .extra = extra,
        .extra_len = extra ? (uint32_t)strlen(extra) : 0,
    };
    size_t need = 512 + resp.extra_len + resp.request_id_len;
    char *w = conn_write_reserve(&hc->c, need);
    size_t n = w ? http1_response_head(w, need, &resp) : 0;
    if (!n) {
        conn_close(&hc->c, -ENOMEM);
        return;
    }
    conn_write_commit(&hc->c, n);
    if (body && len && !hc->r.head && conn_write(&hc->c, body, len))
        conn_close(&hc->c, -ENOMEM);
}

/* The head (and body, unless streamed) of an answer: returns false when it
 * cannot be sent (the connection is closing). *keep, *used: for answered(). */
static bool respond_start(struct web_request *r, int status, const char *content_type,
                          const char *body, uint64_t len, const char *extra, bool *keep,
                          uint32_t *used)
{
    struct http_conn *hc = r->conn;
    /* A closing connection has released c->in, which holds the request,
     * and can send nothing: the answer is dropped. */
    if (hc->c.flags & CONN_CLOSING)
        return false;
    if (hc->head_kept)
        head_point(hc); /* the access log reads method and path */
    /* A half-closed peer is still answered; process() closes once all are. */
    *keep = hc->req.keep_alive && !hc->wl->draining && len != WEB_LEN_UNTIL_CLOSE;
    *used = hc->req.body_kind == HTTP1_BODY_CHUNKED
                ? hc->body_raw
                : hc->req.head_len + (uint32_t)hc->req.content_length;
    if (r->streaming) { /* taken pieces are gone from c->in already */
        uint32_t have = buf_size(&hc->c.in) - hc->req.head_len;
        *used = hc->req.head_len + (have < hc->stream_left ? have : (uint32_t)hc->stream_left);
        if (have < hc->stream_left)
            *keep = false; /* answered before the body's end: the rest is never read */
    }
    /* CORS headers join the handler's own (cors.c). */
    const struct config *cfg = hc->c.loop->srv->cfg;
    char both[CORS_HEADERS_MAX + 512];
    if (*cfg->cors_origins) {
        size_t n = cors_headers(cfg, &hc->req, cors_is_preflight(cfg, &hc->req), both);
        snprintf(both + n, sizeof(both) - n, "%s", extra ? extra : "");
        extra = both;
    }
    write_response(hc, status, content_type, body, len, extra, *keep);
    return true;
}

/* The answer is all written: log, count, and go on to the next request. */
static void answered(struct http_conn *hc, int status, uint64_t len, bool keep, uint32_t used)
{
    struct web_request *r = &hc->r;
    r->answered = true;
    access_log(hc, status, len);
    web_metrics_done(r, hc->route_pattern, hc->route_method, status);
    buf_consume(hc->c.loop->pool, &hc->c.in, used);
    reset_request(hc);
    if (!keep) {
        conn_close_after_send(&hc->c);
        return;
    }
    /* Inside process() its loop goes on to the next request; otherwise the
     * loop runs it (on_next) once this completion is done. */
    if (!hc->in_process)
        loop_timer_in(hc->c.loop, &hc->next, 0);
}

void web_respond(struct web_request *r, int status, const char *content_type, const char *body,
                 size_t len, const char *extra)
{
    struct http_conn *hc = r->conn;
    bool keep;
    uint32_t used;
    if (r->answered || hc->state != ST_HANDLING || hc->resp_streaming)
        return;
    if (!respond_start(r, status, content_type, body, len, extra, &keep, &used)) {
        r->answered = true;
        return;
    }
    answered(hc, status, len, keep, used);
}

bool web_respond_begin(struct web_request *r, int status, const char *content_type, uint64_t len,
                       const char *extra)
{
    struct http_conn *hc = r->conn;
    bool keep;
    uint32_t used;
    if (r->answered || hc->state != ST_HANDLING || hc->resp_streaming)
        return false;
    if (!respond_start(r, status, content_type, NULL, len, extra, &keep, &used)) {
        r->answered = true;
        return false;
    }
    if (!len || r->head) { /* nothing more to send */
        answered(hc, status, len, keep, used);
        conn_flush(&hc->c);
        return false;
    }
    hc->resp_streaming = true;
    hc->resp_keep = keep;
    hc->resp_used = used;
    hc->resp_status = status;
    hc->resp_len = hc->resp_left = len;
    hc->resp_sent = 0;
    conn_flush(&hc->c);
    return true;
}

void web_respond_end(struct web_request *r)
{
    struct http_conn *hc = r->conn;
    if (!hc->resp_streaming || r->answered || hc->resp_len != WEB_LEN_UNTIL_CLOSE)
        return;
    answered(hc, hc->resp_status, hc->resp_sent, false, hc->resp_used);
    conn_flush(&hc->c);
}

int web_respond_write(struct web_request *r, const char *data, size_t n)
{
    struct http_conn *hc = r->conn;
    if (!hc->resp_streaming || r->answered || n > hc->resp_left)
        return -EINVAL;
    if (hc->c.flags & CONN_CLOSING)
        return -EPIPE;
    if (conn_write(&hc->c, data, n)) {
        conn_close(&hc->c, -ENOMEM); /* on_abort follows */
        return -ENOMEM;
    }
    hc->resp_sent += n;
    if (hc->resp_len != WEB_LEN_UNTIL_CLOSE)
        hc->resp_left -= n;
    if (!hc->resp_left)
        answered(hc, hc->resp_status, hc->resp_len, hc->resp_keep, hc->resp_used);
    conn_flush(&hc->c);
    return 0;
}

void web_respond_abort(struct web_request *r)
{
    struct http_conn *hc = r->conn;
    conn_close(&hc->c, -EIO);
}

size_t web_respond_pending(const struct web_request *r)
{
    const struct http_conn *hc = r->conn;
    return buf_size(&hc->c.out) + buf_size(&hc->c.wire);
}

void web_respond_json(struct web_request *r, int status, const char *json, size_t len)
{
    web_respond(r, status, "application/json", json, len, NULL);
}

static size_t error_json(char *out, size_t cap, int status, const char *code, const char *message,
                         const char *id, size_t id_len)
{
    char msg[512];
    web_json_escape(msg, sizeof(msg), message, strlen(message));
    int n = snprintf(out, cap,
                     "{\"error\":\"%s\",\"message\":\"%s\",\"status\":%d,\"request_id\":\"%.*s\"}",
                     code, msg, status, (int)id_len, id);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static const char *code_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "headers_too_large";
    case 501:
        return "not_implemented";
    case 505:
        return "http_version_not_supported";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal_error" : "error";
    }
}

void web_respond_error_h(struct web_request *r, int status, const char *code, const char *message,
                         const char *extra)
{
    char body[1024];
    size_t n = error_json(body, sizeof(body), status, code ? code : code_for(status), message,
                          r->id, r->id_len);
    /* Every 503 says when to try again. */
    if (status == 503 && !extra)
        extra = "Retry-After: 1\r\n";
    web_respond(r, status, "application/json", body, n, extra);
}

void web_respond_error(struct web_request *r, int status, const char *code, const char *message)
{
    web_respond_error_h(r, status, code, message, NULL);
}

/* A request we refuse before any handler sees it: answer, then close. */
static void reject(struct http_conn *hc, int status, const char *message)
{
    struct web_request *r = &hc->r;
    if (!r->id_len)
        r->id_len = (uint8_t)snprintf(r->id, sizeof(r->id), "%016llx",
                                      (unsigned long long)loop_random(hc->c.loop));
    if (!r->start_ns)
        r->start_ns = hc->c.loop->now_ns;
    char body[1024];
    size_t n = error_json(body, sizeof(body), status, code_for(status), message, r->id, r->id_len);
    /* The head may be unparsed: answer as HTTP/1.1 with no HEAD semantics. */
    r->head = false;
    hc->req.minor_version = 1;
    write_response(hc, status, "application/json", body, n, NULL, false);
    web_metrics_done(r, hc->route_pattern, hc->route_method, status);
    if (cfg_of(hc)->access_log && log_enabled(LOG_INFO))
        LOG(LOG_INFO, "request rejected", L_INT("status", status), L_STR("reason", message),
            L_STRN("request_id", r->id, r->id_len), L_INT("fd", hc->c.fd));
    hc->state = ST_HANDLING; /* nothing more is read from this connection */
    conn_close_after_send(&hc->c);
}

/* --- dispatch ----------------------------------------------------------- */

static bool valid_request_id(const char *s, size_t n)
{
    if (n == 0 || n > WEB_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

/* Echo a valid X-Request-Id of the head just parsed into hc->req. */
static bool take_request_id(struct http_conn *hc)
{
    const struct http1_header *xid = http1_find_header(&hc->req, "x-request-id");
    if (!xid || !valid_request_id(xid->value, xid->value_len))
        return false;
    memcpy(hc->r.id, xid->value, xid->value_len);
    hc->r.id_len = (uint8_t)xid->value_len;
    hc->r.id[hc->r.id_len] = 0;
    return true;
}

static void point_body(struct http_conn *hc, const char *data)
{
    struct web_request *r = &hc->r;
    struct http1_request *h = &hc->req;
    r->body = h->body_kind == HTTP1_BODY_NONE ? NULL : data + h->head_len;
    r->body_len = h->body_kind == HTTP1_BODY_CHUNKED  ? hc->body_out - h->head_len
                  : h->body_kind == HTTP1_BODY_LENGTH ? (size_t)h->content_length
                                                      : 0;
}

void web_resume(struct web_request *r, web_handler_fn fn)
{
    struct http_conn *hc = r->conn;
    if (hc->state != ST_HANDLING || r->answered || (hc->c.flags & CONN_CLOSING))
        return;
    if (hc->head_kept)
        head_view(hc);
    point_body(hc, buf_head(&hc->c.in));
    int status; /* params point into the path: match again where it is now */
    web_route_match(hc->req.method, hc->req.method_len, hc->req.path, hc->req.path_len, r, &status,
                    NULL, 0);
    r->on_abort = NULL;
    r->async = NULL;
    fn(r);
}

int web_peer_ip(const struct web_request *r, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(r->conn->c.fd, (struct sockaddr *)&ss, &len))
        return -1;
    const void *a = ss.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    return inet_ntop(ss.ss_family, a, out, (socklen_t)cap) ? 0 : -1;
}

static void dispatch(struct http_conn *hc, const char *data)
{
    struct web_request *r = &hc->r;
    struct http1_request *h = &hc->req;
    if (hc->head_kept)
        head_view(hc); /* parsed in an earlier pass (its body came later) */
    hc->state = ST_HANDLING;
    r->http = h;
    r->answered = false;
    r->nparams = 0;
    r->head = h->method_len == 4 && !memcmp(h->method, "HEAD", 4);
    point_body(hc, data);
    if (!take_request_id(hc))
        r->id_len = (uint8_t)snprintf(r->id, sizeof(r->id), "%016llx",
                                      (unsigned long long)loop_random(hc->c.loop));
    conn_deadline(&hc->c, 0);

    /* A CORS preflight carries no credentials by design: answered here,
     * before routing and authentication. */
    if (cors_is_preflight(hc->c.loop->srv->cfg, h)) {
        web_respond(r, 204, "text/plain", "", 0, NULL);
        return;
    }
    int status = 0;
    char allow[128];
    const struct web_route *rt = web_route_match(h->method, h->method_len, h->path, h->path_len, r,
                                                 &status, allow, sizeof(allow));
    hc->route_pattern = rt ? rt->pattern : NULL;
    hc->route_method = rt ? rt->method : NULL;
    if (rt) {
        if (!hc->wl->gate || !hc->wl->gate(r, rt))
            rt->handler(r);
        return;
    }
    char msg[256], extra[160];
    snprintf(msg, sizeof(msg), "no route for %.*s %.*s", (int)h->method_len, h->method,
             (int)(h->path_len > 200 ? 200 : h->path_len), h->path);
    if (status == 405)
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    web_respond_error_h(r, status, NULL, msg, status == 405 ? extra : NULL);
}

/* --- streamed bodies (web.h: web_stream_route) ----------------------------- */

static void send_continue(struct http_conn *hc);

/* Hand the body bytes in c->in to on_body; taken ones are cut out of c->in
 * (after the head, which stays for the answer), so a streamed body holds
 * at most what arrived since on_body last ran. */
static void stream_feed(struct http_conn *hc)
{
    struct web_request *r = &hc->r;
    const struct config *cfg = cfg_of(hc);

    while (!r->answered && !conn_closing(&hc->c) && hc->stream_left > 0) {
        uint32_t have = buf_size(&hc->c.in) - hc->req.head_len;
        size_t n = have < hc->stream_left ? have : (size_t)hc->stream_left;
        if (n == 0) {
            send_continue(hc);
            return;
        }
        size_t took =
            r->on_body(r, buf_head(&hc->c.in) + hc->req.head_len, n, n == hc->stream_left);
        if (r->answered || conn_closing(&hc->c))
            return;
        if (took) {
            buf_cut(hc->c.loop->pool, &hc->c.in, hc->req.head_len, took);
            hc->stream_left -= took;
            conn_deadline(&hc->c, cfg->body_timeout_ms);
        }
        if (took < n) {
            /* The handler's store is behind, not the client: no body
             * deadline runs while recv is paused (the handler bounds its
             * own statements); web_stream_more arms it again. */
            if (!hc->stream_paused) {
                hc->stream_paused = true;
                conn_recv_pause(&hc->c);
                conn_deadline(&hc->c, 0);
            }
            return;
        }
    }
    if (hc->stream_left == 0)
        conn_deadline(&hc->c, 0); /* the whole body is in: the handler answers */
}

void web_stream_more(struct web_request *r)
{
    struct http_conn *hc = r->conn;
    if (hc->state != ST_HANDLING || !r->streaming || r->answered)
        return;
    if (hc->stream_paused) {
        hc->stream_paused = false;
        conn_recv_resume(&hc->c);
        conn_deadline(&hc->c, cfg_of(hc)->body_timeout_ms);
    }
    if (!timer_armed(&hc->next))
        loop_timer_in(hc->c.loop, &hc->next, 0); /* on_next feeds what is buffered */
}

static bool is_multipart(const struct http1_request *h)
{
    static const char mp[] = "multipart/form-data";
    const struct http1_header *ct = http1_find_header(h, "content-type");
    return ct && ct->value_len >= sizeof(mp) - 1 && !strncasecmp(ct->value, mp, sizeof(mp) - 1);
}

/* A multipart body for a stream route: its handler runs now, before the
 * body. Returns false when the request is not one (buffered as usual). */
static bool stream_start(struct http_conn *hc)
{
    struct web_request *r = &hc->r;
    struct http1_request *h = &hc->req;
    const struct web_stream_route *rt;

    if (!is_multipart(h))
        return false;
    r->nparams = 0;
    rt = web_stream_match(h->method, h->method_len, h->path, h->path_len, r);
    if (!rt)
        return false;
    hc->route_pattern = rt->pattern;
    hc->route_method = rt->method;
    if (h->body_kind != HTTP1_BODY_LENGTH) {
        take_request_id(hc);
        reject(hc, 411, "a multipart/form-data body needs a Content-Length");
        return true;
    }
    hc->state = ST_HANDLING;
    r->http = h;
    r->answered = false;
    r->head = false;
    r->body = NULL;
    r->body_len = 0;
    r->streaming = true;
    hc->stream_left = h->content_length;
    if (!take_request_id(hc))
        r->id_len = (uint8_t)snprintf(r->id, sizeof(r->id), "%016llx",
                                      (unsigned long long)loop_random(hc->c.loop));
    conn_deadline(&hc->c, cfg_of(hc)->body_timeout_ms);
    rt->handler(r);
    if (r->answered || conn_closing(&hc->c) || !r->on_body)
        return true;
    if (hc->stream_left == 0)
        r->on_body(r, "", 0, true);
    else
        stream_feed(hc);
    return true;
}

/* --- reading ------------------------------------------------------------ */

static void send_continue(struct http_conn *hc)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (hc->req.expect_continue && !hc->continue_sent && hc->req.minor_version == 1) {
        hc->continue_sent = true;
        conn_write(&hc->c, cont, sizeof(cont) - 1);
        conn_flush(&hc->c);
    }
}

static void process(struct http_conn *hc)
{
    const struct config *cfg = cfg_of(hc);
    hc->in_process = true;
    while (hc->state != ST_HANDLING && !conn_closing(&hc->c)) {
        struct buf *in = &hc->c.in;
        char *data = buf_head(in);
        uint32_t len = buf_size(in);
        if (!len) {
            if (!hc->started) {
                if (hc->wl->draining) {
                    conn_close(&hc->c, 0);
                    break;
                }
                conn_deadline(&hc->c, cfg->idle_timeout_ms);
            }
            break;
        }
        if (!hc->started) {
            hc->started = true;
            hc->r.start_ns = hc->c.loop->now_ns;
            hc->r.id_len = 0;
            conn_deadline(&hc->c, cfg->header_timeout_ms);
        }
        if (hc->state == ST_HEAD) {
            hc->req.headers = hc->wl->view;
            hc->req.headers_cap = cfg->max_headers;
            int rc = http1_parse_head(&hc->parser, data, len, &hc->wl->limits, &hc->req);
            if (rc == HTTP1_INCOMPLETE)
                break;
            if (rc < 0) {
                /* A head refused on its meaning still echoes a valid
                 * X-Request-Id (num_headers is 0 if it was incomplete). */
                take_request_id(hc);
                reject(hc, -rc, hc->req.error ? hc->req.error : "malformed request");
                break;
            }
            use_origin_path(&hc->req);
            if (hc->req.body_kind != HTTP1_BODY_NONE && stream_start(hc))
                break;
            /* The head parser's limit is the larger of the two body limits
             * (see web.c); a body that is not streamed has the smaller. */
            if (hc->req.body_kind == HTTP1_BODY_LENGTH && hc->req.content_length > cfg->max_body) {
                take_request_id(hc);
                reject(hc, 413, "request body larger than --max-body-bytes");
                break;
            }
            if (hc->req.body_kind == HTTP1_BODY_NONE) {
                dispatch(hc, data);
                continue;
            }
            hc->state = ST_BODY;
            hc->body_raw = hc->body_out = hc->req.head_len;
            if (hc->req.body_kind == HTTP1_BODY_CHUNKED)
                http1_chunked_init(&hc->chunked);
            conn_deadline(&hc->c, cfg->body_timeout_ms);
        }
        /* ST_BODY */
        if (hc->req.body_kind == HTTP1_BODY_LENGTH) {
            if ((uint64_t)len - hc->req.head_len < hc->req.content_length) {
                send_continue(hc);
                break;
            }
            dispatch(hc, data);
            continue;
        }
        size_t consumed = 0, produced = 0;
        const char *err = NULL;
        int rc =
            http1_chunked_decode(&hc->chunked, data + hc->body_raw, len - hc->body_raw,
                                 data + hc->body_out, &consumed, &produced, cfg->max_body, &err);
        hc->body_raw += (uint32_t)consumed;
        hc->body_out += (uint32_t)produced;
        if (rc == HTTP1_INCOMPLETE) {
            send_continue(hc);
            break;
        }
        if (rc < 0) {
            reject(hc, -rc, err ? err : "malformed chunked body");
            break;
        }
        dispatch(hc, data);
    }
    /* A request in flight outlives the pass (waiting for its body or for an
     * asynchronous answer): from here on c->in may move. A closing
     * connection (a rejected request, an EOF) runs no more handlers. */
    if (hc->state != ST_HEAD && !hc->head_kept && !conn_closing(&hc->c) &&
        !head_keep(hc, buf_head(&hc->c.in)))
        conn_close(&hc->c, -ENOMEM);
    /* The peer half-closed and every complete request it sent is answered:
     * nothing more can come, close once the answers are out. */
    if (hc->peer_eof && hc->state != ST_HANDLING)
        conn_close_after_send(&hc->c);
    hc->in_process = false;
}

static void on_read(struct conn *c)
{
    struct http_conn *hc = hc_of(c);
    if (hc->state == ST_HANDLING) {
        if (hc->r.streaming)
            stream_feed(hc);
        conn_flush(c);
        return; /* queued; process() runs again after the answer */
    }
    process(hc);
    conn_flush(c);
}

/* The loop's turn after an asynchronous answer: serve what queued up. */
static void on_next(struct loop *l, struct timer *t)
{
    struct http_conn *hc = container_of(t, struct http_conn, next);
    if (hc->state == ST_HANDLING && hc->r.streaming)
        stream_feed(hc);
    else
        process(hc);
    conn_flush(&hc->c);
}

static void on_eof(struct conn *c)
{
    struct http_conn *hc = hc_of(c);
    hc->peer_eof = true;
    if (hc->state == ST_HANDLING && !hc->r.answered) {
        if (hc->r.on_peer_eof) /* a long-poll: the client is gone */
            hc->r.on_peer_eof(&hc->r);
        return; /* half-closed client: still answer it */
    }
    if (timer_armed(&hc->next))
        return; /* requests may wait behind the last answer: on_next serves them, then closes */
    /* RFC 9112 9.6: a half-close is not an abort. Send the answers still
     * queued, then close; an unfinished request can never complete. */
    conn_close_after_send(c);
}

/* Everything written is sent: a streamed answer may write more. */
static void on_drained(struct conn *c)
{
    struct http_conn *hc = hc_of(c);
    if (hc->state == ST_HANDLING && hc->resp_streaming && !hc->r.answered && hc->r.on_drained)
        hc->r.on_drained(&hc->r);
}

static void on_timeout(struct conn *c)
{
    struct http_conn *hc = hc_of(c);
    if (hc->state == ST_HANDLING && hc->r.streaming && !hc->r.answered) {
        conn_close(c, -ETIMEDOUT); /* a streamed body stalled: on_abort cleans up */
        return;
    }
    if (hc->state == ST_HANDLING)
        return;
    if (hc->started)
        reject(hc, 408,
               hc->state == ST_HEAD ? "request headers not received in time"
                                    : "request body not received in time");
    else
        conn_close(c, 0); /* idle keep-alive connection */
}

static void http_conn_free(struct http_conn *hc)
{
    struct web_loop *wl = hc->wl;
    list_remove(&hc->link);
    wl->nconns--;
    server_client_gone(wl->srv);
    buf_release(&wl->field_pool, &hc->fields);
    free(hc);
}

static void on_close(struct conn *c, int err)
{
    struct http_conn *hc = hc_of(c);
    struct web_loop *wl = hc->wl;
    loop_timer_cancel(c->loop, &hc->next);
    if (hc->state == ST_HANDLING && !hc->r.answered && hc->r.on_abort)
        hc->r.on_abort(&hc->r);
    http_conn_free(hc);
    if (wl->draining && !wl->nconns && wl->on_drained)
        wl->on_drained(wl);
}

static const struct conn_handler http_handler = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_drained = on_drained,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

void http_conn_accept(struct web_loop *wl, int fd)
{
    const struct config *cfg = wl->srv->cfg;
    if (wl->draining) {
        close(fd);
        return;
    }
    if (!server_client_admit(wl->srv)) {
        wl->rejected++;
        if (wl->loop->now_ns - wl->last_reject_log_ns > 1000000000ull) {
            wl->last_reject_log_ns = wl->loop->now_ns;
            LOG(LOG_WARN, "connection refused: --max-connections reached",
                L_INT("max_connections", cfg->max_connections),
                L_INT("refused_total", wl->rejected));
        }
        close(fd);
        return;
    }
    struct http_conn *hc = xcalloc(1, sizeof(*hc));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_init(&hc->c, wl->loop, fd, &http_handler);
    hc->wl = wl;
    hc->next.fn = on_next;
    hc->r.conn = hc;
    hc->r.loop = wl->loop;
    reset_request(hc);
    list_insert(&wl->conns, &hc->link);
    wl->nconns++;
    if (tls_store_serves(wl->srv->tls) && conn_tls_server(&hc->c, wl->srv->tls) < 0) {
        conn_close(&hc->c, -EPROTO);
        return;
    }
    conn_start(&hc->c);
    conn_deadline(&hc->c, cfg->idle_timeout_ms);
}

void http_conn_drain(struct web_loop *wl)
{
    /* Idle connections go now; busy ones are closed after their answer
     * (web_respond sees wl->draining and sends Connection: close). One with
     * on_next pending may hold requests not yet parsed: it is busy. */
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wl->conns)
    {
        struct http_conn *hc = list_entry(pos, struct http_conn, link);
        if (hc->state == ST_HEAD && !hc->started && !timer_armed(&hc->next))
            conn_close(&hc->c, 0);
    }
}

void http_conn_free_all(struct web_loop *wl)
{
    /* Connections left after a forced stop (grace over): nothing completes
     * on a stopped loop, so they are freed here. */
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wl->conns)
    {
        struct http_conn *hc = list_entry(pos, struct http_conn, link);
        loop_timer_cancel(wl->loop, &hc->next);
        conn_abandon(&hc->c);
        http_conn_free(hc);
    }
}
