/*
 * http_url.c - splitting http(s) URLs (see http_url.h).
 */
#include "proto/http_url.h"

#include <string.h>

static int fail(const char **error, const char *msg)
{
    *error = msg;
    return -1;
}

static bool prefix_ieq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n < l)
        return false;
    for (size_t i = 0; i < l; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (c != lit[i])
            return false;
    }
    return true;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

int http_url_parse(const char *url, size_t len, struct http_url *u, const char **error)
{
    memset(u, 0, sizeof(*u));
    size_t i;
    if (prefix_ieq(url, len, "https://")) {
        u->tls = true;
        i = 8;
    } else if (prefix_ieq(url, len, "http://")) {
        i = 7;
    } else {
        return fail(error, "URL scheme must be http:// or https://");
    }
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)url[k] <= 0x20 || (unsigned char)url[k] >= 0x7f)
            return fail(error, "URL holds a space, control or non-ASCII byte");
    size_t a = i;
    while (i < len && url[i] != '/' && url[i] != '?' && url[i] != '#')
        i++;
    const char *auth = url + a;
    size_t alen = i - a;
    if (memchr(auth, '@', alen))
        return fail(error, "URL must not carry user:password@");
    size_t hl;
    const char *h;
    const char *rest;
    if (alen && auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close)
            return fail(error, "URL IPv6 literal without ]");
        h = auth + 1;
        hl = (size_t)(close - h);
        for (size_t k = 0; k < hl; k++)
            if (!v6_char(h[k]))
                return fail(error, "URL IPv6 literal is not hexadecimal");
        u->ipv6 = true;
        rest = close + 1;
    } else {
        h = auth;
        const char *colon = memchr(auth, ':', alen);
        hl = colon ? (size_t)(colon - auth) : alen;
        for (size_t k = 0; k < hl; k++)
            if (!host_char(h[k]))
                return fail(error, "URL host has a character not allowed in a host name");
        rest = auth + hl;
    }
    if (hl == 0)
        return fail(error, "URL has no host");
    if (hl > HTTP_URL_MAX_HOST)
        return fail(error, "URL host is too long");
    u->host = h;
    u->host_len = (uint32_t)hl;
    u->port = u->tls ? 443 : 80;
    const char *aend = auth + alen;
    if (rest < aend) {
        if (*rest != ':' || rest + 1 == aend)
            return fail(error, "URL port is not a number");
        long p = 0;
        for (const char *q = rest + 1; q < aend; q++) {
            if (*q < '0' || *q > '9' || p > 65535)
                return fail(error, "URL port is not a number from 1 to 65535");
            p = p * 10 + (*q - '0');
        }
        if (p < 1 || p > 65535)
            return fail(error, "URL port is not a number from 1 to 65535");
        u->port = (int)p;
        u->port_explicit = true;
    }
    const char *hash = memchr(url + i, '#', len - i);
    size_t tend = hash ? (size_t)(hash - url) : len;
    if (i == tend || url[i] == '?') {
        if (i != tend)
            return fail(error, "URL query without a path");
        u->target = "/";
        u->target_len = 1;
    } else {
        u->target = url + i;
        u->target_len = (uint32_t)(tend - i);
    }
    return 0;
}
