/*
 * jwt.h - the pure parts of JWS compact tokens (RFC 7515) carrying JWT
 * claims (RFC 7519): splitting a token into its three base64url parts,
 * naming the algorithm, and checking exp/nbf against a clock with leeway.
 * Signature verification (HMAC, RSA, EC) and JSON parsing live above
 * proto/; this file only cuts bytes and compares numbers.
 */
#ifndef TRIREME_PROTO_JWT_H
#define TRIREME_PROTO_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest token accepted, whole; bigger ones are refused before decoding. */
#define JWT_MAX_TOKEN 8192

enum jwt_alg {
    JWT_ALG_UNKNOWN,
    JWT_ALG_NONE,
    JWT_HS256,
    JWT_HS384,
    JWT_HS512,
    JWT_RS256,
    JWT_ES256
};

struct jwt_parts {
    const char *signing_input; /* "header.payload", as signed */
    size_t signing_input_len;
    char header[JWT_MAX_TOKEN];  /* decoded JSON, NUL-terminated */
    char payload[JWT_MAX_TOKEN]; /* decoded JSON, NUL-terminated */
    uint8_t sig[JWT_MAX_TOKEN];
    size_t header_len, payload_len, sig_len;
};

/*
 * Splits a compact JWS of len bytes into p. Returns NULL on success, or a
 * short reason (static string, safe to log: it never quotes the token).
 */
const char *jwt_split(const char *tok, size_t len, struct jwt_parts *p);

/* The "alg" header value's algorithm; JWT_ALG_UNKNOWN for anything else. */
enum jwt_alg jwt_alg_from_name(const char *name);

enum jwt_time_result { JWT_TIME_OK, JWT_TIME_EXPIRED, JWT_TIME_NOT_YET };

/*
 * Checks exp (RFC 7519 4.1.4: now must be before exp) and nbf (4.1.5: now
 * at or after nbf), each widened by leeway seconds for clock skew. A claim
 * that is absent (has_* false) is not checked.
 */
enum jwt_time_result jwt_check_time(bool has_exp, int64_t exp, bool has_nbf, int64_t nbf,
                                    int64_t now, int64_t leeway);

/*
 * True when the space-separated list (an OAuth "scope" claim, RFC 8693 4.2)
 * contains word exactly.
 */
bool jwt_scope_has(const char *list, const char *word);

#endif
