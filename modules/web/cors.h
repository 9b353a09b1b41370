/*
 * cors.h - CORS for browser clients on other origins (--cors-origins).
 */
#ifndef TRIREME_MODULES_WEB_CORS_H
#define TRIREME_MODULES_WEB_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel/config.h"
#include "proto/http1.h"

/* Room cors_headers needs at most. */
#define CORS_HEADERS_MAX 512
/* A longer Origin is never allowed (its answer still says Vary). */
#define CORS_ORIGIN_MAX 200

/*
 * Writes the CORS response headers for request h into out (NUL-terminated,
 * possibly empty) and returns their length: `Vary: Origin` whenever CORS is
 * configured, `Access-Control-Allow-Origin` only for an allowed Origin.
 * With preflight, also the allowed methods, headers and max-age.
 */
size_t cors_headers(const struct config *cfg, const struct http1_request *h, bool preflight,
                    char out[CORS_HEADERS_MAX]);

/* True for an OPTIONS request carrying Origin: a preflight, answered
 * without authentication. */
bool cors_is_preflight(const struct config *cfg, const struct http1_request *h);

#endif
