/*
 * web.h - the web role: HTTP/1.1 on the kernel's connections, a router,
 * and the API that route handlers use to answer.
 *
 * A handler is called once per request with a struct web_request. It
 * answers with web_respond*() before returning (synchronous) or keeps the
 * pointer and answers later from another completion (asynchronous; then it
 * MUST set on_abort, which is called instead if the connection dies first).
 * Request bytes (headers, body, params) are valid only during the handler
 * call: an asynchronous handler copies what it needs. Responses on one
 * connection always leave in request order.
 */
#ifndef TRIREME_MODULES_WEB_H
#define TRIREME_MODULES_WEB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"

struct loop;
struct http_conn;

#define WEB_MAX_PARAMS     8
#define WEB_REQUEST_ID_MAX 64
#define READYZ_TIMEOUT_MS  5000 /* /readyz's probe of a store whose state is unknown */
#define WEB_SERVER_NAME    "trireme"

struct web_param {
    const char *name;
    const char *value;
    uint32_t name_len, value_len;
};

struct web_request {
    struct http_conn *conn;
    struct loop *loop;
    const struct http1_request *http;
    const char *body;
    size_t body_len;
    struct web_param params[WEB_MAX_PARAMS];
    unsigned nparams;
    char id[WEB_REQUEST_ID_MAX + 1];
    uint8_t id_len;
    bool head; /* HEAD: answer as GET, send no body */
    bool answered;
    uint64_t start_ns;
    void (*on_abort)(struct web_request *r);
    /* Optional: the peer half-closed while this request is held. Most
     * handlers still answer (a half-close is not an abort); a long-poll
     * takes it as its client gone and answers at once. */
    void (*on_peer_eof)(struct web_request *r);
    void *async; /* the asynchronous handler's own state */
    /* Streamed bodies only (see web_stream_route): each piece of the body
     * as it arrives; returns the bytes taken (fewer: reading pauses until
     * web_stream_more). last: the piece reaches the body's end. */
    size_t (*on_body)(struct web_request *r, const char *data, size_t len, bool last);
    bool streaming;
    /* Streamed answers only (web_respond_begin): everything written so far
     * has been sent; write more. Optional. */
    void (*on_drained)(struct web_request *r);
};

typedef void (*web_handler_fn)(struct web_request *r);

struct web_route {
    const char *method;  /* "GET", "POST", ... (GET also serves HEAD) */
    const char *pattern; /* "/v1/jobs/{id}": {name} matches one segment */
    web_handler_fn handler;
};

/*
 * Streamed request bodies (uploads). A route in router.c's stream table is
 * matched when a request's head is complete and its Content-Type is
 * multipart/form-data: its handler runs at once with r->body NULL and
 * r->streaming set, and sets r->on_body to take the body in pieces, so the
 * body is never held whole. The handler answers with web_respond* at any
 * time; an answer before the body's end closes the connection after it.
 */
struct web_stream_route {
    const char *method, *pattern;
    web_handler_fn handler;
};
const struct web_stream_route *web_stream_match(const char *method, size_t method_len,
                                                const char *path, size_t path_len,
                                                struct web_request *r);
/* on_body took less than it was given: call this when it can take more. */
void web_stream_more(struct web_request *r);

/* Answer. extra: verbatim "Name: value\r\n" lines, or NULL. */
void web_respond(struct web_request *r, int status, const char *content_type, const char *body,
                 size_t len, const char *extra);
void web_respond_json(struct web_request *r, int status, const char *json, size_t len);
/* {"error":code,"message":message,"status":N,"request_id":id} */
void web_respond_error(struct web_request *r, int status, const char *code, const char *message);

/*
 * Streamed answers (files): web_respond_begin() sends the status line and
 * headers with Content-Length len, then the handler writes exactly len
 * bytes with web_respond_write(), in pieces, as it gets them; the answer is
 * complete with the last byte (a HEAD request or len 0: at once; then,
 * or when the connection is closing, web_respond_begin returns false and
 * the request is no longer the handler's, on_abort included). Until
 * then on_abort is called if the connection dies. A handler bounds its
 * memory by writing the next piece only while web_respond_pending() is
 * small, else from r->on_drained. web_respond_write: 0, -EINVAL (more than
 * len, or no streamed answer), -EPIPE or -ENOMEM (the connection is
 * closing; on_abort follows).
 */
bool web_respond_begin(struct web_request *r, int status, const char *content_type, uint64_t len,
                       const char *extra);
/* len for an answer whose end is the connection's close (an event
 * stream): written piece by piece like the others, ended by
 * web_respond_end(), which closes the connection once all is sent. */
#define WEB_LEN_UNTIL_CLOSE UINT64_MAX
void web_respond_end(struct web_request *r);
int web_respond_write(struct web_request *r, const char *data, size_t n);
/* Bytes written and not yet sent. */
size_t web_respond_pending(const struct web_request *r);
/* A streamed answer cannot be completed: close the connection (the client
 * sees fewer bytes than Content-Length said); on_abort follows. */
void web_respond_abort(struct web_request *r);

void web_respond_error_h(struct web_request *r, int status, const char *code, const char *message,
                         const char *extra);

/* Path parameter by name, or NULL (value_len via *len). */
const char *web_param(const struct web_request *r, const char *name, size_t *len);

/* Router (router.c). Returns the route, or NULL with *status 404 or 405
 * (then allow[] lists the methods the path has, "GET, HEAD, POST"). */
const struct web_route *web_route_match(const char *method, size_t method_len, const char *path,
                                        size_t path_len, struct web_request *r, int *status,
                                        char *allow, size_t allow_cap);

/* Query parameter `name`, percent-decoded into out (NUL-terminated).
 * Returns 1 when present, 0 when absent, -1 when too long or malformed. */
int web_query(const struct web_request *r, const char *name, char *out, size_t cap);

/* Call fn for a request that was held (after an asynchronous check), with
 * r->http, body and params pointing at where its bytes are now. */
void web_resume(struct web_request *r, web_handler_fn fn);
/* The client's address as text. 0 or -1. */
int web_peer_ip(const struct web_request *r, char *out, size_t cap);

/* auth.c: true when the request carries a valid API key; otherwise the
 * 401/403 answer has been sent. */
bool web_authorized(struct web_request *r);
/* auth.c: true when the request carries a valid credential, whatever its
 * scopes, which are written space-separated into scopes (AUTH_SCOPES_MAX
 * bytes, auth_jwt.h; "admin" for a key without scopes or with
 * --insecure-no-auth); otherwise the 401/403 answer has been sent. */
bool web_credential(struct web_request *r, char *scopes);

/* etag.c: the request's If-None-Match names etag (a quoted strong ETag),
 * so a 304 may answer it. */
bool web_etag_matches(const struct web_request *r, const char *etag);

/* metrics.c: count an answered request under its route pattern (NULL:
 * no route matched), method and status. */
void web_metrics_done(const struct web_request *r, const char *pattern, const char *method,
                      int status);

/* JSON string escaping into dst (NUL-terminated, truncated to fit). */
size_t web_json_escape(char *dst, size_t cap, const char *s, size_t n);
/* The request's body as JSON (duplicate keys refused), or NULL after a 400
 * invalid_json that says where the text went wrong. */
json_t *web_json_body(struct web_request *r);

#endif
