/*
 * http1_response.h - HTTP/1.1 response heads for a client (RFC 9112), pure.
 *
 * The counterpart of http1_parse_head() for what a server answers: the
 * status line, header fields, and how the body is framed (Content-Length,
 * chunked, or until the server closes). Field syntax is checked with the
 * request parser's own rules (http1.h); chunked bodies are decoded with
 * http1_chunked_decode(). No I/O, no allocation, no globals.
 */
#ifndef TRIREME_PROTO_HTTP1_RESPONSE_H
#define TRIREME_PROTO_HTTP1_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"

/* A response that is not HTTP/1.x as RFC 9112 writes it. */
#define HTTP1_E_BAD_RESPONSE (-502)

enum http1_resp_body {
    HTTP1_RESP_NONE = 0, /* 1xx, 204, 304, or the answer to HEAD */
    HTTP1_RESP_LENGTH,   /* content_length bytes follow the head */
    HTTP1_RESP_CHUNKED,  /* http1_chunked_decode() until the last chunk */
    HTTP1_RESP_CLOSE,    /* everything until the server closes */
};

struct http1_resp {
    int status;
    uint8_t minor_version;
    bool keep_alive; /* the connection may carry another request after this one */
    enum http1_resp_body body;
    uint64_t content_length; /* valid when body == HTTP1_RESP_LENGTH */
    const char *reason;      /* into the caller's buffer, not NUL-terminated */
    uint32_t reason_len;
    uint32_t head_len; /* bytes of the head including the empty line */
    uint32_t num_headers;
    struct http1_header *headers; /* caller-provided array */
    uint32_t headers_cap;         /* more fields than this: HTTP1_E_HEADERS_LARGE */
    const char *error;            /* static text naming the problem, on error */
};

/* Resume state: zero it (http1_resp_parser_init) for each response. The
 * buffer of each call starts at the response's first byte and holds at
 * least the bytes of the previous call. */
struct http1_resp_parser {
    uint32_t scanned; /* bytes known to hold no end of head */
};

void http1_resp_parser_init(struct http1_resp_parser *p);

/*
 * Parse the head at buf[0..len). head_request: the request was HEAD (no
 * body whatever the headers say). Returns HTTP1_OK with *r filled,
 * HTTP1_INCOMPLETE, HTTP1_E_HEADERS_LARGE (head over max_head bytes or more
 * fields than headers_cap) or HTTP1_E_BAD_RESPONSE, with r->error set.
 */
int http1_parse_response(struct http1_resp_parser *p, const char *buf, size_t len,
                         uint32_t max_head, bool head_request, struct http1_resp *r);

/* Case-insensitive lookup of the first field named name; NULL if absent. */
const struct http1_header *http1_resp_header(const struct http1_resp *r, const char *name);

#endif
