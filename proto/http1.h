/*
 * http1.h - HTTP/1.1 request parsing and response heads (RFC 9112), pure.
 *
 * No I/O, no clocks, no allocation, no globals: the caller owns every
 * struct and every byte. Three pieces:
 *
 *   1. http1_parse_head(): an incremental, resumable parser of the request
 *      line and header fields. Call it each time more bytes arrived, with the
 *      whole buffer so far; it keeps a resume offset in struct http1_parser
 *      so the total work over a request is linear in its size, even when the
 *      bytes arrive one at a time. Errors are reported as soon as the bad
 *      byte is present, not only when the head is complete.
 *   2. http1_chunked_decode(): a resumable chunked-body decoder that may
 *      decode in place (dst <= src).
 *   3. http1_response_head(): writes a status line and header block.
 *
 * Strictness: a request that RFC 9112 says MUST be rejected, or that a
 * smuggling-aware server SHOULD reject, is rejected (see http1.c).
 */
#ifndef TRIREME_PROTO_HTTP1_H
#define TRIREME_PROTO_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes. Negative values other than INCOMPLETE are HTTP statuses. */
#define HTTP1_OK              0
#define HTTP1_INCOMPLETE      (-1)
#define HTTP1_E_BAD_REQUEST   (-400)
#define HTTP1_E_BODY_LARGE    (-413)
#define HTTP1_E_URI_LONG      (-414)
#define HTTP1_E_HEADERS_LARGE (-431)
#define HTTP1_E_NOT_IMPL      (-501) /* a transfer coding we do not know */
#define HTTP1_E_VERSION       (-505)

/* Defaults of the named limits (flags in kernel/config.c). */
#define HTTP1_DEFAULT_MAX_HEAD    (16u * 1024u)
#define HTTP1_DEFAULT_MAX_URI     (8u * 1024u)
#define HTTP1_DEFAULT_MAX_HEADERS 100u
#define HTTP1_DEFAULT_MAX_BODY    (1024u * 1024u)

struct http1_limits {
    uint32_t max_head;    /* request line + headers + final CRLF: 431 beyond */
    uint32_t max_uri;     /* request-target length: 414 beyond */
    uint32_t max_headers; /* header field count: 431 beyond; <= headers_cap */
    uint64_t max_body;    /* decoded body length: 413 beyond */
};

struct http1_header {
    const char *name;  /* not NUL-terminated; points into the caller's buffer */
    const char *value; /* leading/trailing OWS stripped */
    uint32_t name_len;
    uint32_t value_len;
};

enum http1_body_kind {
    HTTP1_BODY_NONE = 0,
    HTTP1_BODY_LENGTH,  /* content_length bytes follow the head */
    HTTP1_BODY_CHUNKED, /* use http1_chunked_decode() */
};

struct http1_request {
    const char *method;
    const char *target; /* request-target as sent */
    const char *path;   /* target up to '?' */
    const char *query;  /* after '?', or NULL */
    uint32_t method_len, target_len, path_len, query_len;
    uint8_t minor_version; /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    bool keep_alive;       /* after Connection: and version defaults */
    bool expect_continue;  /* Expect: 100-continue */
    bool has_host;
    enum http1_body_kind body_kind;
    uint64_t content_length; /* valid when body_kind == HTTP1_BODY_LENGTH */
    uint32_t head_len;       /* bytes of the head including the empty line */
    uint32_t num_headers;
    struct http1_header *headers; /* caller-provided array */
    uint32_t headers_cap;
    const char *error; /* static string naming the problem, on error */
};

/*
 * Resumable parser state. Zero it (http1_parser_init) before the first
 * call for each request. The buffer passed on each call MUST start at the
 * same request's first byte and MUST contain at least the bytes of the
 * previous call (it may have moved in memory: only offsets are kept).
 */
struct http1_parser {
    uint32_t scanned;  /* bytes of complete lines already validated */
    uint32_t line_no;  /* lines validated so far (0: request line next) */
    uint32_t nheaders; /* header fields seen */
    uint8_t state;
    /* Added so that bytes arriving one at a time cost O(1) each: */
    uint32_t pos;  /* bytes validated so far, including part of an incomplete line */
    uint32_t mark; /* request line: offset where the target (then the version) starts */
};

