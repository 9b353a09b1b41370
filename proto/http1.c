/*
 * http1.c - HTTP/1.1 (RFC 9112) request heads, chunked bodies and response
 * heads: bytes in, results out. No I/O, no allocation, no mutable globals.
 *
 * The parser is strict on purpose. Request smuggling lives in the gap between
 * two parsers that frame the same bytes differently (a proxy in front of us
 * and us), so every construct whose framing is ambiguous is an error, not a
 * guess: bare CR or LF, obs-fold, whitespace before the colon, both
 * Content-Length and Transfer-Encoding, differing Content-Lengths, a
 * Transfer-Encoding list that is not exactly "chunked", chunk sizes or
 * extensions that other parsers may read differently.
 *
 * Transfer-Encoding policy (RFC 9112 6.1, 6.3), over all TE fields joined:
 *   "chunked"                       -> chunked body
 *   "<coding>, chunked" (e.g. gzip) -> 501: framing is clear, coding unknown
 *   chunked not last ("chunked, gzip", "identity", "gzip") -> 400: the body
 *                                      length cannot be determined
 *   "chunked" more than once        -> 400
 *   empty list                      -> 400
 *   any TE on an HTTP/1.0 request   -> 400
 *
 * Other choices: a request-target is origin-form ("/..."), "*" (OPTIONS
 * only) or absolute-form with an http/https scheme and no userinfo; for
 * absolute-form, path is still "target up to '?'". Content-Length: 0 is
 * HTTP1_BODY_LENGTH with content_length 0. Expect values other than
 * 100-continue are ignored, as is 100-continue on HTTP/1.0 (RFC 9110 10.1.1).
 * A Host value must use only URI authority characters.
 *
 * Named bounds beyond struct http1_limits: at most 4 empty lines before the
 * request line; a chunk size of at most 16 hex digits; a chunk-size line
 * (size and extensions) of at most 4 KiB; a trailer section of at most
 * 16 KiB. Chunk extensions follow the RFC grammar exactly (BWS only around
 * ';' and '='), so "5 \r\n" is an error, and are dropped like trailers.
 */
#include "proto/http1.h"

#include <string.h>

/*
 * Character classes, one bit each. Generated from the RFC 9110 ABNF:
 *   C_TCHAR   token characters (method, field names, codings)
 *   C_FIELD   field-value bytes: HTAB, SP, VCHAR, obs-text
 *   C_TARGET  request-target bytes we accept: VCHAR (0x21-0x7e)
 *   C_HEX     HEXDIG
 *   C_HOST    URI authority characters (reg-name, IP-literal, port)
 */
enum { C_TCHAR = 1, C_FIELD = 2, C_TARGET = 4, C_HEX = 8, C_HOST = 16 };

static const uint8_t cclass[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  23, 6,  7,  23, 23, 23, 23, 22, 22, 23, 23, 22, 23, 23, 6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 22, 22, 6,  22, 6,  6,  /* 0x30 */
    6,  31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x40 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 22, 6,  22, 7,  23, /* 0x50 */
    7,  31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x60 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 6,  7,  6,  23, 0,  /* 0x70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

#define IS(c, cls) ((cclass[(unsigned char)(c)] & (cls)) != 0)
#define IS_WS(c)   ((c) == ' ' || (c) == '\t')

/* Empty lines tolerated before the request line (RFC 9112 2.2 "at least one"). */
#define MAX_LEADING_EMPTY 4
/* Bytes of a chunk-size line (size and extensions) and of the trailer section. */
#define MAX_CHUNK_LINE 4096u
#define MAX_TRAILERS   HTTP1_DEFAULT_MAX_HEAD
/* 16 hex digits fill a uint64_t; a 17th could only overflow it. */
#define MAX_CHUNK_DIGITS 16

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* ASCII case-insensitive equality of s[0..n) and the NUL-terminated lit. */
static bool ieq(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return false;
    }
    return lit[i] == '\0';
}

