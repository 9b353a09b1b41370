/*
 * pubkey_der.c - reading RSA and P-256 public keys from DER; see
 * pubkey_der.h.
 *
 * Every element is read with its length checked against what is left of
 * its parent, and each structure must fill its parent exactly: trailing
 * bytes are refused rather than ignored, so one key has one encoding.
 */
#include "proto/pubkey_der.h"

#include <stdbool.h>
#include <string.h>

enum { T_INTEGER = 0x02, T_BIT_STRING = 0x03, T_NULL = 0x05, T_OID = 0x06, T_SEQUENCE = 0x30 };

/* rsaEncryption 1.2.840.113549.1.1.1, id-ecPublicKey 1.2.840.10045.2.1,
 * prime256v1 1.2.840.10045.3.1.7: the OIDs' contents octets. */
static const uint8_t oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t oid_ec[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t oid_p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

struct der {
    const uint8_t *p, *end;
};

/* One element: its tag, and its contents in *in; d moves past it. Only
 * DER's definite, minimal lengths of up to 4 bytes are read. */
static bool next(struct der *d, uint8_t *tag, struct der *in)
{
    if (d->end - d->p < 2)
        return false;
    *tag = *d->p++;
    size_t len = *d->p++;
    if (len & 0x80) {
        unsigned n = len & 0x7f;
        if (n == 0 || n > 4 || (size_t)(d->end - d->p) < n || d->p[0] == 0)
            return false;
        len = 0;
        while (n--)
            len = len << 8 | *d->p++;
        if (len < 0x80)
            return false;
    }
    if ((size_t)(d->end - d->p) < len)
        return false;
    in->p = d->p;
    in->end = d->p + len;
    d->p += len;
    return true;
}

static bool take(struct der *d, uint8_t want, struct der *in)
{
    uint8_t tag;
    return next(d, &tag, in) && tag == want;
}

static bool is_oid(const struct der *in, const uint8_t *oid, size_t n)
{
    return (size_t)(in->end - in->p) == n && !memcmp(in->p, oid, n);
}

/* A non-negative INTEGER in minimal form; *v, *n: its value without the
 * sign byte. */
static bool uint_of(const struct der *in, const uint8_t **v, size_t *n)
{
    size_t len = (size_t)(in->end - in->p);
    if (len == 0 || in->p[0] & 0x80)
        return false;
    if (len > 1 && in->p[0] == 0 && !(in->p[1] & 0x80))
        return false;
    *v = in->p;
    *n = len;
    return true;
}

const char *pubkey_rsa_check(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
                             struct pubkey *out)
{
    while (nlen && !n[0])
        n++, nlen--;
    while (elen && !e[0])
        e++, elen--;
    if (!nlen || !elen)
        return "RSA modulus or exponent is zero";
    size_t bits = nlen * 8;
    for (uint8_t top = n[0]; !(top & 0x80); top <<= 1)
        bits--;
    if (bits < PUBKEY_RSA_MIN_BITS)
        return "RSA key shorter than 2048 bits (RFC 7518 3.3)";
    if (bits > PUBKEY_RSA_MAX_BITS)
        return "RSA key longer than 4096 bits";
    if (!(n[nlen - 1] & 1))
        return "RSA modulus is even";
    if (elen > PUBKEY_RSA_MAX_E)
        return "RSA exponent longer than 8 bytes";
    if (!(e[elen - 1] & 1) || (elen == 1 && e[0] < 3))
        return "RSA exponent is even or below 3";
    *out = (struct pubkey){.type = PUBKEY_RSA, .n = n, .nlen = nlen, .e = e, .elen = elen};
    return NULL;
}

const char *pubkey_rsa_pkcs1(const uint8_t *der, size_t len, struct pubkey *out)
{
    struct der d = {der, der + len}, seq, n, e;
    const uint8_t *nv, *ev;
    size_t nl, el;
    if (!take(&d, T_SEQUENCE, &seq) || d.p != d.end || !take(&seq, T_INTEGER, &n) ||
        !take(&seq, T_INTEGER, &e) || seq.p != seq.end || !uint_of(&n, &nv, &nl) ||
        !uint_of(&e, &ev, &el))
        return "not a DER RSAPublicKey";
    return pubkey_rsa_check(nv, nl, ev, el, out);
}

const char *pubkey_spki(const uint8_t *der, size_t len, struct pubkey *out)
{
    struct der d = {der, der + len}, spki, alg, oid, bits;
    if (!take(&d, T_SEQUENCE, &spki) || d.p != d.end || !take(&spki, T_SEQUENCE, &alg) ||
        !take(&spki, T_BIT_STRING, &bits) || spki.p != spki.end || !take(&alg, T_OID, &oid))
        return "not a DER SubjectPublicKeyInfo";
    /* The key's bits: a whole number of bytes (no unused bits). */
    if (bits.p == bits.end || *bits.p++ != 0)
        return "public key BIT STRING has unused bits";
    if (is_oid(&oid, oid_rsa, sizeof(oid_rsa))) {
        /* parameters: NULL (RFC 3279 2.3.1), tolerated when absent */
        struct der null;
        if (alg.p != alg.end && (!take(&alg, T_NULL, &null) || null.p != null.end))
            return "RSA algorithm parameters are not NULL";
        if (alg.p != alg.end)
            return "not a DER SubjectPublicKeyInfo";
        return pubkey_rsa_pkcs1(bits.p, (size_t)(bits.end - bits.p), out);
    }
    if (is_oid(&oid, oid_ec, sizeof(oid_ec))) {
        struct der curve;
        if (!take(&alg, T_OID, &curve) || alg.p != alg.end)
            return "EC key without a named curve";
        if (!is_oid(&curve, oid_p256, sizeof(oid_p256)))
            return "EC key not on P-256 (only ES256 is supported)";
        size_t ql = (size_t)(bits.end - bits.p);
        if (ql != PUBKEY_P256_POINT || bits.p[0] != 0x04)
            return "EC point is not an uncompressed P-256 point";
        *out = (struct pubkey){.type = PUBKEY_EC_P256, .q = bits.p, .qlen = ql};
        return NULL;
    }
    return "public key algorithm is neither RSA nor EC (e.g. Ed25519 is not supported)";
}
