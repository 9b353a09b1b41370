/*
 * standard.h - the Standard Webhooks scheme (standardwebhooks.com), both
 * ways: the secret's form, and the signature over "id.timestamp.body".
 * Inbound sources (verify.c) check it; http kinds (kinds/kind_http.c) sign
 * their deliveries with it. One copy, so the two can never disagree.
 */
#ifndef TRIREME_MODULES_WEBHOOKS_STANDARD_H
#define TRIREME_MODULES_WEBHOOKS_STANDARD_H

#include <stddef.h>
#include <stdint.h>

#include "kernel/hmac.h"
#include "proto/base64.h"

/* Base64 of an HMAC-SHA256, and its NUL. */
#define STDWH_SIG_MAX (BASE64_LEN(32) + 1)

/* "whsec_<base64>" (the prefix optional): the key is the decoded bytes.
 * Returns their count, or -1 when v is not base64 of 1 to cap bytes. */
long stdwh_secret(const char *v, uint8_t *key, size_t cap);

/* Writes the base64 of HMAC-SHA256(key, id "." ts "." body) and its NUL
 * into sig (STDWH_SIG_MAX bytes); returns its length. */
size_t stdwh_sign(const uint8_t *key, size_t klen, const char *id, size_t idn, const char *ts,
                  size_t tsn, const void *body, size_t blen, char *sig);

#endif