/* ------------------------------------------------------------------------ */
/* Request head                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Parser states. The head is validated byte by byte as it arrives, so an
 * error is reported as soon as the offending byte is in the buffer and no
 * byte is looked at twice (save the CR of a CRLF split across two calls).
 * Pointers into the caller's buffer are only made once the head is complete,
 * by a second, cheap pass over bytes already known to be valid (finish()).
 */
enum {
    PS_LINE_START = 0, /* before the request line (empty lines allowed) */
    PS_METHOD,
    PS_TARGET,
    PS_VERSION,
    PS_FIELD_START, /* start of a header line, or of the final empty line */
    PS_FIELD_NAME,
    PS_FIELD_VALUE,
    PS_DONE,
};

static int fail(struct http1_request *req, int code, const char *msg)
{
    req->error = msg;
    return code;
}

void http1_parser_init(struct http1_parser *p)
{
    memset(p, 0, sizeof(*p));
}

/* Checked when the request line's second SP arrives. */
static const char *check_target(const unsigned char *m, size_t mlen, const unsigned char *t,
                                size_t tlen)
{
    size_t i;

    if (t[0] == '/')
        return NULL;
    if (tlen == 1 && t[0] == '*') {
        if (mlen == 7 && memcmp(m, "OPTIONS", 7) == 0)
            return NULL;
        return "request-target '*' is only allowed with OPTIONS";
    }
    if (tlen > 7 && ieq((const char *)t, 7, "http://"))
        i = 7;
    else if (tlen > 8 && ieq((const char *)t, 8, "https://"))
        i = 8;
    else
        return "request-target must start with '/' or be an absolute http(s) URI";
    if (t[i] == '/' || t[i] == '?' || t[i] == '#')
        return "absolute request-target has no host";
    for (; i < tlen && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++) {
        /* userinfo is deprecated and a classic way to confuse host checks */
        if (t[i] == '@')
            return "userinfo ('@') in request-target";
    }
    return NULL;
}

/* Splits a comma-separated list: returns the next element with OWS trimmed. */
static bool next_elem(const char **cur, const char *end, const char **e, size_t *elen)
{
    const char *s = *cur, *t;

    if (s >= end)
        return false;
    t = memchr(s, ',', (size_t)(end - s));
    if (t == NULL)
        t = end;
    *cur = t + 1;
    while (s < t && IS_WS(*s))
        s++;
    while (t > s && IS_WS(t[-1]))
        t--;
    *e = s;
    *elen = (size_t)(t - s);
    return true;
}

/*
 * Content-Length = 1*DIGIT; a list of identical values ("42, 42") is the
 * same length sent twice (RFC 9110 8.6) and is accepted, also across fields
 * (*have, *out carry the value seen so far). Returns NULL or the problem.
 */
static const char *parse_content_length(const char *v, size_t n, bool *have, uint64_t *out)
{
    const char *cur = v, *end = v + n, *e;
    size_t elen;

    /* a trailing comma would end the loop below without an empty element */
    if (n == 0 || v[n - 1] == ',')
        return "Content-Length is not a decimal number";
    while (next_elem(&cur, end, &e, &elen)) {
        uint64_t x = 0;
        if (elen == 0)
            return "Content-Length is not a decimal number";
        for (size_t i = 0; i < elen; i++) {
            unsigned d = (unsigned)(unsigned char)e[i] - (unsigned)'0'; /* non-digits wrap */
            if (d > 9)
                return "Content-Length is not a decimal number";
            if (x > (UINT64_MAX - d) / 10)
                return "Content-Length overflows 64 bits";
            x = x * 10 + d;
        }
        if (*have && x != *out)
            return "conflicting Content-Length values";
        *have = true;
        *out = x;
    }
    return NULL;
}

static bool valid_host(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!IS(v[i], C_HOST))
            return false;
    }
    return true;
}

