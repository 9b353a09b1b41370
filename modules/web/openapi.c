/*
 * openapi.c - GET /v1/openapi.json: the OpenAPI 3.1 document of this API
 * (docs/openapi.json, embedded at build time: openapi.h).
 *
 * No API key: a contract is public, and clients fetch it before they hold
 * one. The document changes only with the binary, so it carries a strong
 * ETag and may be cached; a client that sends the ETag back in
 * If-None-Match gets 304 without the body.
 */
#include <stdio.h>

#include "modules/web/openapi.h"
#include "modules/web/web.h"

/* Cached for a while, then revalidated: an upgrade changes the ETag. */
#define OPENAPI_CACHE_HDR "Cache-Control: public, max-age=300\r\n"

void web_openapi(struct web_request *r)
{
    char extra[128];
    snprintf(extra, sizeof(extra), "ETag: %s\r\n" OPENAPI_CACHE_HDR, openapi_etag);
    if (web_etag_matches(r, openapi_etag)) {
        web_respond(r, 304, NULL, NULL, 0, extra);
        return;
    }
    web_respond(r, 200, "application/json", openapi_json, openapi_json_len, extra);
}
