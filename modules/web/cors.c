/*
 * cors.c - CORS response headers and preflights (Fetch standard, "CORS
 * protocol"). Origins are matched exactly (scheme, host and port as the
 * browser sends them); an origin not listed gets no CORS header at all, so
 * the browser refuses the response. "*" is answered as "*" and never with
 * Access-Control-Allow-Credentials: bearer tokens travel in a header the
 * page sets, not as browser credentials, so none are needed.
 */
#include "modules/web/cors.h"

#include <stdio.h>
#include <string.h>

#include "proto/csv_list.h"

static bool origin_allowed(const char *list, const char *o, size_t ol, bool *star)
{
    const char *at = list, *p;
    size_t n;
    *star = false;
    while (csv_next(&at, &p, &n)) {
        if (n == 1 && *p == '*')
            return *star = true;
        if (n == ol && !memcmp(p, o, n))
            return true;
    }
    return false;
}

bool cors_is_preflight(const struct config *cfg, const struct http1_request *h)
{
    return *cfg->cors_origins && h->method_len == 7 && !memcmp(h->method, "OPTIONS", 7) &&
           http1_find_header(h, "origin");
}

size_t cors_headers(const struct config *cfg, const struct http1_request *h, bool preflight,
                    char out[CORS_HEADERS_MAX])
{
    out[0] = '\0';
    if (!*cfg->cors_origins)
        return 0;
    const struct http1_header *o = http1_find_header(h, "origin");
    bool star;
    /* Vary always: a cache must not serve one origin's answer to another. */
    if (!o || o->value_len > CORS_ORIGIN_MAX ||
        !origin_allowed(cfg->cors_origins, o->value, o->value_len, &star))
        return (size_t)snprintf(out, CORS_HEADERS_MAX, "Vary: Origin\r\n");
    int n = snprintf(out, CORS_HEADERS_MAX, "Vary: Origin\r\nAccess-Control-Allow-Origin: %.*s\r\n",
                     star ? 1 : (int)o->value_len, star ? "*" : o->value);
    if (preflight)
        n += snprintf(out + n, CORS_HEADERS_MAX - (size_t)n,
                      "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
                      "Access-Control-Allow-Headers: Authorization, Content-Type, "
                      "Idempotency-Key, X-Request-Id\r\n"
                      "Access-Control-Max-Age: %u\r\n",
                      cfg->cors_max_age);
    else
        n += snprintf(out + n, CORS_HEADERS_MAX - (size_t)n,
                      "Access-Control-Expose-Headers: X-Request-Id, Retry-After\r\n");
    return (size_t)n;
}
