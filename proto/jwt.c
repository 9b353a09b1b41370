/*
 * jwt.c - JWS compact splitting and JWT time checks; see jwt.h.
 */
#include "proto/jwt.h"

#include <string.h>

#include "proto/base64.h"

const char *jwt_split(const char *tok, size_t len, struct jwt_parts *p)
{
    if (len == 0)
        return "empty token";
    if (len > JWT_MAX_TOKEN)
        return "token too long";
    const char *d1 = memchr(tok, '.', len);
    if (!d1)
        return "not a JWS compact token (no '.')";
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2)
        return "not a JWS compact token (two parts)";
    if (memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return "not a JWS compact token (more than three parts)";
    size_t hl = (size_t)(d1 - tok), pl = (size_t)(d2 - d1 - 1), sl = len - (size_t)(d2 + 1 - tok);
    if (!hl || !pl)
        return "empty header or payload";
    long n = base64url_decode(tok, hl, (uint8_t *)p->header, sizeof(p->header) - 1);
    if (n < 0)
        return "header is not base64url";
    p->header_len = (size_t)n;
    p->header[n] = '\0';
    n = base64url_decode(d1 + 1, pl, (uint8_t *)p->payload, sizeof(p->payload) - 1);
    if (n < 0)
        return "payload is not base64url";
    p->payload_len = (size_t)n;
    p->payload[n] = '\0';
    /* An embedded NUL would make the JSON parser see less than was signed. */
    if (memchr(p->header, '\0', p->header_len) || memchr(p->payload, '\0', p->payload_len))
        return "NUL byte in header or payload";
    n = base64url_decode(d2 + 1, sl, p->sig, sizeof(p->sig));
    if (n < 0)
        return "signature is not base64url";
    p->sig_len = (size_t)n;
    p->signing_input = tok;
    p->signing_input_len = (size_t)(d2 - tok);
    return NULL;
}

enum jwt_alg jwt_alg_from_name(const char *name)
{
    static const struct {
        const char *name;
        enum jwt_alg alg;
    } names[] = {{"none", JWT_ALG_NONE}, {"HS256", JWT_HS256}, {"HS384", JWT_HS384},
                 {"HS512", JWT_HS512},   {"RS256", JWT_RS256}, {"ES256", JWT_ES256}};
    /* Case-sensitive on purpose (RFC 7515 4.1.1): "None" is not "none". */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(name, names[i].name))
            return names[i].alg;
    return JWT_ALG_UNKNOWN;
}

enum jwt_time_result jwt_check_time(bool has_exp, int64_t exp, bool has_nbf, int64_t nbf,
                                    int64_t now, int64_t leeway)
{
    if (has_exp && now - leeway >= exp) /* exp may be near INT64_MAX: no exp + leeway */
        return JWT_TIME_EXPIRED;
    if (has_nbf && now + leeway < nbf)
        return JWT_TIME_NOT_YET;
    return JWT_TIME_OK;
}

bool jwt_scope_has(const char *list, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - p) == wl && wl && !memcmp(p, word, wl))
            return true;
        p = e;
    }
    return false;
}
