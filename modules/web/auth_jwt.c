/*
 * auth_jwt.c - verifies JWT bearer tokens signed with HMAC (RFC 7518 3.2).
 *
 * proto/jwt cuts the token; this file parses the header and claims with
 * jansson, checks the signature with kernel/hmac and the claims against the
 * configuration. The algorithm comes from the token's header, so it is
 * checked against what the key can do before anything else: "none" and any
 * algorithm this key type does not serve are refused (the classic
 * algorithm-confusion attacks), never "verified" some other way.
 */
#include "modules/web/auth_jwt.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kernel/hmac.h"
#include "proto/base64.h"
#include "proto/jwt.h"

static const char *secret_of(const struct config *cfg)
{
    return *cfg->jwt_secret ? cfg->jwt_secret : cfg->supabase_jwt_secret;
}

bool auth_jwt_enabled(const struct config *cfg)
{
    return *secret_of(cfg) != '\0';
}

static const char *check_alg(const char *header, enum hmac_alg *halg, size_t *siglen)
{
    json_t *h = json_loads(header, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        return "JWT header is not a JSON object";
    }
    const char *name = json_string_value(json_object_get(h, "alg"));
    enum jwt_alg alg = name ? jwt_alg_from_name(name) : JWT_ALG_UNKNOWN;
    /* RFC 7515 4.1.11: an extension we must understand but do not. */
    bool crit = json_object_get(h, "crit") != NULL;
    json_decref(h);
    if (crit)
        return "JWT header has crit extensions, none supported";
    switch (alg) {
    case JWT_HS256:
        *halg = HMAC_SHA256, *siglen = 32;
        return NULL;
    case JWT_HS512:
        *halg = HMAC_SHA512, *siglen = 64;
        return NULL;
    case JWT_ALG_NONE:
        return "JWT alg none is refused";
    case JWT_HS384:
        return "JWT alg HS384 is not supported";
    case JWT_RS256:
    case JWT_ES256:
        return "JWT alg does not match the configured key (an HMAC secret)";
    case JWT_ALG_UNKNOWN:
        break;
    }
    return "JWT alg missing or not supported";
}

static bool aud_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), want);
    size_t i;
    json_t *v;
    json_array_foreach(aud, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return true;
    return false;
}

static const char *claim_scopes(const struct config *cfg, json_t *c, char *out)
{
    json_t *scope = json_object_get(c, "scope"), *list = json_object_get(c, "scopes");
    const char *role = json_string_value(json_object_get(c, "role"));
    size_t n = 0;
    out[0] = '\0';
    if (scope) {
        if (!json_is_string(scope) || json_string_length(scope) >= AUTH_SCOPES_MAX)
            return "JWT scope is not a string of at most 511 bytes";
        memcpy(out, json_string_value(scope), json_string_length(scope) + 1);
        return NULL;
    }
    if (list) {
        size_t i;
        json_t *v;
        if (!json_is_array(list))
            return "JWT scopes is not an array";
        json_array_foreach(list, i, v)
        {
            size_t l = json_string_length(v);
            if (!json_is_string(v) || n + l + 2 > AUTH_SCOPES_MAX)
                return "JWT scopes holds a non-string or is too long";
            if (n)
                out[n++] = ' ';
            memcpy(out + n, json_string_value(v), l + 1);
            n += l;
        }
        return NULL;
    }
    snprintf(out, AUTH_SCOPES_MAX, "%s",
             role && !strcmp(role, "service_role") ? "admin" : cfg->jwt_default_scopes);
    return NULL;
}

/* A NumericDate as whole seconds, clamped to int64_t: a token may carry
 * 1e300, and converting an out-of-range double is undefined. */
static int64_t claim_seconds(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    double d = json_number_value(v);
    if (d >= 9.2e18)
        return INT64_MAX;
    if (d <= -9.2e18)
        return INT64_MIN;
    return (int64_t)d;
}

static const char *check_claims(const struct config *cfg, const char *payload, int64_t now,
                                char *scopes)
{
    json_t *c = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return "JWT claims are not a JSON object";
    }
    const char *why = NULL;
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    if ((exp && !json_is_number(exp)) || (nbf && !json_is_number(nbf))) {
        why = "JWT exp or nbf is not a number";
        goto out;
    }
    switch (jwt_check_time(exp != NULL, exp ? claim_seconds(exp) : 0, nbf != NULL,
                           nbf ? claim_seconds(nbf) : 0, now, cfg->jwt_leeway)) {
    case JWT_TIME_EXPIRED:
        why = "JWT expired";
        goto out;
    case JWT_TIME_NOT_YET:
        why = "JWT not valid yet (nbf)";
        goto out;
    case JWT_TIME_OK:
        break;
    }
    if (*cfg->jwt_issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, cfg->jwt_issuer)) {
            why = "JWT iss does not match --jwt-issuer";
            goto out;
        }
    }
    if (*cfg->jwt_audience && !aud_has(json_object_get(c, "aud"), cfg->jwt_audience)) {
        why = "JWT aud does not contain --jwt-audience";
        goto out;
    }
    why = claim_scopes(cfg, c, scopes);
out:
    json_decref(c);
    return why;
}

const char *auth_jwt_verify(const struct config *cfg, const char *tok, size_t len, int64_t now,
                            char scopes[AUTH_SCOPES_MAX])
{
    /* 24 KiB of decoded parts: too big for a loop's hot struct, fine on the
     * stack of the one request being authenticated. */
    struct jwt_parts p;
    const char *why = jwt_split(tok, len, &p);
    if (why)
        return why;
    enum hmac_alg halg;
    size_t siglen;
    if ((why = check_alg(p.header, &halg, &siglen)))
        return why;
    const char *key = secret_of(cfg);
    uint8_t mac[HMAC_MAX_OUT];
    struct hmac_piece pc = {p.signing_input, p.signing_input_len};
    hmac(halg, key, strlen(key), &pc, 1, mac);
    if (p.sig_len != siglen || !ct_equal(mac, p.sig, siglen))
        return "JWT signature does not verify";
    /* Claims only after the signature: unsigned input is not parsed further. */
    return check_claims(cfg, p.payload, now, scopes);
}
