/*
 * jwt_keys.h - the public keys RS256 and ES256 JWTs are verified with
 * (RFC 7518 3.3, 3.4): read once at start from --jwt-public-key-file (PEM)
 * and --jwt-jwks-file (a JWK Set, RFC 7517 5), then read-only, shared by
 * every loop. Rotating keys takes a restart: the files are never re-read
 * behind a running server's back.
 *
 * Verification picks the key by the token header's "kid" when a key of
 * the algorithm's type carries that kid; a token with another kid is tried
 * against the keys without one, a token without kid against every key of
 * the type. An algorithm no configured key serves is refused, never
 * verified some other way.
 */
#ifndef TRIREME_MODULES_WEB_JWT_KEYS_H
#define TRIREME_MODULES_WEB_JWT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/jwt.h"
#include "proto/pubkey_der.h"

/* Keys from both files together; more is a start-up error. */
#define JWT_KEYS_MAX 32
/* Bytes of a key id ("kid"), NUL included; a longer one in a JWKS is a
 * start-up error, in a token it matches no key. */
#define JWT_KID_MAX 256
/* A --jwt-jwks-file larger than this is refused at start. */
#define JWT_JWKS_FILE_MAX (1024 * 1024)

enum jwt_key_type { JWT_KEY_RSA = 1, JWT_KEY_EC_P256 };

struct jwt_key {
    enum jwt_key_type type;
    enum jwt_alg alg;      /* a JWK's "alg", or JWT_ALG_UNKNOWN: its type's one alg */
    char kid[JWT_KID_MAX]; /* "" when it has none */
    uint8_t n[PUBKEY_RSA_MAX_BITS / 8], e[PUBKEY_RSA_MAX_E];
    size_t nlen, elen;
    uint8_t q[PUBKEY_P256_POINT];
};

struct jwt_keys {
    struct jwt_key key[JWT_KEYS_MAX];
    size_t n;
    size_t skipped; /* JWKS entries for other uses or algorithms, left out */
};

/*
 * Loads the keys of the PEM file pem_path and the JWKS file jwks_path
 * (either may be "") into *ks. Returns 0, or -1 with why saying which file
 * and what is wrong with it.
 */
int jwt_keys_load(struct jwt_keys *ks, const char *pem_path, const char *jwks_path, char *why,
                  size_t whylen);

/* True when some key can verify alg (RS256 or ES256). */
bool jwt_keys_serve(const struct jwt_keys *ks, enum jwt_alg alg);

/*
 * Verifies sig (siglen bytes) over msg with the keys for alg, chosen by
 * kid ("" when the token has none) as above. Returns NULL when one key
 * verifies, else a short reason safe to show the client.
 */
const char *jwt_keys_verify(const struct jwt_keys *ks, enum jwt_alg alg, const char *kid,
                            const void *msg, size_t len, const uint8_t *sig, size_t siglen);

#endif