void http1_parser_init(struct http1_parser *p);

/*
 * Parse the head at buf[0..len). Leading empty lines (CRLF) before the
 * request line are skipped as RFC 9112 2.2 allows (at most a few).
 * Returns HTTP1_OK with *req filled (head_len set), HTTP1_INCOMPLETE, or a
 * negative HTTP status with req->error set. req->headers/headers_cap MUST
 * be set by the caller; the rest of *req is written by the parser.
 */
int http1_parse_head(struct http1_parser *p, const char *buf, size_t len,
                     const struct http1_limits *lim, struct http1_request *req);

/* Case-insensitive header lookup; returns NULL when absent. */
const struct http1_header *http1_find_header(const struct http1_request *req, const char *name);

/* Chunked transfer decoding (RFC 9112 7.1), trailers accepted and dropped. */
struct http1_chunked {
    uint64_t chunk_left; /* data bytes left in the current chunk */
    uint64_t total;      /* decoded bytes so far */
    uint32_t line_len;   /* bytes of the size/trailer line so far */
    uint8_t state;
    uint8_t digits;
};

void http1_chunked_init(struct http1_chunked *d);

/*
 * Decode src[0..src_len) into dst. dst may equal src or lie before it
 * (in-place decoding); writes never overtake reads. *consumed receives the
 * bytes of src used, *produced the bytes written to dst. Returns HTTP1_OK
 * when the last chunk and trailer section are complete (bytes after
 * *consumed belong to the next request), HTTP1_INCOMPLETE when all of src
 * was used and more is needed, HTTP1_E_BAD_REQUEST on a malformed chunk
 * (error set to a static message) or HTTP1_E_BODY_LARGE past max_body.
 */
int http1_chunked_decode(struct http1_chunked *d, const char *src, size_t src_len, char *dst,
                         size_t *consumed, size_t *produced, uint64_t max_body, const char **error);

/* Reason phrase for a status code ("Not Found"); "Unknown" if unknown. */
const char *http1_reason(int status);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a Unix time: 29 chars + NUL. */
#define HTTP1_DATE_LEN 29
void http1_format_date(int64_t unix_seconds, char out[HTTP1_DATE_LEN + 1]);

struct http1_response {
    int status;
    uint8_t minor_version; /* of the request: 1.0 clients get keep-alive spelled out */
    bool keep_alive;
    bool head_only;           /* HEAD: Content-Length stays, body is not sent */
    const char *date;         /* HTTP1_DATE_LEN chars, cached by the caller */
    const char *server;       /* Server: value, or NULL */
    const char *content_type; /* or NULL */
    uint64_t content_length;
    /* No Content-Length: the body runs until the connection closes (event
     * streams); keep_alive must then be false. */
    bool until_close;
    const char *request_id; /* X-Request-Id value, or NULL */
    uint32_t request_id_len;
    const char *extra; /* extra "Name: value\r\n" lines verbatim, or NULL */
    uint32_t extra_len;
};

/*
 * Write the status line and headers (ending with the empty line) into
 * dst[0..cap). Returns the length written, or 0 if cap is too small.
 */
size_t http1_response_head(char *dst, size_t cap, const struct http1_response *r);

/* Pieces of the request parser that the response parser
 * (proto/http1_response.h) shares, so both read fields the same way. */
bool http1_is_tchar(unsigned char c);      /* token character (RFC 9110 5.6.2) */
bool http1_is_field_byte(unsigned char c); /* field-value byte: HTAB, SP, VCHAR, obs-text */
/* ASCII case-insensitive s[0..n) == lit. */
bool http1_token_eq(const char *s, size_t n, const char *lit);
/* Next element of a comma-separated list, OWS trimmed; false at the end. */
bool http1_list_next(const char **cur, const char *end, const char **e, size_t *elen);
/* Content-Length value (repeats must agree, also across fields: *have and
 * *out carry what was seen). NULL, or the problem. */
const char *http1_content_length(const char *v, size_t n, bool *have, uint64_t *out);

#endif
