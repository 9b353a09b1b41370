/*
 * openapi.c - GET /v1/openapi.json: the OpenAPI 3.1 document of this API
 * (docs/openapi.json, embedded at build time: openapi.h).
 *
 * No API key: a contract is public, and clients fetch it before they hold
 * one. The document changes only with the binary, so it carries a strong
 * ETag and may be cached; a client that sends the ETag back in
 * If-None-Match gets 304 without the body.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "modules/web/openapi.h"
#include "modules/web/web.h"

/* Cached for a while, then revalidated: an upgrade changes the ETag. */
#define OPENAPI_CACHE_HDR "Cache-Control: public, max-age=300\r\n"

/* Does an If-None-Match list (RFC 9110 13.1.2: "*", or ETags separated by
 * commas, weak ones compared weakly) name ours? */
static bool etag_matches(const char *v, size_t n)
{
    size_t tag = strlen(openapi_etag);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i < n && v[i] == '*')
            return true;
        if (i + 2 <= n && v[i] == 'W' && v[i + 1] == '/')
            i += 2;
        if (i + tag <= n && !memcmp(v + i, openapi_etag, tag))
            return true;
        while (i < n && v[i] != ',')
            i++;
    }
    return false;
}

void web_openapi(struct web_request *r)
{
    char extra[128];
    snprintf(extra, sizeof(extra), "ETag: %s\r\n" OPENAPI_CACHE_HDR, openapi_etag);
    const struct http1_header *h = http1_find_header(r->http, "if-none-match");
    if (h && etag_matches(h->value, h->value_len)) {
        web_respond(r, 304, NULL, NULL, 0, extra);
        return;
    }
    web_respond(r, 200, "application/json", openapi_json, openapi_json_len, extra);
}
