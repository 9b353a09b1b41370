/*
 * jwt_keys.c - loading RS256/ES256 public keys and verifying with them,
 * by BearSSL; see jwt_keys.h.
 *
 * Keys are checked as far as start-up can: RSA sizes and exponents by
 * proto/pubkey_der, EC points by decoding them on P-256. A file that holds
 * nothing usable, or anything malformed, stops the start with its name
 * and the reason, so a typo cannot leave a server that refuses every
 * token (or, worse, one that was meant to check tokens and does not).
 */
#include "modules/web/jwt_keys.h"

#include <bearssl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kernel/tls.h"
#include "proto/base64.h"

static enum jwt_key_type type_of(enum jwt_alg alg)
{
    return alg == JWT_RS256 ? JWT_KEY_RSA : alg == JWT_ES256 ? JWT_KEY_EC_P256 : 0;
}

/* A P-256 point BearSSL accepts: multiplying it by 1 decodes and checks
 * it (on the curve, not the point at infinity). */
static bool p256_point_ok(const uint8_t *q)
{
    uint8_t copy[PUBKEY_P256_POINT];
    static const uint8_t one[] = {1};
    memcpy(copy, q, sizeof(copy));
    return br_ec_get_default()->mul(copy, sizeof(copy), one, 1, BR_EC_secp256r1) == 1;
}

/* Adds pk (already bounds-checked) as the next key; NULL or a reason. */
static const char *add_key(struct jwt_keys *ks, const struct pubkey *pk, enum jwt_alg alg,
                           const char *kid)
{
    if (ks->n == JWT_KEYS_MAX)
        return "more keys than JWT_KEYS_MAX (32)";
    struct jwt_key *k = &ks->key[ks->n];
    memset(k, 0, sizeof(*k));
    k->alg = alg;
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    if (pk->type == PUBKEY_RSA) {
        k->type = JWT_KEY_RSA;
        memcpy(k->n, pk->n, pk->nlen);
        memcpy(k->e, pk->e, pk->elen);
        k->nlen = pk->nlen;
        k->elen = pk->elen;
    } else {
        if (!p256_point_ok(pk->q))
            return "EC key is not a point on P-256";
        k->type = JWT_KEY_EC_P256;
        memcpy(k->q, pk->q, PUBKEY_P256_POINT);
    }
    ks->n++;
    return NULL;
}

/* --- PEM ------------------------------------------------------------ */

struct pem_ctx {
    struct jwt_keys *ks;
    const char *why;
    size_t objects;
};

/* A certificate's key, as BearSSL decodes it (the certificate itself is
 * not validated: it only carries the key, as some identity providers
 * publish theirs). */
static const char *cert_key(const unsigned char *der, size_t len, struct pubkey *pk)
{
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, NULL, NULL);
    br_x509_decoder_push(&dc, der, len);
    const br_x509_pkey *k = br_x509_decoder_get_pkey(&dc);
    if (!k)
        return "CERTIFICATE does not decode";
    if (k->key_type == BR_KEYTYPE_RSA)
        return pubkey_rsa_check(k->key.rsa.n, k->key.rsa.nlen, k->key.rsa.e, k->key.rsa.elen, pk);
    if (k->key_type != BR_KEYTYPE_EC || k->key.ec.curve != BR_EC_secp256r1 ||
        k->key.ec.qlen != PUBKEY_P256_POINT || k->key.ec.q[0] != 0x04)
        return "CERTIFICATE's key is neither RSA nor an uncompressed P-256 point";
    *pk = (struct pubkey){.type = PUBKEY_EC_P256, .q = k->key.ec.q, .qlen = k->key.ec.qlen};
    return NULL;
}

static int pem_object(void *vctx, const char *name, const unsigned char *der, size_t len)
{
    struct pem_ctx *ctx = vctx;
    struct pubkey pk;
    ctx->objects++;
    if (!strcmp(name, "PUBLIC KEY"))
        ctx->why = pubkey_spki(der, len, &pk);
    else if (!strcmp(name, "RSA PUBLIC KEY"))
        ctx->why = pubkey_rsa_pkcs1(der, len, &pk);
    else if (!strcmp(name, "CERTIFICATE"))
        ctx->why = cert_key(der, len, &pk);
    else if (strstr(name, "PRIVATE KEY"))
        ctx->why = "holds a PRIVATE KEY: give the public key only (openssl pkey -pubout)";
    else
        ctx->why = "holds a PEM object that is not a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE";
    if (!ctx->why)
        ctx->why = add_key(ctx->ks, &pk, JWT_ALG_UNKNOWN, "");
    return ctx->why ? -EINVAL : 0;
}

