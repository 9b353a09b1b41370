/*
 * hmac.h - HMAC over BearSSL's hash implementations, for signing what
 * Trireme sends (Standard Webhooks) and checking what it receives (GitHub,
 * Stripe, Paystack, ...). One call over a list of pieces, because every
 * scheme signs a concatenation ("id.timestamp.body") nobody should copy.
 */
#ifndef TRIREME_KERNEL_HMAC_H
#define TRIREME_KERNEL_HMAC_H

#include <stddef.h>
#include <stdint.h>

enum hmac_alg { HMAC_SHA1, HMAC_SHA256, HMAC_SHA512 };

#define HMAC_MAX_OUT 64

struct hmac_piece {
    const void *data;
    size_t len;
};

/* Size of alg's output in bytes (20, 32 or 64). */
size_t hmac_size(enum hmac_alg alg);
/* Writes hmac_size(alg) bytes into out and returns that count. */
size_t hmac(enum hmac_alg alg, const void *key, size_t key_len, const struct hmac_piece *pieces,
            size_t n, uint8_t out[HMAC_MAX_OUT]);

#endif
