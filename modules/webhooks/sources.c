/*
 * sources.c - the "webhooks" object of --kinds: one source per key, read
 * once at start (secrets come from the environment then); see webhooks.h.
 *
 *   "github": {"scheme": "github", "secret_env": "GITHUB_WEBHOOK_SECRET",
 *              "kind": "on_push", "queue": "webhooks"}
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"
#include "modules/webhooks/standard.h"
#include "modules/webhooks/webhooks.h"
#include "proto/base64.h"

static const char *const scheme_names[] = {"standard", "github", "stripe", "paystack", "generic"};
static const char *const fields[] = {"scheme",    "secret_env", "kind",     "queue",
                                     "tolerance", "id_header",  "id_field", "verify_token_env",
                                     "header",    "algorithm",  "encoding", "prefix"};

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WEBHOOK_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *c = d; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return d;
}

/* e[key] as a non-empty string, NULL when absent; *bad when not a string. */
static const char *str(json_t *e, const char *key, bool *bad)
{
    json_t *v = json_object_get(e, key);
    if (!v)
        return NULL;
    if (!json_is_string(v) || !*json_string_value(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static void source_free(struct webhook_source *w)
{
    free(w->name);
    free(w->kind);
    free(w->queue);
    free(w->id_header);
    free(w->id_field);
    free(w->verify_token);
    free(w->header);
    free(w->prefix);
    memset(w->secret, 0, sizeof(w->secret));
}

#define FAIL(f, ...) (snprintf(why, sizeof(why), __VA_ARGS__), field = (f), -1)

static int parse_one(json_t *e, struct webhook_source *w, webhook_kind_known_fn known, void *ctx,
                     const char **fieldp, char *whyp, size_t cap)
{
    const char *field = NULL;
    char why[200] = "";
    bool bad = false;
    int rc = 0;
    if (!json_is_object(e)) {
        rc = FAIL("scheme", "the source must be an object");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            ok |= !strcmp(k, fields[i]);
        if (!ok) {
            rc = FAIL(k, "unknown field");
            goto out;
        }
    }
    const char *scheme = str(e, "scheme", &bad);
    int si = -1;
    for (int i = 0; scheme && i < 5; i++)
        if (!strcmp(scheme, scheme_names[i]))
            si = i;
    if (scheme && !strcmp(scheme, "meta"))
        si = WEBHOOK_HUB; /* Meta signs as GitHub does */
    if (si < 0) {
        rc = FAIL("scheme", "required: standard, github, meta, stripe, paystack or generic");
        goto out;
    }
    w->scheme = (enum webhook_scheme)si;
    bad = false;
    const char *senv = str(e, "secret_env", &bad);
    const char *secret = senv ? getenv(senv) : NULL;
    if (!senv) {
        rc = FAIL("secret_env", "required: the environment variable holding the secret");
        goto out;
    }
    if (!secret || !*secret) {
        rc = FAIL("secret_env", "environment variable %.60s is not set or empty", senv);
        goto out;
    }
    size_t sl = strlen(secret);
    if (w->scheme == WEBHOOK_STANDARD) {
        /* "whsec_<base64>": the key is the decoded bytes. */
        long n = stdwh_secret(secret, w->secret, sizeof(w->secret));
        if (n < 0) {
            rc = FAIL("secret_env", "%.60s is not whsec_<base64> (at most %d bytes)", senv,
                      WEBHOOK_SECRET_MAX);
            goto out;
        }
        w->secret_len = (size_t)n;
    } else {
        if (sl > sizeof(w->secret)) {
            rc = FAIL("secret_env", "%.60s is longer than %d bytes", senv, WEBHOOK_SECRET_MAX);
            goto out;
        }
        memcpy(w->secret, secret, sl);
        w->secret_len = sl;
    }
    const char *kind = str(e, "kind", &bad);
    if (!kind || !known(kind, ctx)) {
        rc = FAIL("kind", "required: a kind of this file or a built-in one%s%.60s",
                  kind ? "; unknown: " : "", kind ? kind : "");
        goto out;
    }
    w->kind = xstrdup(kind);
    const char *q = str(e, "queue", &bad);
    if (bad) {
        rc = FAIL("queue", "must be a non-empty string");
        goto out;
    }
    w->queue = q ? xstrdup(q) : NULL;
    json_t *tol = json_object_get(e, "tolerance");
    w->tolerance_s = WEBHOOK_TOLERANCE_DEFAULT;
    if (tol) {
        if (!json_is_integer(tol) || json_integer_value(tol) < 1 ||
            json_integer_value(tol) > 86400) {
            rc = FAIL("tolerance", "seconds, from 1 to 86400");
            goto out;
        }
        w->tolerance_s = json_integer_value(tol);
    }
    static const char *const def_id[] = {"webhook-id", "x-github-delivery", NULL, NULL, NULL};
    const char *idh = str(e, "id_header", &bad), *idf = str(e, "id_field", &bad);
    if (bad) {
        rc = FAIL("id_header", "id_header and id_field must be non-empty strings");
        goto out;
    }
    if (!idh && !idf) {
        idh = def_id[w->scheme];
        idf = w->scheme == WEBHOOK_STRIPE ? "id" : NULL; /* Stripe's event id */
    }
    w->id_header = idh ? lower_dup(idh) : NULL;
    w->id_field = idf ? xstrdup(idf) : NULL;
    const char *venv = str(e, "verify_token_env", &bad);
    if (venv) {
        const char *tok = getenv(venv);
        if (!tok || !*tok) {
            rc = FAIL("verify_token_env", "environment variable %.60s is not set or empty", venv);
            goto out;
        }
        w->verify_token = xstrdup(tok);
    }
    const char *hdr = str(e, "header", &bad), *alg = str(e, "algorithm", &bad),
               *enc = str(e, "encoding", &bad), *pre = str(e, "prefix", &bad);
    if (bad) {
        rc = FAIL("header", "header, algorithm, encoding and prefix must be non-empty strings");
        goto out;
    }
    if (w->scheme == WEBHOOK_GENERIC) {
        if (!hdr) {
            rc = FAIL("header", "required by the generic scheme: the signature's header");
            goto out;
        }
        if (!alg || (strcmp(alg, "sha1") && strcmp(alg, "sha256") && strcmp(alg, "sha512"))) {
            rc = FAIL("algorithm", "required by the generic scheme: sha1, sha256 or sha512");
            goto out;
        }
        if (!enc || (strcmp(enc, "hex") && strcmp(enc, "base64"))) {
            rc = FAIL("encoding", "required by the generic scheme: hex or base64");
            goto out;
        }
        w->header = lower_dup(hdr);
        w->alg = !strcmp(alg, "sha1")     ? HMAC_SHA1
                 : !strcmp(alg, "sha256") ? HMAC_SHA256
                                          : HMAC_SHA512;
        w->base64 = !strcmp(enc, "base64");
        w->prefix = xstrdup(pre ? pre : "");
    } else if (hdr || alg || enc || pre) {
        rc = FAIL(hdr   ? "header"
                  : alg ? "algorithm"
                  : enc ? "encoding"
                        : "prefix",
                  "only the generic scheme takes it");
        goto out;
    }
out:
    if (rc) {
        *fieldp = field;
        snprintf(whyp, cap, "%s", why);
    }
    return rc;
}

int webhook_sources_parse(json_t *obj, struct webhook_sources *out, webhook_kind_known_fn known,
                          void *ctx, char *msg, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (!obj)
        return 0;
    if (!json_is_object(obj)) {
        snprintf(msg, cap, "\"webhooks\" must be an object of sources");
        return -1;
    }
    size_t n = json_object_size(obj);
    if (n > WEBHOOK_SOURCES_MAX) {
        snprintf(msg, cap, "%zu webhook sources declared, at most %d", n, WEBHOOK_SOURCES_MAX);
        return -1;
    }
    out->v = xcalloc(n ? n : 1, sizeof(*out->v));
    const char *name;
    json_t *e;
    json_object_foreach(obj, name, e)
    {
        const char *field = "";
        char why[200];
        struct webhook_source *w = &out->v[out->n];
        if (!name_ok(name)) {
            snprintf(msg, cap,
                     "webhook source '%.80s': the name must be 1 to %d letters, digits or _ - .",
                     name, WEBHOOK_NAME_MAX);
            webhook_sources_free(out);
            return -1;
        }
        if (parse_one(e, w, known, ctx, &field, why, sizeof(why))) {
            snprintf(msg, cap, "webhook source '%s': field '%s': %s", name, field, why);
            source_free(w);
            webhook_sources_free(out);
            return -1;
        }
        w->name = xstrdup(name);
        out->n++;
    }
    return 0;
}

void webhook_sources_free(struct webhook_sources *s)
{
    for (unsigned i = 0; i < s->n; i++)
        source_free(&s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

const struct webhook_source *webhook_source_find(const struct webhook_sources *s, const char *name,
                                                 size_t len)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strlen(s->v[i].name) == len && !memcmp(s->v[i].name, name, len))
            return &s->v[i];
    return NULL;
}
