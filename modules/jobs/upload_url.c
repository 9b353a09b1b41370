/*
 * upload_url.c - signing and checking file URLs (see upload_url.h).
 */
#include "modules/jobs/upload_url.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kernel/hmac.h"
#include "proto/base64.h"

/* hex HMAC of "GET\n<path>\n<expires>" into hex[UPLOAD_SIG_HEX + 1] */
static void sign(const char *secret, size_t secret_len, const char *path, size_t path_len,
                 const char *expires, size_t expires_len, char *hex)
{
    uint8_t mac[HMAC_MAX_OUT];
    struct hmac_piece p[5] = {
        {"GET\n", 4}, {path, path_len}, {"\n", 1}, {expires, expires_len}, {NULL, 0},
    };
    size_t n = hmac(HMAC_SHA256, secret, secret_len, p, 4, mac);

    hex_encode(mac, n, hex);
    hex[2 * n] = '\0';
}

static size_t file_path(const char *job_id, const char *name, char *out, size_t cap)
{
    int n;

    if (!multipart_name_ok(job_id, strlen(job_id)) || !multipart_name_ok(name, strlen(name)))
        return 0;
    n = snprintf(out, cap, "/v1/jobs/%s/files/%s", job_id, name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t upload_signed_path(const char *secret, size_t secret_len, const char *job_id,
                          const char *name, int64_t expires_unix, char *out, size_t cap)
{
    char path[UPLOAD_URL_MAX], exp[24], sig[UPLOAD_SIG_HEX + 1];
    size_t pl;
    int el, n;

    if (secret_len == 0 || expires_unix < 0)
        return 0;
    pl = file_path(job_id, name, path, sizeof(path));
    if (pl == 0)
        return 0;
    el = snprintf(exp, sizeof(exp), "%" PRId64, expires_unix);
    sign(secret, secret_len, path, pl, exp, (size_t)el, sig);
    n = snprintf(out, cap, "%s?expires=%s&sig=%s", path, exp, sig);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int upload_check_signature(const char *secret, size_t secret_len, const char *job_id,
                           const char *name, const char *expires, size_t expires_len,
                           const char *sig, size_t sig_len, int64_t now_unix)
{
    char path[UPLOAD_URL_MAX], want[UPLOAD_SIG_HEX + 1];
    size_t pl;
    int64_t e = 0;

    if (secret_len == 0 || sig_len != UPLOAD_SIG_HEX || expires_len == 0 || expires_len > 18)
        return -1;
    for (size_t i = 0; i < expires_len; i++) {
        if (expires[i] < '0' || expires[i] > '9')
            return -1;
        e = e * 10 + (expires[i] - '0');
    }
    pl = file_path(job_id, name, path, sizeof(path));
    if (pl == 0)
        return -1;
    sign(secret, secret_len, path, pl, expires, expires_len, want);
    if (!ct_equal(want, sig, UPLOAD_SIG_HEX))
        return -1;
    return e < now_unix ? -2 : 0;
}
