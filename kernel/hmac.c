/*
 * hmac.c - HMAC through BearSSL; see hmac.h.
 */
#include "kernel/hmac.h"

#include <bearssl.h>

static const br_hash_class *hash_of(enum hmac_alg alg)
{
    switch (alg) {
    case HMAC_SHA1:
        return &br_sha1_vtable;
    case HMAC_SHA512:
        return &br_sha512_vtable;
    case HMAC_SHA256:
    default:
        return &br_sha256_vtable;
    }
}

size_t hmac_size(enum hmac_alg alg)
{
    return (hash_of(alg)->desc >> BR_HASHDESC_OUT_OFF) & BR_HASHDESC_OUT_MASK;
}

size_t hmac(enum hmac_alg alg, const void *key, size_t key_len, const struct hmac_piece *pieces,
            size_t n, uint8_t out[HMAC_MAX_OUT])
{
    br_hmac_key_context kc;
    br_hmac_context c;
    br_hmac_key_init(&kc, hash_of(alg), key, key_len);
    br_hmac_init(&c, &kc, 0);
    for (size_t i = 0; i < n; i++)
        br_hmac_update(&c, pieces[i].data, pieces[i].len);
    return br_hmac_out(&c, out);
}
