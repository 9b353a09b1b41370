/*
 * pubkey_der.h - public keys in DER, pure: an X.509 SubjectPublicKeyInfo
 * (RFC 5280 4.1.2.7; what "-----BEGIN PUBLIC KEY-----" holds) or a PKCS#1
 * RSAPublicKey (RFC 8017 A.1.1; "-----BEGIN RSA PUBLIC KEY-----"), for the
 * JWT keys of RS256 and ES256. BearSSL decodes certificates and private
 * keys but has no decoder for a bare public key, hence this small reader.
 *
 * Only what JWT verification can use is accepted: RSA with a modulus of
 * PUBKEY_RSA_MIN_BITS..PUBKEY_RSA_MAX_BITS, and EC keys on P-256 as an
 * uncompressed point. The result points into the caller's buffer.
 */
#ifndef TRIREME_PROTO_PUBKEY_DER_H
#define TRIREME_PROTO_PUBKEY_DER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 7518 3.3: RS256 keys of 2048 bits or more; BearSSL's RSA code
 * handles up to 4096 (BR_MAX_RSA_SIZE). */
#define PUBKEY_RSA_MIN_BITS 2048
#define PUBKEY_RSA_MAX_BITS 4096
/* An exponent longer than this is refused (65537 takes 3 bytes). */
#define PUBKEY_RSA_MAX_E 8
/* An uncompressed P-256 point: 0x04, X (32 bytes), Y (32 bytes). */
#define PUBKEY_P256_POINT 65

enum pubkey_type { PUBKEY_NONE, PUBKEY_RSA, PUBKEY_EC_P256 };

struct pubkey {
    enum pubkey_type type;
    const uint8_t *n, *e; /* RSA: big-endian, without leading zero bytes */
    size_t nlen, elen;
    const uint8_t *q; /* EC: the uncompressed point, PUBKEY_P256_POINT bytes */
    size_t qlen;
};

/*
 * Reads a SubjectPublicKeyInfo of exactly len bytes into *out. Returns
 * NULL, or a short static reason (an unsupported algorithm or curve, a
 * key out of bounds, or DER this cannot walk).
 */
const char *pubkey_spki(const uint8_t *der, size_t len, struct pubkey *out);

/* Reads a PKCS#1 RSAPublicKey (SEQUENCE { n INTEGER, e INTEGER }) of
 * exactly len bytes into *out; NULL or a reason, as above. */
const char *pubkey_rsa_pkcs1(const uint8_t *der, size_t len, struct pubkey *out);

/*
 * Checks an RSA key given as big-endian n and e (a JWK's "n" and "e"
 * decoded): strips leading zero bytes from both (in *out) and applies the
 * bounds above. NULL or a reason.
 */
const char *pubkey_rsa_check(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
                             struct pubkey *out);

#endif