static int load_pem(struct jwt_keys *ks, const char *path, char *why, size_t whylen)
{
    struct pem_ctx ctx = {.ks = ks};
    int ret = tls_pem_file_each(path, pem_object, &ctx);
    if (ret < 0 && !ctx.why)
        ctx.why = ret == -EFBIG    ? "larger than TLS_PEM_MAX"
                  : ret == -EINVAL ? "not PEM, or a PEM object in it does not decode"
                                   : strerror(-ret);
    if (!ctx.why && !ctx.objects)
        ctx.why = "no PEM object in it (expected -----BEGIN PUBLIC KEY-----)";
    if (!ctx.why)
        return 0;
    snprintf(why, whylen, "--jwt-public-key-file %s: %s", path, ctx.why);
    return -1;
}

/* --- JWKS ----------------------------------------------------------- */

/* The member name of a JWK as base64url into out, exactly want bytes
 * (0: up to cap); the count, or -1. */
static long b64_member(json_t *jwk, const char *name, uint8_t *out, size_t cap, size_t want)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (!s)
        return -1;
    long n = base64url_decode(s, strlen(s), out, cap);
    return n < 0 || (want && (size_t)n != want) ? -1 : n;
}

/* One JWK: added, skipped (another use or algorithm), or NULL with a
 * reason. Returns the reason, NULL when added or skipped. */
static const char *jwk_add(struct jwt_keys *ks, json_t *jwk)
{
    if (!json_is_object(jwk))
        return "a key is not a JSON object";
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    json_t *use = json_object_get(jwk, "use"), *jalg = json_object_get(jwk, "alg");
    json_t *jkid = json_object_get(jwk, "kid");
    if (!kty)
        return "a key has no \"kty\" string";
    if ((use && !json_is_string(use)) || (jalg && !json_is_string(jalg)) ||
        (jkid && !json_is_string(jkid)))
        return "a key's \"use\", \"alg\" or \"kid\" is not a string";
    if (json_object_get(jwk, "d"))
        return "a key holds a private part (\"d\"): publish the public key only";
    const char *kid = jkid ? json_string_value(jkid) : "";
    if (strlen(kid) >= JWT_KID_MAX)
        return "a key's \"kid\" is longer than JWT_KID_MAX - 1 (255) bytes";
    bool rsa = !strcmp(kty, "RSA"), ec = !strcmp(kty, "EC");
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    /* Keys this server cannot verify JWS with are another party's
     * business (encryption keys, other algorithms): left out, counted. */
    enum jwt_alg alg = jalg ? jwt_alg_from_name(json_string_value(jalg)) : JWT_ALG_UNKNOWN;
    if ((use && strcmp(json_string_value(use), "sig")) || (!rsa && !ec) ||
        (ec && (!crv || strcmp(crv, "P-256"))) || (jalg && alg != JWT_RS256 && alg != JWT_ES256)) {
        ks->skipped++;
        return NULL;
    }
    if (jalg && type_of(alg) != (rsa ? JWT_KEY_RSA : JWT_KEY_EC_P256))
        return "a key's \"alg\" does not fit its \"kty\"";
    struct pubkey pk;
    const char *why;
    if (rsa) {
        uint8_t n[PUBKEY_RSA_MAX_BITS / 8 + 8], e[PUBKEY_RSA_MAX_E + 8];
        long nl = b64_member(jwk, "n", n, sizeof(n), 0), el = b64_member(jwk, "e", e, sizeof(e), 0);
        if (nl < 0 || el < 0)
            return "an RSA key's \"n\" or \"e\" is missing, not base64url, or too long";
        if ((why = pubkey_rsa_check(n, (size_t)nl, e, (size_t)el, &pk)))
            return why;
        return add_key(ks, &pk, alg, kid);
    }
    uint8_t q[PUBKEY_P256_POINT] = {0x04};
    if (b64_member(jwk, "x", q + 1, 32, 32) < 0 || b64_member(jwk, "y", q + 33, 32, 32) < 0)
        return "an EC key's \"x\" or \"y\" is missing or not 32 bytes of base64url";
    pk = (struct pubkey){.type = PUBKEY_EC_P256, .q = q, .qlen = sizeof(q)};
    return add_key(ks, &pk, alg, kid);
}

