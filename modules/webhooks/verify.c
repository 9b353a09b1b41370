/*
 * verify.c - checking an inbound webhook's signature; see webhooks.h.
 *
 * Each scheme recomputes the HMAC over the pieces the provider signed
 * (never a concatenated copy of the body), encodes it the way the provider
 * sends it and compares encodings in constant time: a hex signature is
 * lower-cased first, since providers are free to send upper case.
 */
#include <string.h>

#include "modules/webhooks/standard.h"
#include "modules/webhooks/webhooks.h"
#include "proto/base64.h"

/* Room for the longer encoding of the longest HMAC (hex of SHA-512). */
#define SIG_TEXT_MAX (2 * HMAC_MAX_OUT + 1)

const char *webhook_scheme_name(enum webhook_scheme s)
{
    static const char *const names[] = {"standard", "github", "stripe", "paystack", "generic"};
    return names[s];
}

/* got (n bytes, as received) equals want (NUL-terminated encoding). */
static bool sig_equal(const char *got, size_t n, const char *want, bool hex)
{
    char low[SIG_TEXT_MAX];
    size_t wn = strlen(want);
    if (n != wn || n > sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = hex && got[i] >= 'A' && got[i] <= 'F' ? (char)(got[i] - 'A' + 'a') : got[i];
    return ct_equal(low, want, n);
}

/* The encoding of alg's HMAC over pieces, keyed by s's secret. */
static void sign(const struct webhook_source *s, enum hmac_alg alg, bool b64,
                 const struct hmac_piece *p, size_t np, char out[SIG_TEXT_MAX])
{
    uint8_t mac[HMAC_MAX_OUT];
    size_t n = hmac(alg, s->secret, s->secret_len, p, np, mac);
    if (b64)
        base64_encode(mac, n, out);
    else
        hex_encode(mac, n, out);
}

/* A Unix timestamp of digits only; false when malformed. */
static bool parse_ts(const char *v, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return false;
    int64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        t = t * 10 + (v[i] - '0');
    }
    *out = t;
    return true;
}

static bool fresh(const struct webhook_source *s, int64_t ts, int64_t now)
{
    int64_t d = now > ts ? now - ts : ts - now;
    return d <= s->tolerance_s;
}

static enum webhook_verdict standard(const struct webhook_source *s,
                                     const struct webhook_delivery *d, const char **why)
{
    size_t idn, tsn, sn;
    const char *id = d->header(d->ctx, "webhook-id", &idn);
    const char *ts = d->header(d->ctx, "webhook-timestamp", &tsn);
    const char *sig = d->header(d->ctx, "webhook-signature", &sn);
    int64_t t;
    if (!sig || !id || !ts)
        return *why = "missing webhook-id, webhook-timestamp or webhook-signature", WEBHOOK_MISSING;
    if (!parse_ts(ts, tsn, &t))
        return *why = "webhook-timestamp is not Unix seconds", WEBHOOK_MALFORMED;
    if (!fresh(s, t, d->now_s))
        return *why = "webhook-timestamp outside the tolerance (replay?)", WEBHOOK_STALE;
    char want[STDWH_SIG_MAX];
    stdwh_sign(s->secret, s->secret_len, id, idn, ts, tsn, d->body, d->body_len, want);
    /* Space-separated "v1,<base64>" entries: several during a key rotation. */
    bool ok = false;
    for (const char *c = sig, *end = sig + sn; c < end;) {
        const char *sp = memchr(c, ' ', (size_t)(end - c));
        const char *e = sp ? sp : end;
        if (e - c > 3 && !memcmp(c, "v1,", 3))
            ok |= sig_equal(c + 3, (size_t)(e - c - 3), want, false);
        c = e + 1;
    }
    return ok ? WEBHOOK_OK : (*why = "no webhook-signature v1 entry matches", WEBHOOK_MISMATCH);
}

static enum webhook_verdict stripe(const struct webhook_source *s, const struct webhook_delivery *d,
                                   const char **why)
{
    size_t sn;
    const char *sig = d->header(d->ctx, "stripe-signature", &sn);
    if (!sig)
        return *why = "missing Stripe-Signature", WEBHOOK_MISSING;
    const char *ts = NULL;
    size_t tsn = 0;
    int64_t t;
    for (const char *c = sig, *end = sig + sn; c < end;) {
        const char *comma = memchr(c, ',', (size_t)(end - c));
        const char *e = comma ? comma : end;
        if (e - c > 2 && !memcmp(c, "t=", 2))
            ts = c + 2, tsn = (size_t)(e - c - 2);
        c = e + 1;
    }
    if (!ts || !parse_ts(ts, tsn, &t))
        return *why = "Stripe-Signature has no t=<Unix seconds>", WEBHOOK_MALFORMED;
    if (!fresh(s, t, d->now_s))
        return *why = "Stripe-Signature t= outside the tolerance (replay?)", WEBHOOK_STALE;
    struct hmac_piece p[] = {{ts, tsn}, {".", 1}, {d->body, d->body_len}};
    char want[SIG_TEXT_MAX];
    sign(s, HMAC_SHA256, false, p, 3, want);
    bool ok = false;
    for (const char *c = sig, *end = sig + sn; c < end;) {
        const char *comma = memchr(c, ',', (size_t)(end - c));
        const char *e = comma ? comma : end;
        if (e - c > 3 && !memcmp(c, "v1=", 3))
            ok |= sig_equal(c + 3, (size_t)(e - c - 3), want, true);
        c = e + 1;
    }
    return ok ? WEBHOOK_OK : (*why = "no Stripe-Signature v1 entry matches", WEBHOOK_MISMATCH);
}

/* One header holding prefix + encoded HMAC of the body. */
static enum webhook_verdict body_only(const struct webhook_source *s,
                                      const struct webhook_delivery *d, const char *header,
                                      const char *prefix, enum hmac_alg alg, bool b64,
                                      const char **why)
{
    size_t sn, pn = strlen(prefix);
    const char *sig = d->header(d->ctx, header, &sn);
    if (!sig)
        return *why = "missing signature header", WEBHOOK_MISSING;
    if (sn < pn || memcmp(sig, prefix, pn))
        return *why = "signature header lacks its prefix", WEBHOOK_MALFORMED;
    struct hmac_piece p[] = {{d->body, d->body_len}};
    char want[SIG_TEXT_MAX];
    sign(s, alg, b64, p, 1, want);
    return sig_equal(sig + pn, sn - pn, want, !b64)
               ? WEBHOOK_OK
               : (*why = "signature does not match", WEBHOOK_MISMATCH);
}

enum webhook_verdict webhook_verify(const struct webhook_source *s,
                                    const struct webhook_delivery *d, const char **why)
{
    switch (s->scheme) {
    case WEBHOOK_STANDARD:
        return standard(s, d, why);
    case WEBHOOK_STRIPE:
        return stripe(s, d, why);
    case WEBHOOK_HUB:
        return body_only(s, d, "x-hub-signature-256", "sha256=", HMAC_SHA256, false, why);
    case WEBHOOK_PAYSTACK:
        return body_only(s, d, "x-paystack-signature", "", HMAC_SHA512, false, why);
    case WEBHOOK_GENERIC:
        return body_only(s, d, s->header, s->prefix, s->alg, s->base64, why);
    }
    return *why = "unknown scheme", WEBHOOK_MALFORMED;
}
