/*
 * fuzz_webhook_verify.c - libFuzzer target for inbound webhook
 * verification (modules/webhooks/verify.c): the headers and body a
 * provider, or anyone who found the URL, sends. Built by tests/fuzz/run.sh
 * against the instrumented kernel and modules libraries.
 *
 * Input: one control byte (scheme, generic options), then up to four
 * '\n'-terminated header values, then the body. The values go to the
 * scheme's headers in order (standard: webhook-id, webhook-timestamp,
 * webhook-signature; github: x-hub-signature-256; stripe: stripe-signature;
 * paystack: x-paystack-signature; generic: x-sig), each by the exact
 * length it has, so none is NUL-terminated for the verifier to rely on.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - a verdict is one of the enum's values, with a reason unless OK;
 *   - for the standard scheme, the body signed with the id and timestamp
 *     given (fresh or not) verifies OK exactly when the timestamp is digits
 *     within the tolerance, also as the second of two space-separated
 *     signatures (key rotation);
 *   - a signature computed with another secret never verifies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/webhooks/standard.h"
#include "modules/webhooks/webhooks.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define NOW 1700000000

struct req {
    const char *names[4];
    const char *vals[4];
    size_t lens[4];
    unsigned n;
};

static const char *header(void *ctx, const char *name, size_t *len)
{
    struct req *q = ctx;
    for (unsigned i = 0; i < q->n; i++)
        if (q->names[i] && !strcmp(q->names[i], name)) {
            *len = q->lens[i];
            return q->vals[i];
        }
    return NULL;
}

static enum webhook_verdict run(const struct webhook_source *s, struct req *q, const char *body,
                                size_t blen)
{
    struct webhook_delivery d = {
        .header = header, .ctx = q, .body = body, .body_len = blen, .now_s = NOW};
    const char *why = NULL;
    enum webhook_verdict v = webhook_verify(s, &d, &why);
    CHECK(v >= WEBHOOK_OK && v <= WEBHOOK_MISMATCH);
    CHECK(v == WEBHOOK_OK || why != NULL);
    return v;
}

/* Each value in its own exactly-sized allocation: reading past one is an
 * ASan report. */
static char *dup_exact(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    memcpy(c, p, n);
    return c;
}

static void standard_round_trip(const struct webhook_source *s, struct req *q, const char *body,
                                size_t blen)
{
    if (q->n < 2)
        return;
    const char *id = q->vals[0], *ts = q->vals[1];
    size_t idn = q->lens[0], tsn = q->lens[1];
    int64_t t = 0;
    bool digits = tsn > 0 && tsn <= 18;
    for (size_t i = 0; digits && i < tsn; i++) {
        digits = ts[i] >= '0' && ts[i] <= '9';
        t = t * 10 + (ts[i] - '0');
    }
    bool fresh = digits && (t > NOW ? t - NOW : NOW - t) <= s->tolerance_s;
    char sig[STDWH_SIG_MAX], other[STDWH_SIG_MAX], both[2 * STDWH_SIG_MAX + 8];
    stdwh_sign(s->secret, s->secret_len, id, idn, ts, tsn, body, blen, sig);
    static const uint8_t wrong[] = "not-the-secret";
    stdwh_sign(wrong, sizeof(wrong) - 1, id, idn, ts, tsn, body, blen, other);
    struct req r = *q;
    r.names[2] = "webhook-signature";
    r.n = 3;
    int n = snprintf(both, sizeof(both), "v1,%s", sig);
    r.vals[2] = both;
    r.lens[2] = (size_t)n;
    enum webhook_verdict v = run(s, &r, body, blen);
    /* An id with no bytes is missing; otherwise fresh decides. */
    if (idn > 0)
        CHECK((v == WEBHOOK_OK) == fresh);
    n = snprintf(both, sizeof(both), "v1,%s v1,%s", other, sig);
    r.lens[2] = (size_t)n;
    v = run(s, &r, body, blen);
    if (idn > 0)
        CHECK((v == WEBHOOK_OK) == fresh);
    n = snprintf(both, sizeof(both), "v1,%s", other);
    r.lens[2] = (size_t)n;
    CHECK(run(s, &r, body, blen) != WEBHOOK_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++, size--;
    static const char *const names[5][4] = {
        {"webhook-id", "webhook-timestamp", "webhook-signature", NULL},
        {"x-hub-signature-256", NULL, NULL, NULL},
        {"stripe-signature", NULL, NULL, NULL},
        {"x-paystack-signature", NULL, NULL, NULL},
        {"x-sig", NULL, NULL, NULL},
    };
    static const enum webhook_scheme schemes[5] = {WEBHOOK_STANDARD, WEBHOOK_HUB, WEBHOOK_STRIPE,
                                                   WEBHOOK_PAYSTACK, WEBHOOK_GENERIC};
    unsigned k = ctl % 5;
    char prefix[] = "sha1=";
    struct webhook_source s = {
        .name = "fuzz",
        .scheme = schemes[k],
        .secret_len = 24,
        .tolerance_s = WEBHOOK_TOLERANCE_DEFAULT,
        .header = "x-sig",
        .alg = (ctl >> 3) % 3 == 0   ? HMAC_SHA1
               : (ctl >> 3) % 3 == 1 ? HMAC_SHA256
                                     : HMAC_SHA512,
        .base64 = (ctl >> 5) & 1,
        .prefix = (ctl >> 6) & 1 ? prefix : "",
    };
    memcpy(s.secret, "0123456789abcdef01234567", 24);

    struct req q = {0};
    size_t off = 0;
    while (q.n < 4) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (data + off));
        q.names[q.n] = names[k][q.n];
        q.vals[q.n] = dup_exact(data + off, n);
        q.lens[q.n] = n;
        q.n++;
        off += n + 1;
    }
    char *body = dup_exact(data + off, size - off);
    run(&s, &q, body, size - off);
    if (s.scheme == WEBHOOK_STANDARD)
        standard_round_trip(&s, &q, body, size - off);
    for (unsigned i = 0; i < q.n; i++)
        free((void *)q.vals[i]);
    free(body);
    return 0;
}