static int load_jwks(struct jwt_keys *ks, const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(why, whylen, "--jwt-jwks-file %s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_size > JWT_JWKS_FILE_MAX) {
        snprintf(why, whylen, "--jwt-jwks-file %s: larger than JWT_JWKS_FILE_MAX (1 MiB)", path);
        return -1;
    }
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(why, whylen, "--jwt-jwks-file %s: not a readable JSON file: %s (line %d)", path,
                 je.text, je.line);
        return -1;
    }
    /* A JWK Set {"keys": [...]}, or one bare JWK. */
    json_t *keys = json_object_get(doc, "keys");
    const char *err = NULL;
    size_t before = ks->n, i = 0;
    json_t *k;
    if (json_is_array(keys)) {
        json_array_foreach(keys, i, k) if ((err = jwk_add(ks, k))) break;
    } else if (json_is_object(doc) && json_object_get(doc, "kty")) {
        err = jwk_add(ks, doc);
    } else {
        err = "expected a JWK Set {\"keys\": [{\"kty\": \"RSA\", ...}]}";
    }
    if (!err && ks->n == before)
        err = "no RS256 or ES256 signature key in it (kty RSA, or kty EC with crv P-256)";
    if (err && json_is_array(keys) && i < json_array_size(keys))
        snprintf(why, whylen, "--jwt-jwks-file %s: key %zu: %s", path, i, err);
    else if (err)
        snprintf(why, whylen, "--jwt-jwks-file %s: %s", path, err);
    json_decref(doc);
    return err ? -1 : 0;
}

int jwt_keys_load(struct jwt_keys *ks, const char *pem_path, const char *jwks_path, char *why,
                  size_t whylen)
{
    memset(ks, 0, sizeof(*ks));
    if (*pem_path && load_pem(ks, pem_path, why, whylen) < 0)
        return -1;
    if (*jwks_path && load_jwks(ks, jwks_path, why, whylen) < 0)
        return -1;
    return 0;
}

/* --- verification --------------------------------------------------- */

bool jwt_keys_serve(const struct jwt_keys *ks, enum jwt_alg alg)
{
    for (size_t i = 0; ks && i < ks->n; i++)
        if (ks->key[i].type == type_of(alg) &&
            (ks->key[i].alg == JWT_ALG_UNKNOWN || ks->key[i].alg == alg))
            return true;
    return false;
}

/* RSASSA-PKCS1-v1_5 (RFC 8017 8.2.2): BearSSL recovers the DigestInfo's
 * hash, checking the padding and the SHA-256 OID; we compare the hash. */
static bool rsa_ok(const struct jwt_key *k, const uint8_t *hash, const uint8_t *sig, size_t siglen)
{
    br_rsa_public_key pk = {(unsigned char *)k->n, k->nlen, (unsigned char *)k->e, k->elen};
    uint8_t out[br_sha256_SIZE];
    return br_rsa_pkcs1_vrfy_get_default()(sig, siglen, BR_HASH_OID_SHA256, sizeof(out), &pk,
                                           out) == 1 &&
           ct_equal(out, hash, sizeof(out));
}

/* ECDSA P-256 with JWS's raw r||s signature (RFC 7518 3.4). */
static bool ec_ok(const struct jwt_key *k, const uint8_t *hash, const uint8_t *sig)
{
    br_ec_public_key pk = {BR_EC_secp256r1, (unsigned char *)k->q, PUBKEY_P256_POINT};
    return br_ecdsa_vrfy_raw_get_default()(br_ec_get_default(), hash, br_sha256_SIZE, &pk, sig,
                                           64) == 1;
}

const char *jwt_keys_verify(const struct jwt_keys *ks, enum jwt_alg alg, const char *kid,
                            const void *msg, size_t len, const uint8_t *sig, size_t siglen)
{
    enum jwt_key_type type = type_of(alg);
    if (!type || !jwt_keys_serve(ks, alg))
        return "JWT alg does not match the configured keys";
    if (type == JWT_KEY_EC_P256 && siglen != 64)
        return "JWT ES256 signature is not 64 bytes (r||s)";
    /* The kid, when a key of this alg has it, names the one key to use. */
    bool by_kid = false;
    for (size_t i = 0; *kid && i < ks->n; i++)
        by_kid |= ks->key[i].type == type && !strcmp(ks->key[i].kid, kid);
    uint8_t hash[br_sha256_SIZE];
    br_sha256_context sc;
    br_sha256_init(&sc);
    br_sha256_update(&sc, msg, len);
    br_sha256_out(&sc, hash);
    size_t tried = 0, sized = 0;
    for (size_t i = 0; i < ks->n; i++) {
        const struct jwt_key *k = &ks->key[i];
        if (k->type != type || (k->alg != JWT_ALG_UNKNOWN && k->alg != alg))
            continue;
        /* Else a token's kid picks no key that has one, only keyless
         * ones (a PEM key, a JWK without kid). */
        if (by_kid ? strcmp(k->kid, kid) != 0 : (*kid && *k->kid))
            continue;
        tried++;
        if (type == JWT_KEY_RSA && siglen != k->nlen)
            continue;
        sized++;
        if (type == JWT_KEY_RSA ? rsa_ok(k, hash, sig, siglen) : ec_ok(k, hash, sig))
            return NULL;
    }
    if (!tried)
        return "JWT kid matches no configured key";
    if (!sized)
        return "JWT RS256 signature length does not match the key";
    return "JWT signature does not verify";
}
