/*
 * openapi.h - docs/openapi.json, the API's contract, built into the binary
 * (build.zig writes openapi_gen.c from it: compacted, with a strong ETag
 * computed from those bytes) and served by GET /v1/openapi.json
 * (openapi.c).
 */
#ifndef TRIREME_MODULES_WEB_OPENAPI_H
#define TRIREME_MODULES_WEB_OPENAPI_H

extern const char openapi_json[];
extern const unsigned openapi_json_len;
extern const char openapi_etag[]; /* quoted, as the ETag header carries it */

#endif
