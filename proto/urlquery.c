/*
 * urlquery.c - query-string lookup and percent-decoding of query values and
 * path segments (see urlquery.h).
 */
#include "proto/urlquery.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* plus_space: '+' is a space (a query value) or itself (a path segment). */
static long decode(const char *s, size_t n, char *out, size_t cap, int plus_space)
{
    const char *end = s + n;
    size_t o = 0;
    for (const char *v = s; v < end; v++) {
        char c = *v;
        if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '%') {
            if (end - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                return -1;
            c = (char)(hexval(v[1]) * 16 + hexval(v[2]));
            v += 2;
        }
        if (o + 1 >= cap || c == 0)
            return -1;
        out[o++] = c;
    }
    if (!cap)
        return -1;
    out[o] = 0;
    return (long)o;
}

long urlquery_decode(const char *s, size_t n, char *out, size_t cap)
{
    return decode(s, n, out, cap, 1);
}

long urlpath_decode(const char *s, size_t n, char *out, size_t cap)
{
    return decode(s, n, out, cap, 0);
}

int urlquery_get(const char *q, size_t qn, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (!q)
        return 0;
    const char *end = q + qn;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == nl && !memcmp(q, name, nl)) {
            const char *v = eq ? eq + 1 : pe;
            return urlquery_decode(v, (size_t)(pe - v), out, cap) < 0 ? -1 : 1;
        }
        q = pe + 1;
    }
    return 0;
}
