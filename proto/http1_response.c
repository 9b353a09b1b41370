/*
 * http1_response.c - parsing a response head (see http1_response.h).
 *
 * The head is located first (its CRLF CRLF, searched once per byte across
 * calls), then validated and split in one pass. Strictness follows what a
 * client needs to stay in sync with the server: lines end in CRLF, field
 * names are tokens, obs-fold is refused, Content-Length values agree, and a
 * Transfer-Encoding whose last coding is not chunked means the body runs
 * until the close (RFC 9112 6.3), as does Transfer-Encoding beside a
 * Content-Length (the connection is then not reused).
 */
#include "proto/http1_response.h"

#include <string.h>

static int fail(struct http1_resp *r, int code, const char *msg)
{
    r->error = msg;
    return code;
}

void http1_resp_parser_init(struct http1_resp_parser *p)
{
    p->scanned = 0;
}

static long find_end(struct http1_resp_parser *p, const char *buf, size_t len)
{
    size_t from = p->scanned > 3 ? p->scanned - 3 : 0;
    for (size_t i = from; i + 3 < len; i++) {
        const char *q = memchr(buf + i, '\r', len - 3 - i);
        if (!q)
            break;
        i = (size_t)(q - buf);
        if (q[1] == '\n' && q[2] == '\r' && q[3] == '\n')
            return (long)(i + 4);
    }
    p->scanned = (uint32_t)len;
    return -1;
}

static int status_line(const char *s, size_t n, struct http1_resp *r)
{
    /* HTTP/1.x SP 3DIGIT SP [reason] (the SP before an empty reason is
     * sometimes omitted: accepted) */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return fail(r, HTTP1_E_BAD_RESPONSE, "status line is not HTTP/1.x");
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(r, HTTP1_E_BAD_RESPONSE, "status code is not three digits");
        st = st * 10 + (s[i] - '0');
    }
    if (st < 100)
        return fail(r, HTTP1_E_BAD_RESPONSE, "status code below 100");
    if (n > 12 && s[12] != ' ')
        return fail(r, HTTP1_E_BAD_RESPONSE, "status code is not three digits");
    for (size_t i = 13; i < n; i++)
        if (!http1_is_field_byte((unsigned char)s[i]))
            return fail(r, HTTP1_E_BAD_RESPONSE, "control character in the reason phrase");
    r->status = st;
    r->minor_version = (uint8_t)(s[7] - '0');
    r->reason = n > 13 ? s + 13 : s + n;
    r->reason_len = n > 13 ? (uint32_t)(n - 13) : 0;
    return HTTP1_OK;
}

static int field_line(const char *s, size_t n, struct http1_resp *r)
{
    if (s[0] == ' ' || s[0] == '\t')
        return fail(r, HTTP1_E_BAD_RESPONSE, "obs-fold (a header line starting with space)");
    size_t i = 0;
    while (i < n && http1_is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ':')
        return fail(r, HTTP1_E_BAD_RESPONSE, "header line without a token name and colon");
    size_t vs = i + 1, ve = n;
    while (vs < ve && (s[vs] == ' ' || s[vs] == '\t'))
        vs++;
    while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++)
        if (!http1_is_field_byte((unsigned char)s[k]))
            return fail(r, HTTP1_E_BAD_RESPONSE, "control character in a header value");
    if (r->num_headers == r->headers_cap)
        return fail(r, HTTP1_E_HEADERS_LARGE, "too many header fields");
    r->headers[r->num_headers++] = (struct http1_header){
        .name = s, .name_len = (uint32_t)i, .value = s + vs, .value_len = (uint32_t)(ve - vs)};
    return HTTP1_OK;
}

static bool list_has(const struct http1_header *h, const char *tok)
{
    const char *cur = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    while (http1_list_next(&cur, end, &e, &n))
        if (http1_token_eq(e, n, tok))
            return true;
    return false;
}

