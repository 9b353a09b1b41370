/*
 * auth_jwt.c - verifies JWT bearer tokens: HS256/HS512 with a shared secret
 * (RFC 7518 3.2), RS256 and ES256 with public keys (3.3, 3.4).
 *
 * proto/jwt cuts the token; this file parses the header and claims with
 * jansson, checks an HMAC signature with kernel/hmac or hands an RSA/EC one
 * to jwt_keys, then checks the claims against the configuration, the same
 * way for every algorithm. The algorithm comes from the token's header, so
 * it is checked against what the configured keys can do before anything
 * else: "none" and any algorithm no configured key type serves are refused
 * (the classic algorithm-confusion attacks), never "verified" some other
 * way: an HS token is checked only with the HMAC secret, an RS or ES token
 * only with public keys of its own type.
 */
#include "modules/web/auth_jwt.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kernel/hmac.h"
#include "modules/web/jwt_keys.h"
#include "proto/base64.h"
#include "proto/jwt.h"

static const char *secret_of(const struct config *cfg)
{
    return *cfg->jwt_secret ? cfg->jwt_secret : cfg->supabase_jwt_secret;
}

bool auth_jwt_enabled(const struct config *cfg)
{
    return *secret_of(cfg) || *cfg->jwt_public_key_file || *cfg->jwt_jwks_file;
}

/* What the header says: the algorithm, and the key id ("" without). */
static const char *check_header(const char *header, enum jwt_alg *alg, char kid[JWT_KID_MAX])
{
    json_t *h = json_loads(header, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        return "JWT header is not a JSON object";
    }
    const char *name = json_string_value(json_object_get(h, "alg"));
    *alg = name ? jwt_alg_from_name(name) : JWT_ALG_UNKNOWN;
    /* RFC 7515 4.1.11: an extension we must understand but do not. */
    bool crit = json_object_get(h, "crit") != NULL;
    json_t *k = json_object_get(h, "kid");
    const char *why = NULL;
    if (crit)
        why = "JWT header has crit extensions, none supported";
    else if (k && (!json_is_string(k) || json_string_length(k) >= JWT_KID_MAX))
        why = "JWT kid is not a string of at most 255 bytes";
    else
        snprintf(kid, JWT_KID_MAX, "%s", k ? json_string_value(k) : "");
    json_decref(h);
    if (why)
        return why;
    switch (*alg) {
    case JWT_HS256:
    case JWT_HS512:
    case JWT_RS256:
    case JWT_ES256:
        return NULL;
    case JWT_ALG_NONE:
        return "JWT alg none is refused";
    case JWT_HS384:
        return "JWT alg HS384 is not supported";
    case JWT_ALG_UNKNOWN:
        break;
    }
    return "JWT alg missing or not supported";
}

/* HS256/HS512 with the shared secret. Only an HMAC secret verifies them:
 * a public key is never used as one (the classic confusion, where the
 * attacker signs with the published key's bytes). */
static const char *check_hmac(const struct config *cfg, enum jwt_alg alg, const struct jwt_parts *p)
{
    const char *key = secret_of(cfg);
    if (!*key)
        return "JWT alg does not match the configured keys (no HMAC secret)";
    enum hmac_alg halg = alg == JWT_HS256 ? HMAC_SHA256 : HMAC_SHA512;
    size_t siglen = alg == JWT_HS256 ? 32 : 64;
    uint8_t mac[HMAC_MAX_OUT];
    struct hmac_piece pc = {p->signing_input, p->signing_input_len};
    hmac(halg, key, strlen(key), &pc, 1, mac);
    if (p->sig_len != siglen || !ct_equal(mac, p->sig, siglen))
        return "JWT signature does not verify";
    return NULL;
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

const char *auth_jwt_verify(const struct config *cfg, const struct jwt_keys *keys, const char *tok,
                            size_t len, int64_t now, char scopes[AUTH_SCOPES_MAX])
{
    /* 24 KiB of decoded parts: too big for a loop's hot struct, fine on the
     * stack of the one request being authenticated. */
    struct jwt_parts p;
    const char *why = jwt_split(tok, len, &p);
    if (why)
        return why;
    enum jwt_alg alg;
    char kid[JWT_KID_MAX];
    if ((why = check_header(p.header, &alg, kid)))
        return why;
    if (alg == JWT_HS256 || alg == JWT_HS512)
        why = check_hmac(cfg, alg, &p);
    else if (!keys || !jwt_keys_serve(keys, alg))
        why = *secret_of(cfg) && !(keys && keys->n)
                  ? "JWT alg does not match the configured key (an HMAC secret)"
                  : "JWT alg does not match the configured keys";
    else
        why =
            jwt_keys_verify(keys, alg, kid, p.signing_input, p.signing_input_len, p.sig, p.sig_len);
    if (why)
        return why;
    /* Claims only after the signature: unsigned input is not parsed further.
     * One path for every algorithm: exp/nbf, iss, aud and scopes alike. */
    return check_claims(cfg, p.payload, now, scopes);
}
