/*
 * fuzz_pubkey_der.c - libFuzzer target for proto/pubkey_der.c, the DER
 * reader of JWT public keys.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_pubkey_der.c proto/pubkey_der.c -o /tmp/fuzz_pubkey_der
 *   /tmp/fuzz_pubkey_der tests/fuzz/corpus/pubkey_der/   (or: sh tests/fuzz/run.sh 60)
 *
 * Input: DER bytes, read as a SubjectPublicKeyInfo and as a PKCS#1
 * RSAPublicKey. Checked, with abort() so libFuzzer records the input: a
 * refusal has a non-empty reason; an accepted key points inside the input
 * and keeps the documented bounds (RSA 2048-4096 bits, odd n, odd e >= 3
 * without leading zeros; EC a 65-byte point starting with 0x04).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pubkey_der.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    return p >= data && p + n <= data + size;
}

static void check(const char *why, const struct pubkey *k, const uint8_t *data, size_t size)
{
    if (why) {
        CHECK(*why);
        return;
    }
    if (k->type == PUBKEY_RSA) {
        CHECK(inside(k->n, k->nlen, data, size) && inside(k->e, k->elen, data, size));
        CHECK(k->nlen >= PUBKEY_RSA_MIN_BITS / 8 && k->nlen <= PUBKEY_RSA_MAX_BITS / 8);
        CHECK(k->n[0] != 0 && (k->n[k->nlen - 1] & 1));
        CHECK(k->elen >= 1 && k->elen <= PUBKEY_RSA_MAX_E && k->e[0] != 0);
        CHECK((k->e[k->elen - 1] & 1) && (k->elen > 1 || k->e[0] >= 3));
    } else {
        CHECK(k->type == PUBKEY_EC_P256);
        CHECK(k->qlen == PUBKEY_P256_POINT && inside(k->q, k->qlen, data, size));
        CHECK(k->q[0] == 0x04);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so ASan sees any read past the end. */
    uint8_t *d = malloc(size ? size : 1);
    if (!d)
        return 0;
    memcpy(d, data, size);
    struct pubkey k;
    check(pubkey_spki(d, size, &k), &k, d, size);
    check(pubkey_rsa_pkcs1(d, size, &k), &k, d, size);
    free(d);
    return 0;
}
