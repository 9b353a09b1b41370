/*
 * upload_url.h - signed, expiring URLs of uploaded files, for kinds
 * that hand a job's files to someone without an API key (HTTP-push kinds
 * put the URL in the request they send; the receiver GETs it).
 *
 * A signed URL is the API's file route with two query parameters:
 *
 *   /v1/jobs/{id}/files/{name}?expires=<unix seconds>&sig=<hex>
 *
 * sig is HMAC-SHA256 under --upload-url-secret of
 * "GET\n/v1/jobs/{id}/files/{name}\n<expires>", in lower-case hex. The
 * method and path are signed so a signature for one file opens no other;
 * the expiry is signed so it cannot be stretched. upload_check_signature()
 * is the file route's side: it accepts such a request without an API key
 * when the signature matches (compared in constant time) and expires is
 * not past.
 *
 * Job ids and file names are restricted to [A-Za-z0-9._-] (1..128 bytes,
 * not "." or ".."; uploads must refuse other names), so
 * they need no escaping in a URL or in a file path.
 */
#ifndef TRIREME_MODULES_JOBS_UPLOAD_URL_H
#define TRIREME_MODULES_JOBS_UPLOAD_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/multipart.h"

#define UPLOAD_INFLIGHT   2     /* chunk INSERTs in flight per upload */
#define UPLOAD_TIMEOUT_MS 30000 /* each statement of an upload */

#define UPLOAD_NAME_MAX MULTIPART_MAX_NAME
#define UPLOAD_SIG_HEX  64 /* HMAC-SHA256, hex */
/* Longest path+query upload_signed_path writes, NUL included. */
#define UPLOAD_URL_MAX                                                                             \
    (sizeof("/v1/jobs//files/?expires=&sig=") + 2 * UPLOAD_NAME_MAX + 20 + UPLOAD_SIG_HEX)

/*
 * Writes the signed path and query of file `name` of job `job_id`, valid
 * until expires_unix, into out (NUL-terminated); prefix it with the API's
 * public base URL. Returns its length, or 0 when the secret is empty, a
 * name is invalid or cap is too small (UPLOAD_URL_MAX always suffices).
 */
size_t upload_signed_path(const char *secret, size_t secret_len, const char *job_id,
                          const char *name, int64_t expires_unix, char *out, size_t cap);

/*
 * Checks a request for the file route: expires and sig as found in its
 * query (not decoded: both are plain digits and hex). Returns 0 when valid
 * at now_unix, -1 when the signature does not match (or is malformed, or
 * the secret is empty), -2 when it matches but has expired.
 */
int upload_check_signature(const char *secret, size_t secret_len, const char *job_id,
                           const char *name, const char *expires, size_t expires_len,
                           const char *sig, size_t sig_len, int64_t now_unix);

#endif
