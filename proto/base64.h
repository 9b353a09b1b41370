/*
 * base64.h - RFC 4648 base64 (standard alphabet, padded) and lower-case hex,
 * pure. Webhook signatures travel in both encodings (Standard Webhooks and
 * Stripe use base64 or hex of an HMAC), and secrets arrive base64-encoded.
 */
#ifndef TRIREME_PROTO_BASE64_H
#define TRIREME_PROTO_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, without the NUL. */
#define BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes BASE64_LEN(n) characters and a NUL into out. */
void base64_encode(const void *in, size_t n, char *out);
/*
 * Decodes len characters (padding required, no whitespace) into out, which
 * holds at most cap bytes. Returns the byte count, or -1 on a character
 * outside the alphabet, bad padding, or too little room.
 */
long base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/*
 * RFC 4648 section 5 base64url as JWS uses it (RFC 7515 section 2): '-' and
 * '_' for '+' and '/', no padding. Returns the byte count, or -1 on a
 * character outside that alphabet, '=' anywhere, an impossible length
 * (len % 4 == 1), non-zero trailing bits, or too little room.
 */
long base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Writes 2n lower-case hex digits and a NUL into out. */
void hex_encode(const void *in, size_t n, char *out);

/* True when the n bytes at a and b are equal; time depends on n only. */
bool ct_equal(const void *a, const void *b, size_t n);
/* True when a (an bytes, the guess) equals b (bn bytes, the secret); time
 * depends on bn only, so neither the guess's length nor where it differs
 * tells anything about the secret but its length. */
bool ct_equal_len(const void *a, size_t an, const void *b, size_t bn);

#endif
