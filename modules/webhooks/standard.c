/*
 * standard.c - the Standard Webhooks secret and signature (standard.h).
 */
#include "modules/webhooks/standard.h"

#include <string.h>

long stdwh_secret(const char *v, uint8_t *key, size_t cap)
{
    if (!strncmp(v, "whsec_", 6))
        v += 6;
    long n = base64_decode(v, strlen(v), key, cap);
    return n > 0 ? n : -1;
}

size_t stdwh_sign(const uint8_t *key, size_t klen, const char *id, size_t idn, const char *ts,
                  size_t tsn, const void *body, size_t blen, char *sig)
{
    struct hmac_piece p[] = {{id, idn}, {".", 1}, {ts, tsn}, {".", 1}, {body, blen}};
    uint8_t mac[HMAC_MAX_OUT];
    size_t n = hmac(HMAC_SHA256, key, klen, p, 5, mac);
    base64_encode(mac, n, sig);
    return BASE64_LEN(n);
}
