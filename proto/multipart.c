/*
 * multipart.c - incremental multipart/form-data parser (see multipart.h).
 *
 * The body is scanned for the delimiter "\r\n--boundary". The body's start
 * counts as if preceded by CRLF (the first delimiter has none), so the
 * parser starts with two delimiter bytes already matched. A boundary holds
 * no CR (RFC 2046's bchars), so after a partial match fails, no suffix of
 * the matched bytes can begin another match: the held-back bytes are
 * exactly delim[0..match) and are handed out from delim itself, and the
 * byte that broke the match is examined afresh. Work is linear in the body.
 */
#include "proto/multipart.h"

#include <string.h>

enum {
    S_PREAMBLE,
    S_BODY,
    S_AFTER_DELIM, /* "--" (close) or padding then CRLF */
    S_DASH2,
    S_PAD, /* transport padding before CRLF */
    S_PAD_LF,
    S_HEADERS,
    S_EPILOGUE,
    S_ERROR,
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_ws(int c)
{
    return c == ' ' || c == '\t';
}

/* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=? " */
static int is_bchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

/* RFC 9110 tchar */
static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * One parameter list "; a=b; c="d"" starting at s[*i]. Returns 1 with the
 * name's span and the (unquoted, unescaped) value copied to val, 0 at the
 * end, -1 when malformed or when the value does not fit in cap.
 */
static int next_param(const char *s, size_t n, size_t *i, const char **name, size_t *name_len,
                      char *val, size_t cap, size_t *val_len)
{
    size_t p = *i, o = 0;

    while (p < n && is_ws((unsigned char)s[p]))
        p++;
    if (p == n) {
        *i = p;
        return 0;
    }
    if (s[p++] != ';')
        return -1;
    while (p < n && is_ws((unsigned char)s[p]))
        p++;
    *name = s + p;
    while (p < n && is_tchar((unsigned char)s[p]))
        p++;
    *name_len = (size_t)(s + p - *name);
    if (*name_len == 0)
        return -1;
    while (p < n && is_ws((unsigned char)s[p]))
        p++;
    if (p == n || s[p++] != '=')
        return -1;
    while (p < n && is_ws((unsigned char)s[p]))
        p++;
    if (p < n && s[p] == '"') {
        for (p++;; p++) {
            unsigned char c;
            if (p == n)
                return -1; /* unterminated */
            c = (unsigned char)s[p];
            if (c == '"')
                break;
            if (c == '\\') {
                if (++p == n)
                    return -1;
                c = (unsigned char)s[p];
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return -1;
            if (o + 1 >= cap)
                return -1;
            val[o++] = (char)c;
        }
        p++;
    } else {
        while (p < n && is_tchar((unsigned char)s[p])) {
            if (o + 1 >= cap)
                return -1;
            val[o++] = s[p++];
        }
        if (o == 0)
            return -1;
    }
    val[o] = '\0';
    *val_len = o;
    *i = p;
    return 1;
}

int multipart_boundary(const char *ct, size_t n, char *out, size_t cap)
{
    static const char type[] = "multipart/form-data";
    size_t i = 0, tl = sizeof(type) - 1, nl, vl;
    const char *name;
    char val[MULTIPART_MAX_BOUNDARY + 2];
    int found = 0, rc;

    while (i < n && is_ws((unsigned char)ct[i]))
        i++;
    if (n - i < tl || !ieq(ct + i, tl, type))
        return 0;
    i += tl;
    if (i < n && !is_ws((unsigned char)ct[i]) && ct[i] != ';')
        return 0; /* e.g. multipart/form-dataX */
    while ((rc = next_param(ct, n, &i, &name, &nl, val, sizeof(val), &vl)) == 1) {
        if (!ieq(name, nl, "boundary"))
            continue;
        if (found || vl == 0 || vl > MULTIPART_MAX_BOUNDARY || val[vl - 1] == ' ')
            return -1;
        for (size_t k = 0; k < vl; k++)
            if (!is_bchar((unsigned char)val[k]))
                return -1;
        if (vl + 1 > cap)
            return -1;
        memcpy(out, val, vl + 1);
        found = (int)vl;
    }
    if (rc < 0 || !found)
        return -1;
    return found;
}

void multipart_init(struct multipart *m, const char *boundary, size_t n)
{
    memset(m, 0, sizeof(*m));
    if (n > MULTIPART_MAX_BOUNDARY)
        n = MULTIPART_MAX_BOUNDARY;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->delim_len = 4 + n;
    m->match = 2; /* the body's start counts as a CRLF */
    m->state = S_PREAMBLE;
}

static enum multipart_event fail(struct multipart *m, const char *why)
{
    m->state = S_ERROR;
    m->error = why;
    return MULTIPART_ERROR;
}

/* Content-Disposition: form-data; name="..."; filename="..." */
static int parse_disposition(struct multipart *m, const char *v, size_t n)
{
    struct multipart_part *p = &m->part;
    size_t i = 0, nl, vl;
    const char *name;
    char val[MULTIPART_MAX_FILENAME + 1];
    int rc, has_name = 0;

    while (i < n && is_tchar((unsigned char)v[i]))
        i++;
    if (!ieq(v, i, "form-data"))
        return -1;
    while ((rc = next_param(v, n, &i, &name, &nl, val, sizeof(val), &vl)) == 1) {
        if (ieq(name, nl, "name")) {
            if (has_name || vl == 0 || vl > MULTIPART_MAX_NAME)
                return -1;
            memcpy(p->name, val, vl + 1);
            has_name = 1;
        } else if (ieq(name, nl, "filename")) {
            if (p->has_filename)
                return -1;
            memcpy(p->filename, val, vl + 1);
            p->has_filename = 1;
        }
        /* other parameters (filename* included, which RFC 7578 §4.2 says
         * senders must not use) are ignored */
    }
    return rc < 0 || !has_name ? -1 : 0;
}

/* The header block head[0..head_len), CRLFCRLF (or a lone CRLF) at its end. */
static enum multipart_event parse_head(struct multipart *m)
{
    const char *s = m->head, *end = m->head + m->head_len - 2;
    int have_cd = 0, have_ct = 0;

    memset(&m->part, 0, sizeof(m->part));
    while (s < end) {
        const char *eol = memchr(s, '\r', (size_t)(end - s));
        const char *colon, *v, *ve;

        if (eol == NULL || eol[1] != '\n')
            return fail(m, "multipart: part header line without CRLF");
        if (is_ws((unsigned char)*s))
            return fail(m, "multipart: folded part header");
        colon = memchr(s, ':', (size_t)(eol - s));
        if (colon == NULL || colon == s)
            return fail(m, "multipart: part header without a name");
        for (const char *k = s; k < colon; k++)
            if (!is_tchar((unsigned char)*k))
                return fail(m, "multipart: bad part header name");
        v = colon + 1;
        ve = eol;
        while (v < ve && is_ws((unsigned char)*v))
            v++;
        while (ve > v && is_ws((unsigned char)ve[-1]))
            ve--;
        for (const char *k = v; k < ve; k++)
            if (((unsigned char)*k < 0x20 && *k != '\t') || *k == 0x7f)
                return fail(m, "multipart: control character in a part header");
        if (ieq(s, (size_t)(colon - s), "content-disposition")) {
            if (have_cd++)
                return fail(m, "multipart: two Content-Disposition headers in a part");
            if (parse_disposition(m, v, (size_t)(ve - v)) < 0)
                return fail(m, "multipart: Content-Disposition must be form-data with a name");
        } else if (ieq(s, (size_t)(colon - s), "content-type")) {
            size_t l = (size_t)(ve - v);
            if (have_ct++)
                return fail(m, "multipart: two Content-Type headers in a part");
            if (l == 0 || l > MULTIPART_MAX_CTYPE)
                return fail(m, "multipart: part Content-Type empty or too long");
            memcpy(m->part.content_type, v, l);
            m->part.content_type[l] = '\0';
        }
        s = eol + 2;
    }
    if (!have_cd)
        return fail(m, "multipart: part without Content-Disposition");
    m->parts++;
    m->state = S_BODY;
    m->match = 0;
    return MULTIPART_PART;
}

/*
 * Scans for the delimiter. Returns 1 when it completed (consumed through
 * it), 0 with a piece of body in ev_data/ev_len (possibly empty when all
 * input went into a partial match).
 */
static int scan(struct multipart *m, const char *in, size_t n, size_t *consumed)
{
    const char *d = m->delim;
    size_t dl = m->delim_len, i = 0;

    m->ev_data = NULL;
    m->ev_len = 0;
    if (m->match > 0) {
        while (i < n && m->match < dl && in[i] == d[m->match]) {
            i++;
            m->match++;
        }
        *consumed = i;
        if (m->match == dl) {
            m->match = 0;
            return 1;
        }
        if (i < n) { /* broken: the held-back bytes were body */
            m->ev_data = d;
            m->ev_len = m->match;
            m->match = 0;
        }
        return 0;
    }
    const char *cr = memchr(in, '\r', n);
    if (cr == NULL || cr > in) {
        m->ev_data = in;
        m->ev_len = cr == NULL ? n : (size_t)(cr - in);
        *consumed = m->ev_len;
        return 0;
    }
    while (i < n && i < dl && in[i] == d[i])
        i++;
    *consumed = i;
    if (i == dl)
        return 1;
    if (i == n) {
        m->match = i;
        return 0;
    }
    m->ev_data = in;
    m->ev_len = i;
    return 0;
}

enum multipart_event multipart_feed(struct multipart *m, const char *in, size_t n, size_t *consumed)
{
    size_t used = 0, c;

    for (;;) {
        const char *p = in + used;
        size_t left = n - used;

        switch (m->state) {
        case S_ERROR:
            *consumed = used;
            return MULTIPART_ERROR;
        case S_EPILOGUE:
            *consumed = n;
            return MULTIPART_DONE;
        case S_PREAMBLE:
        case S_BODY:
            if (left == 0) {
                *consumed = used;
                return MULTIPART_AGAIN;
            }
            if (scan(m, p, left, &c)) {
                used += c;
                if (m->state == S_BODY) {
                    m->state = S_AFTER_DELIM;
                    *consumed = used;
                    return MULTIPART_PART_END;
                }
                m->state = S_AFTER_DELIM;
                continue;
            }
            used += c;
            if (m->state == S_BODY && m->ev_len > 0) {
                *consumed = used;
                return MULTIPART_DATA;
            }
            continue; /* preamble bytes are dropped */
        case S_AFTER_DELIM:
        case S_DASH2:
        case S_PAD:
        case S_PAD_LF:
            if (left == 0) {
                *consumed = used;
                return MULTIPART_AGAIN;
            }
            used++;
            if (m->state == S_DASH2) {
                if (*p != '-')
                    return (*consumed = used, fail(m, "multipart: bad closing delimiter"));
                m->state = S_EPILOGUE;
                *consumed = n;
                return MULTIPART_DONE;
            }
            if (m->state == S_PAD_LF) {
                if (*p != '\n')
                    return (*consumed = used, fail(m, "multipart: delimiter line without CRLF"));
                m->state = S_HEADERS;
                m->head_len = 0;
                continue;
            }
            if (*p == '-' && m->state == S_AFTER_DELIM)
                m->state = S_DASH2;
            else if (is_ws((unsigned char)*p))
                m->state = S_PAD;
            else if (*p == '\r')
                m->state = S_PAD_LF;
            else
                return (*consumed = used,
                        fail(m, "multipart: bytes after a delimiter on its line"));
            continue;
        case S_HEADERS:
            while (used < n) {
                char ch = in[used++];
                size_t h;
                if (m->head_len == sizeof(m->head))
                    return (*consumed = used, fail(m, "multipart: part headers too large"));
                m->head[m->head_len++] = ch;
                h = m->head_len;
                if (ch != '\n' || h < 2 || m->head[h - 2] != '\r')
                    continue;
                if (h == 2 || (h >= 4 && m->head[h - 3] == '\n' && m->head[h - 4] == '\r')) {
                    *consumed = used;
                    return parse_head(m);
                }
            }
            *consumed = used;
            return MULTIPART_AGAIN;
        }
    }
}

int multipart_finish(struct multipart *m)
{
    if (m->state == S_EPILOGUE)
        return 0;
    if (m->state != S_ERROR)
        fail(m, "multipart: body ends before the closing delimiter");
    return -1;
}

bool multipart_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > MULTIPART_MAX_NAME)
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