/* Framing and connection semantics, once every header field is in req. */
static int apply_fields(struct http1_request *req, const struct http1_limits *lim)
{
    bool have_cl = false, have_te = false, conn_close = false, conn_ka = false;
    bool last_chunked = false;
    uint32_t hosts = 0, te_elems = 0, te_chunked = 0, te_other = 0;
    uint64_t cl = 0;

    for (uint32_t h = 0; h < req->num_headers; h++) {
        const struct http1_header *f = &req->headers[h];
        const char *cur = f->value, *end = f->value + f->value_len, *e;
        size_t elen;

        switch (f->name_len) {
        case 4:
            if (!ieq(f->name, 4, "host"))
                break;
            if (++hosts > 1)
                return fail(req, HTTP1_E_BAD_REQUEST, "more than one Host header");
            if (!valid_host(f->value, f->value_len))
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in Host header");
            break;
        case 6:
            /* other expectations are ignored rather than answered with 417 */
            if (ieq(f->name, 6, "expect") && ieq(f->value, f->value_len, "100-continue"))
                req->expect_continue = true;
            break;
        case 10:
            if (!ieq(f->name, 10, "connection"))
                break;
            while (next_elem(&cur, end, &e, &elen)) {
                if (ieq(e, elen, "close"))
                    conn_close = true;
                else if (ieq(e, elen, "keep-alive"))
                    conn_ka = true;
            }
            break;
        case 14:
            if (ieq(f->name, 14, "content-length")) {
                const char *why = parse_content_length(f->value, f->value_len, &have_cl, &cl);
                if (why != NULL)
                    return fail(req, HTTP1_E_BAD_REQUEST, why);
            }
            break;
        case 17:
            if (!ieq(f->name, 17, "transfer-encoding"))
                break;
            have_te = true;
            /* empty list elements are ignored (RFC 9110 5.6.1) */
            while (next_elem(&cur, end, &e, &elen)) {
                if (elen == 0)
                    continue;
                te_elems++;
                last_chunked = ieq(e, elen, "chunked");
                if (last_chunked)
                    te_chunked++;
                else
                    te_other++;
            }
            break;
        }
    }

    if (req->minor_version == 1 && hosts == 0)
        return fail(req, HTTP1_E_BAD_REQUEST, "missing Host header");
    req->has_host = hosts == 1;
    if (req->minor_version == 0)
        req->expect_continue = false;
    req->keep_alive = req->minor_version == 1 ? !conn_close : conn_ka && !conn_close;

    if (have_te) {
        if (have_cl)
            return fail(req, HTTP1_E_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        if (req->minor_version == 0)
            return fail(req, HTTP1_E_BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 request");
        if (te_elems == 0)
            return fail(req, HTTP1_E_BAD_REQUEST, "empty Transfer-Encoding");
        if (!last_chunked)
            return fail(req, HTTP1_E_BAD_REQUEST, "Transfer-Encoding does not end with chunked");
        if (te_chunked > 1)
            return fail(req, HTTP1_E_BAD_REQUEST, "chunked applied more than once");
        if (te_other > 0)
            return fail(req, HTTP1_E_NOT_IMPL,
                        "unsupported transfer coding (only chunked is implemented)");
        req->body_kind = HTTP1_BODY_CHUNKED;
    } else if (have_cl) {
        if (cl > lim->max_body)
            return fail(req, HTTP1_E_BODY_LARGE, "Content-Length exceeds the body size limit");
        req->body_kind = HTTP1_BODY_LENGTH;
        req->content_length = cl;
    }
    return HTTP1_OK;
}

/*
 * Second pass over a complete, already validated head: fill req with
 * pointers into this call's buffer, then check the fields' semantics.
 * Validation guarantees every memchr below finds its byte.
 */
static int finish(const char *buf, uint32_t head_len, const struct http1_limits *lim,
                  struct http1_request *req)
{
    const char *s = buf, *end = buf + head_len, *sp, *q;

    while (s[0] == '\r')
        s += 2;
    sp = memchr(s, ' ', (size_t)(end - s));
    req->method = s;
    req->method_len = (uint32_t)(sp - s);
    s = sp + 1;
    sp = memchr(s, ' ', (size_t)(end - s));
    req->target = s;
    req->target_len = (uint32_t)(sp - s);
    q = memchr(s, '?', req->target_len);
    req->path = s;
    if (q != NULL) {
        req->path_len = (uint32_t)(q - s);
        req->query = q + 1;
        req->query_len = (uint32_t)(sp - q - 1);
    } else {
        req->path_len = req->target_len;
    }
    req->minor_version = (uint8_t)(sp[8] - '0'); /* "HTTP/1.x" */
    s = sp + 1 + 8 + 2;

    while (s[0] != '\r') {
        const char *colon = memchr(s, ':', (size_t)(end - s));
        const char *v = colon + 1, *cr = memchr(v, '\r', (size_t)(end - v));
        const char *ve = cr;
        struct http1_header *f = &req->headers[req->num_headers++];

        while (v < ve && IS_WS(*v))
            v++;
        while (ve > v && IS_WS(ve[-1]))
            ve--;
        f->name = s;
        f->name_len = (uint32_t)(colon - s);
        f->value = v;
        f->value_len = (uint32_t)(ve - v);
        s = cr + 2;
    }
    req->head_len = head_len;
    return apply_fields(req, lim);
}

static void reset_request(struct http1_request *req)
{
    req->method = req->target = req->path = req->query = NULL;
    req->method_len = req->target_len = req->path_len = req->query_len = 0;
    req->minor_version = 0;
    req->keep_alive = req->expect_continue = req->has_host = false;
    req->body_kind = HTTP1_BODY_NONE;
    req->content_length = 0;
    req->head_len = 0;
    req->num_headers = 0;
    req->error = NULL;
}

int http1_parse_head(struct http1_parser *p, const char *buf, size_t len,
                     const struct http1_limits *lim, struct http1_request *req)
{
    static const struct http1_limits defaults = {
        HTTP1_DEFAULT_MAX_HEAD,
        HTTP1_DEFAULT_MAX_URI,
        HTTP1_DEFAULT_MAX_HEADERS,
        HTTP1_DEFAULT_MAX_BODY,
    };
    const unsigned char *s = (const unsigned char *)buf;
    uint32_t max_fields, i, end, line, mark = p->mark, lines = p->line_no, nfields = p->nheaders;
    uint8_t st = p->state;
    bool capped = false;

    if (lim == NULL)
        lim = &defaults;
    reset_request(req);
    if (st == PS_DONE) {
        /* called again after success: refill req from this buffer */
        if (len < p->scanned || p->nheaders > req->headers_cap)
            return fail(req, HTTP1_E_BAD_REQUEST, "parser reused with a different request");
        return finish(buf, p->scanned, lim, req);
    }
    if (len < p->pos)
        return fail(req, HTTP1_E_BAD_REQUEST, "buffer shorter than on the previous call");

    /* The whole head, final CRLF included, must fit in max_head bytes. */
    end = lim->max_head;
    if (len <= end)
        end = (uint32_t)len;
    else
        capped = true;
    max_fields = lim->max_headers < req->headers_cap ? lim->max_headers : req->headers_cap;
    i = p->pos;
    line = p->scanned;

    while (i < end) {
        unsigned char c = s[i];

        if (c == '\r') {
            if (i + 1 == end)
                break; /* the LF decides: wait for it */
            if (s[i + 1] != '\n')
                return fail(req, HTTP1_E_BAD_REQUEST, "bare CR in request head");
            switch (st) {
            case PS_LINE_START:
                if (lines >= MAX_LEADING_EMPTY)
                    return fail(req, HTTP1_E_BAD_REQUEST,
                                "too many empty lines before the request line");
                break;
            case PS_METHOD:
                return fail(req, HTTP1_E_BAD_REQUEST, "request line has no request-target");
            case PS_TARGET:
                return fail(req, HTTP1_E_BAD_REQUEST, "request line has no HTTP version");
            case PS_VERSION:
                if (i - mark != 8)
                    return fail(req, HTTP1_E_BAD_REQUEST, "malformed HTTP version");
                if (s[mark + 5] != '1' || (s[mark + 7] != '0' && s[mark + 7] != '1'))
                    return fail(req, HTTP1_E_VERSION, "unsupported HTTP version");
                st = PS_FIELD_START;
                break;
            case PS_FIELD_START:
                p->line_no = lines + 1;
                p->nheaders = nfields;
                p->scanned = p->pos = i + 2;
                p->mark = mark;
                p->state = PS_DONE;
                return finish(buf, i + 2, lim, req);
            case PS_FIELD_NAME:
                return fail(req, HTTP1_E_BAD_REQUEST, "header line has no colon");
            case PS_FIELD_VALUE:
                st = PS_FIELD_START;
                break;
            }
            i += 2;
            line = i;
            lines++;
            continue;
        }
        if (c == '\n')
            return fail(req, HTTP1_E_BAD_REQUEST, "bare LF in request head");

        switch (st) {
        case PS_LINE_START:
            if (!IS(c, C_TCHAR))
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in method");
            st = PS_METHOD;
            break;
        case PS_METHOD:
            if (c == ' ') {
                st = PS_TARGET;
                mark = i + 1;
            } else if (!IS(c, C_TCHAR)) {
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in method");
            }
            break;
        case PS_TARGET:
            if (c == ' ') {
                const char *why;
                if (i == mark)
                    return fail(req, HTTP1_E_BAD_REQUEST, "empty request-target");
                why = check_target(s + line, mark - 1 - line, s + mark, i - mark);
                if (why != NULL)
                    return fail(req, HTTP1_E_BAD_REQUEST, why);
                st = PS_VERSION;
                mark = i + 1;
                break;
            }
            /* the long part of a request line: scan it in a tight loop */
            while (i < end && IS(s[i], C_TARGET) && i - mark < lim->max_uri)
                i++;
            if (i < end && IS(s[i], C_TARGET))
                return fail(req, HTTP1_E_URI_LONG, "request-target longer than the limit");
            if (i < end && s[i] != ' ' && s[i] != '\r' && s[i] != '\n')
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in request-target");
            continue;
        case PS_VERSION:
            if (i - mark >= 8 || c != (unsigned char)"HTTP/1.1"[i - mark]) {
                /* digits may differ from "1.1": the version is judged at CRLF */
                bool digit_pos = i - mark == 5 || i - mark == 7;
                if (!(digit_pos && c >= '0' && c <= '9'))
                    return fail(req, HTTP1_E_BAD_REQUEST, "malformed HTTP version");
            }
            break;
        case PS_FIELD_START:
            if (IS_WS(c))
                return fail(req, HTTP1_E_BAD_REQUEST,
                            "header line starts with whitespace (obsolete line folding)");
            if (c == ':')
                return fail(req, HTTP1_E_BAD_REQUEST, "empty header name");
            if (!IS(c, C_TCHAR))
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in header name");
            if (nfields >= max_fields)
                return fail(req, HTTP1_E_HEADERS_LARGE, "too many header fields");
            nfields++;
            st = PS_FIELD_NAME;
            break;
        case PS_FIELD_NAME:
            if (c == ':') {
                st = PS_FIELD_VALUE;
            } else if (IS_WS(c)) {
                return fail(req, HTTP1_E_BAD_REQUEST, "whitespace before colon in header field");
            } else if (!IS(c, C_TCHAR)) {
                return fail(req, HTTP1_E_BAD_REQUEST, "invalid character in header name");
            }
            break;
        case PS_FIELD_VALUE:
            while (i < end && IS(s[i], C_FIELD))
                i++;
            if (i < end && s[i] != '\r' && s[i] != '\n')
                return fail(req, HTTP1_E_BAD_REQUEST, "control character in header value");
            continue;
        }
        i++;
    }

    /* Only here and on completion is progress saved: after an error the
     * state is untouched, so calling again reports the same error. */
    p->pos = i;
    p->scanned = line;
    p->line_no = lines;
    p->nheaders = nfields;
    p->mark = mark;
    p->state = st;
    if (capped)
        return fail(req, HTTP1_E_HEADERS_LARGE, "request head larger than the limit");
    return HTTP1_INCOMPLETE;
}

const struct http1_header *http1_find_header(const struct http1_request *req, const char *name)
{
    size_t n = strlen(name);

    for (uint32_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (h->name_len == n && ieq(h->name, n, name))
            return h;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Chunked body                                                             */
/* ------------------------------------------------------------------------ */

/*
 * One state per grammar position of RFC 9112 7.1, so that any split of the
 * input is decoded exactly like the whole: no state ever needs to look at a
 * byte it has not consumed.
 *
 *   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val    = token / quoted-string
 *   last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer fields, then CRLF
 */
enum {
    CS_SIZE_START = 0, /* first hex digit */
    CS_SIZE,           /* more digits, extensions or CR */
    CS_EXT_WS,         /* BWS after a size or value: ';' must follow */
    CS_EXT_NAME_START, /* after ';' */
    CS_EXT_NAME,
    CS_EXT_NAME_WS,    /* BWS after a name: ';', '=' */
    CS_EXT_VAL_START,  /* after '=' */
    CS_EXT_VAL,        /* token value */
    CS_EXT_QUOTED,     /* inside a quoted-string */
    CS_EXT_QUOTED_ESC, /* after a backslash */
    CS_EXT_VAL_END,    /* after the closing quote */
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START, /* start of a trailer line or of the final CRLF */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_FINAL_LF,
    CS_DONE,
};

void http1_chunked_init(struct http1_chunked *d)
{
    memset(d, 0, sizeof(*d));
}

static unsigned hexval(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(lower(c) - 'a' + 10);
}

int http1_chunked_decode(struct http1_chunked *d, const char *src, size_t src_len, char *dst,
                         size_t *consumed, size_t *produced, uint64_t max_body, const char **error)
{
    const char *err = NULL;
    int rc = HTTP1_E_BAD_REQUEST;
    size_t i = 0, out = 0;
    uint8_t st = d->state;

    while (i < src_len && st != CS_DONE) {
        unsigned char c = (unsigned char)src[i];

        if (st == CS_DATA) {
            size_t n = src_len - i;
            if (n > d->chunk_left)
                n = (size_t)d->chunk_left;
            memmove(dst + out, src + i, n); /* dst <= src: in-place safe */
            i += n;
            out += n;
            d->chunk_left -= n;
            d->total += n;
            if (d->chunk_left == 0)
                st = CS_DATA_CR;
            continue;
        }

        if (st < CS_SIZE_LF && ++d->line_len > MAX_CHUNK_LINE) {
            err = "chunk size line or extension too long";
            break;
        }
        if (st >= CS_TRAILER_START && st < CS_FINAL_LF && ++d->line_len > MAX_TRAILERS) {
            err = "chunked trailer section too long";
            break;
        }

        if (c == '\n' && st != CS_SIZE_LF && st != CS_DATA_LF && st != CS_TRAILER_LF &&
            st != CS_FINAL_LF) {
            err = "bare LF in chunked body";
            break;
        }

        switch (st) {
        case CS_SIZE_START:
        case CS_SIZE:
            if (IS(c, C_HEX)) {
                uint64_t v = st == CS_SIZE_START ? 0 : d->chunk_left;
                d->digits = st == CS_SIZE_START ? 1 : d->digits + 1;
                if (d->digits > MAX_CHUNK_DIGITS) {
                    err = "chunk size has more than 16 hex digits";
                    goto out;
                }
                d->chunk_left = v << 4 | hexval(c);
                /* size arrives before data: refuse the chunk, not its tail */
                if (d->chunk_left > max_body - d->total) {
                    rc = HTTP1_E_BODY_LARGE;
                    err = "chunked body exceeds the body size limit";
                    goto out;
                }
                st = CS_SIZE;
            } else if (st == CS_SIZE_START) {
                err = c == '\r' ? "missing chunk size" : "chunk size is not hexadecimal";
                goto out;
            } else if (c == ';') {
                st = CS_EXT_NAME_START;
            } else if (IS_WS(c)) {
                st = CS_EXT_WS;
            } else if (c == '\r') {
                st = CS_SIZE_LF;
            } else {
                err = "invalid character after chunk size";
                goto out;
            }
            break;
        case CS_EXT_WS:
            if (c == ';')
                st = CS_EXT_NAME_START;
            else if (!IS_WS(c)) {
                err = "invalid chunk extension";
                goto out;
            }
            break;
        case CS_EXT_NAME_START:
            if (IS(c, C_TCHAR))
                st = CS_EXT_NAME;
            else if (!IS_WS(c)) {
                err = "invalid chunk extension name";
                goto out;
            }
            break;
        case CS_EXT_NAME:
        case CS_EXT_VAL:
        case CS_EXT_VAL_END:
            if (IS(c, C_TCHAR) && st != CS_EXT_VAL_END)
                break;
            if (c == ';')
                st = CS_EXT_NAME_START;
            else if (c == '\r')
                st = CS_SIZE_LF;
            else if (c == '=' && st == CS_EXT_NAME)
                st = CS_EXT_VAL_START;
            else if (IS_WS(c))
                st = st == CS_EXT_NAME ? CS_EXT_NAME_WS : CS_EXT_WS;
            else {
                err = "invalid chunk extension";
                goto out;
            }
            break;
        case CS_EXT_NAME_WS:
            if (c == ';')
                st = CS_EXT_NAME_START;
            else if (c == '=')
                st = CS_EXT_VAL_START;
            else if (!IS_WS(c)) {
                err = "invalid chunk extension";
                goto out;
            }
            break;
        case CS_EXT_VAL_START:
            if (c == '"')
                st = CS_EXT_QUOTED;
            else if (IS(c, C_TCHAR))
                st = CS_EXT_VAL;
            else if (!IS_WS(c)) {
                err = "invalid chunk extension value";
                goto out;
            }
            break;
        case CS_EXT_QUOTED:
            if (c == '"')
                st = CS_EXT_VAL_END;
            else if (c == '\\')
                st = CS_EXT_QUOTED_ESC;
            else if (!IS(c, C_FIELD)) {
                err = "control character in chunk extension";
                goto out;
            }
            break;
        case CS_EXT_QUOTED_ESC:
            if (!IS(c, C_FIELD)) {
                err = "control character in chunk extension";
                goto out;
            }
            st = CS_EXT_QUOTED;
            break;
        case CS_SIZE_LF:
            if (c != '\n') {
                err = "bare CR after chunk size";
                goto out;
            }
            d->line_len = 0;
            st = d->chunk_left == 0 ? CS_TRAILER_START : CS_DATA;
            break;
        case CS_DATA_CR:
            if (c != '\r') {
                err = "chunk data not followed by CRLF";
                goto out;
            }
            st = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n') {
                err = "chunk data not followed by CRLF";
                goto out;
            }
            d->line_len = 0;
            st = CS_SIZE_START;
            break;
        case CS_TRAILER_START:
            if (c == '\r')
                st = CS_FINAL_LF;
            else if (IS(c, C_TCHAR))
                st = CS_TRAILER_NAME;
            else {
                err = IS_WS(c) ? "trailer line starts with whitespace (obsolete line folding)"
                               : "invalid character in trailer name";
                goto out;
            }
            break;
        case CS_TRAILER_NAME:
            if (c == ':')
                st = CS_TRAILER_VALUE;
            else if (!IS(c, C_TCHAR)) {
                err = IS_WS(c) ? "whitespace before colon in trailer field"
                               : "invalid character in trailer name";
                goto out;
            }
            break;
        case CS_TRAILER_VALUE:
            if (c == '\r')
                st = CS_TRAILER_LF;
            else if (!IS(c, C_FIELD)) {
                err = "control character in trailer value";
                goto out;
            }
            break;
        case CS_TRAILER_LF:
        case CS_FINAL_LF:
            if (c != '\n') {
                err = "bare CR in chunked trailer section";
                goto out;
            }
            st = st == CS_FINAL_LF ? CS_DONE : CS_TRAILER_START;
            break;
        }
        i++;
    }
out:
    d->state = st;
    *consumed = i;
    *produced = out;
    if (err != NULL) {
        if (error != NULL)
            *error = err;
        return rc;
    }
    return st == CS_DONE ? HTTP1_OK : HTTP1_INCOMPLETE;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* Sorted by code; RFC 9110 section 15 phrases. */
static const struct {
    uint16_t code;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http1_reason(int status)
{
    size_t lo = 0, hi = sizeof(reasons) / sizeof(reasons[0]);

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].code == status)
            return reasons[mid].text;
        if (reasons[mid].code < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/*
 * Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days): exact for every int64 day count we pass, no tables,
 * no libc time functions (gmtime would take the timezone lock).
 */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void http1_format_date(int64_t t, char out[HTTP1_DATE_LEN + 1])
{
    static const char wdays[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    /* IMF-fixdate has a four-digit year: clamp to 0000-01-01..9999-12-31 */
    const int64_t lo = -62167219200, hi = 253402300799;
    int64_t days, y;
    unsigned secs, m, d, wd;

    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    secs = (unsigned)(t - days * 86400);
    civil_from_days(days, &y, &m, &d);
    wd = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */

    memcpy(out, wdays + 3 * wd, 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, months + 3 * (m - 1), 3);
    out[11] = ' ';
    put2(out + 12, (unsigned)(y / 100));
    put2(out + 14, (unsigned)(y % 100));
    out[16] = ' ';
    put2(out + 17, secs / 3600);
    out[19] = ':';
    put2(out + 20, secs / 60 % 60);
    out[22] = ':';
    put2(out + 23, secs % 60);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* Appends to a bounded buffer; once full, every later append is a no-op. */
struct wbuf {
    char *p, *end;
    bool full;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->full || (size_t)(w->end - w->p) < n) {
        w->full = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_str(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + n, sizeof(tmp) - n);
}

size_t http1_response_head(char *dst, size_t cap, const struct http1_response *r)
{
    struct wbuf w = {dst, dst + cap, false};
    int st = r->status;

    if (st < 100 || st > 999)
        return 0;
    PUT_LIT(&w, "HTTP/1.1 ");
    put_u64(&w, (uint64_t)st);
    PUT_LIT(&w, " ");
    put_str(&w, http1_reason(st));
    PUT_LIT(&w, "\r\n");
    if (r->date != NULL) {
        PUT_LIT(&w, "Date: ");
        put(&w, r->date, HTTP1_DATE_LEN);
        PUT_LIT(&w, "\r\n");
    }
    if (r->server != NULL) {
        PUT_LIT(&w, "Server: ");
        put_str(&w, r->server);
        PUT_LIT(&w, "\r\n");
    }
    if (r->content_type != NULL) {
        PUT_LIT(&w, "Content-Type: ");
        put_str(&w, r->content_type);
        PUT_LIT(&w, "\r\n");
    }
    /* RFC 9110 8.6: never on 1xx or 204; on 304 it would describe the
     * representation, not this (empty) body, so it is left out too. */
    if (st >= 200 && st != 204 && st != 304 && !r->until_close) {
        PUT_LIT(&w, "Content-Length: ");
        put_u64(&w, r->content_length);
        PUT_LIT(&w, "\r\n");
    }
    if (!r->keep_alive || r->until_close)
        PUT_LIT(&w, "Connection: close\r\n");
    else if (r->minor_version == 0)
        PUT_LIT(&w, "Connection: keep-alive\r\n");
    if (r->request_id != NULL) {
        PUT_LIT(&w, "X-Request-Id: ");
        put(&w, r->request_id, r->request_id_len);
        PUT_LIT(&w, "\r\n");
    }
    if (r->extra != NULL)
        put(&w, r->extra, r->extra_len);
    PUT_LIT(&w, "\r\n");
    return w.full ? 0 : (size_t)(w.p - dst);
}

/* ------------------------------------------------------------------------ */
/* Shared with the response parser (proto/http1_response.c)                 */
/* ------------------------------------------------------------------------ */

bool http1_is_tchar(unsigned char c)
{
    return IS(c, C_TCHAR);
}

bool http1_is_field_byte(unsigned char c)
{
    return IS(c, C_FIELD);
}

bool http1_token_eq(const char *s, size_t n, const char *lit)
{
    return ieq(s, n, lit);
}

bool http1_list_next(const char **cur, const char *end, const char **e, size_t *elen)
{
    return next_elem(cur, end, e, elen);
}

const char *http1_content_length(const char *v, size_t n, bool *have, uint64_t *out)
{
    return parse_content_length(v, n, have, out);
}
