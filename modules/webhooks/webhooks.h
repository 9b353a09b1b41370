/*
 * webhooks.h - inbound signed webhooks: the sources an operator declares
 * under "webhooks" in --kinds (sources.c) and checking a delivery's
 * signature against one (verify.c, pure: no clock, no I/O, no allocation).
 *
 * A source names a signature scheme, the environment variable holding its
 * secret, the kind and queue a verified delivery becomes a job of, and
 * where the provider puts its delivery id (the job's unique key, so a
 * redelivery is stored once).
 */
#ifndef TRIREME_MODULES_WEBHOOKS_WEBHOOKS_H
#define TRIREME_MODULES_WEBHOOKS_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/hmac.h"

#define WEBHOOK_SOURCES_MAX       64   /* declared sources */
#define WEBHOOK_NAME_MAX          64   /* a source's name (one path segment) */
#define WEBHOOK_TOLERANCE_DEFAULT 300  /* seconds a signed timestamp may be off */
#define WEBHOOK_SECRET_MAX        256  /* bytes of a secret, after decoding */
#define WEBHOOK_SIG_MAX           1024 /* bytes of a signature header */

enum webhook_scheme {
    WEBHOOK_STANDARD, /* Standard Webhooks: webhook-id/-timestamp/-signature */
    WEBHOOK_HUB,      /* GitHub, Meta: X-Hub-Signature-256: sha256=<hex> */
    WEBHOOK_STRIPE,   /* Stripe-Signature: t=...,v1=<hex> over "t.body" */
    WEBHOOK_PAYSTACK, /* x-paystack-signature: hex HMAC-SHA512 of the body */
    WEBHOOK_GENERIC,  /* a header, an algorithm, hex or base64, a prefix */
};

struct webhook_source {
    char *name;
    enum webhook_scheme scheme;
    uint8_t secret[WEBHOOK_SECRET_MAX];
    size_t secret_len;
    char *kind, *queue;  /* queue NULL: the job's default */
    int64_t tolerance_s; /* schemes with a timestamp */
    char *id_header;     /* delivery id header (lower case), or NULL */
    char *id_field;      /* or a top-level string field of a JSON body */
    char *verify_token;  /* Meta's GET handshake; NULL: not offered */
    /* generic */
    char *header; /* lower case */
    enum hmac_alg alg;
    bool base64;  /* else hex */
    char *prefix; /* "" when none */
};

struct webhook_sources {
    struct webhook_source *v;
    unsigned n;
};

/* Kind names a source may enqueue (the kinds file's and the built-ins). */
typedef bool (*webhook_kind_known_fn)(const char *kind, void *ctx);

/* obj: the "webhooks" value (NULL: none). Secrets and verify tokens are
 * read from the environment now. 0, or -1 with msg naming the source and
 * field (never a secret). */
int webhook_sources_parse(json_t *obj, struct webhook_sources *out, webhook_kind_known_fn known,
                          void *ctx, char *msg, size_t cap);
void webhook_sources_free(struct webhook_sources *s);
const struct webhook_source *webhook_source_find(const struct webhook_sources *s, const char *name,
                                                 size_t len);

/* What verify needs of a request: header lookup by lower-case name. */
struct webhook_delivery {
    const char *(*header)(void *ctx, const char *name, size_t *len);
    void *ctx;
    const char *body;
    size_t body_len;
    int64_t now_s; /* Unix seconds */
};

enum webhook_verdict {
    WEBHOOK_OK,
    WEBHOOK_MISSING,   /* no signature (or timestamp, id) header */
    WEBHOOK_MALFORMED, /* a header that does not parse */
    WEBHOOK_STALE,     /* signed timestamp outside the tolerance */
    WEBHOOK_MISMATCH,  /* no signature matches */
};

/* Checks d against s; *why: a short static reason for the log and the 401. */
enum webhook_verdict webhook_verify(const struct webhook_source *s,
                                    const struct webhook_delivery *d, const char **why);
/* The scheme's name as declared ("standard", "github", ...). */
const char *webhook_scheme_name(enum webhook_scheme s);

#endif