/* Content-Length, Transfer-Encoding and Connection decide the framing. */
static int framing(struct http1_resp *r, bool head_request)
{
    bool have_cl = false, te = false, te_chunked = false, close = false, ka = false;
    uint64_t cl = 0;
    for (uint32_t i = 0; i < r->num_headers; i++) {
        const struct http1_header *h = &r->headers[i];
        if (http1_token_eq(h->name, h->name_len, "content-length")) {
            if (http1_content_length(h->value, h->value_len, &have_cl, &cl))
                return fail(r, HTTP1_E_BAD_RESPONSE, "bad Content-Length");
        } else if (http1_token_eq(h->name, h->name_len, "transfer-encoding")) {
            const char *cur = h->value, *end = h->value + h->value_len, *e;
            size_t n;
            while (http1_list_next(&cur, end, &e, &n)) {
                if (n == 0)
                    continue;
                te = true;
                te_chunked = http1_token_eq(e, n, "chunked"); /* the last one counts */
            }
        } else if (http1_token_eq(h->name, h->name_len, "connection")) {
            close |= list_has(h, "close");
            ka |= list_has(h, "keep-alive");
        }
    }
    r->keep_alive = !close && (r->minor_version == 1 || ka);
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
        r->body = HTTP1_RESP_NONE;
        return HTTP1_OK;
    }
    if (te) {
        if (r->minor_version == 0)
            return fail(r, HTTP1_E_BAD_RESPONSE, "Transfer-Encoding in an HTTP/1.0 response");
        r->body = te_chunked ? HTTP1_RESP_CHUNKED : HTTP1_RESP_CLOSE;
        if (have_cl || !te_chunked)
            r->keep_alive = false;
        return HTTP1_OK;
    }
    if (have_cl) {
        r->body = HTTP1_RESP_LENGTH;
        r->content_length = cl;
        return HTTP1_OK;
    }
    r->body = HTTP1_RESP_CLOSE;
    r->keep_alive = false;
    return HTTP1_OK;
}

int http1_parse_response(struct http1_resp_parser *p, const char *buf, size_t len,
                         uint32_t max_head, bool head_request, struct http1_resp *r)
{
    r->num_headers = 0;
    r->error = NULL;
    r->content_length = 0;
    long end = find_end(p, buf, len);
    if (end < 0) {
        if (len > max_head)
            return fail(r, HTTP1_E_HEADERS_LARGE, "response head larger than the limit");
        return HTTP1_INCOMPLETE;
    }
    if ((size_t)end > max_head)
        return fail(r, HTTP1_E_HEADERS_LARGE, "response head larger than the limit");
    r->head_len = (uint32_t)end;
    const char *s = buf, *stop = buf + end - 2; /* the final CRLF */
    bool first = true;
    while (s < stop) {
        const char *eol = memchr(s, '\r', (size_t)(stop - s));
        if (!eol || eol[1] != '\n')
            return fail(r, HTTP1_E_BAD_RESPONSE, "bare CR in the head");
        size_t n = (size_t)(eol - s);
        if (memchr(s, '\n', n))
            return fail(r, HTTP1_E_BAD_RESPONSE, "bare LF in the head");
        int ret;
        if (first)
            ret = status_line(s, n, r);
        else if (n == 0)
            ret = fail(r, HTTP1_E_BAD_RESPONSE, "empty line inside the head");
        else
            ret = field_line(s, n, r);
        if (ret != HTTP1_OK)
            return ret;
        first = false;
        s = eol + 2;
    }
    if (first)
        return fail(r, HTTP1_E_BAD_RESPONSE, "empty response head");
    return framing(r, head_request);
}

const struct http1_header *http1_resp_header(const struct http1_resp *r, const char *name)
{
    for (uint32_t i = 0; i < r->num_headers; i++)
        if (http1_token_eq(r->headers[i].name, r->headers[i].name_len, name))
            return &r->headers[i];
    return NULL;
}
