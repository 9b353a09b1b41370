/*
 * tls_store.c - loading what TLS needs once at start: trust anchors from a
 * PEM bundle, the server's certificate chain and private key.
 *
 * Everything is decoded into memory owned by the store, which is never
 * written again once loops run, so all threads read it without locks;
 * the server identity alone is replaced on SIGHUP (see tls.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/tls.h"
#include "kernel/xalloc.h"
#include "proto/x509_validity.h"

struct bytes {
    unsigned char *p;
    size_t len, cap;
};

static void bytes_add(void *ctx, const void *src, size_t n)
{
    struct bytes *b = ctx;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static unsigned char *copy(const void *p, size_t n)
{
    unsigned char *d = xmalloc(n ? n : 1);
    memcpy(d, p, n);
    return d;
}

static int read_file(const char *path, struct bytes *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || sb.st_size > (off_t)TLS_PEM_MAX) {
        close(fd);
        return -EFBIG;
    }
    out->len = 0;
    char tmp[8192];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > TLS_PEM_MAX) {
            close(fd);
            return -EFBIG;
        }
        bytes_add(out, tmp, (size_t)n);
    }
    close(fd);
    return 0;
}

/* Calls fn for each PEM object of data, in order. 0, fn's error, or
 * -EINVAL for PEM that does not decode. */
static int pem_each(const unsigned char *data, size_t len, tls_pem_fn fn, void *ctx)
{
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    struct bytes obj = {0};
    char name[128] = "";
    bool in_obj = false, tail = false;
    int ret = 0;
    while (ret == 0) {
        if (len == 0) {
            if (tail)
                break;
            /* A last END line without its newline is completed by one. */
            tail = true;
            data = (const unsigned char *)"\n";
            len = 1;
        }
        size_t n = br_pem_decoder_push(&pc, data, len);
        data += n;
        len -= n;
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            snprintf(name, sizeof(name), "%s", br_pem_decoder_name(&pc));
            obj.len = 0;
            br_pem_decoder_setdest(&pc, bytes_add, &obj);
            in_obj = true;
            break;
        case BR_PEM_END_OBJ:
            if (in_obj)
                ret = fn(ctx, name, obj.p, obj.len);
            in_obj = false;
            break;
        case BR_PEM_ERROR:
            ret = -EINVAL;
            break;
        default:
            break;
        }
    }
    free(obj.p);
    return ret ? ret : in_obj ? -EINVAL : 0;
}

int tls_pem_file_each(const char *path, tls_pem_fn fn, void *ctx)
{
    struct bytes data = {0};
    int ret = read_file(path, &data);
    if (ret == 0)
        ret = pem_each(data.p, data.len, fn, ctx);
    free(data.p);
    return ret;
}

static bool is_cert(const char *name)
{
    return !strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE");
}

struct anchors_ctx {
    struct tls_store *st;
    size_t cap, skipped;
};

static int add_anchor(void *vctx, const char *name, const unsigned char *der, size_t len)
{
    struct anchors_ctx *ctx = vctx;
    if (!is_cert(name))
        return 0;
    struct bytes dn = {0};
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, bytes_add, &dn);
    br_x509_decoder_push(&dc, der, len);
    br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || (pk->key_type != BR_KEYTYPE_RSA && pk->key_type != BR_KEYTYPE_EC)) {
        /* A key type BearSSL cannot use (e.g. Ed25519): not an anchor here. */
        free(dn.p);
        ctx->skipped++;
        return 0;
    }
    br_x509_trust_anchor ta = {
        .dn = {.data = dn.p ? dn.p : copy("", 0), .len = dn.len},
        .flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0,
    };
    ta.pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta.pkey.key.rsa.n = copy(pk->key.rsa.n, pk->key.rsa.nlen);
        ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
        ta.pkey.key.rsa.e = copy(pk->key.rsa.e, pk->key.rsa.elen);
        ta.pkey.key.rsa.elen = pk->key.rsa.elen;
    } else {
        ta.pkey.key.ec.curve = pk->key.ec.curve;
        ta.pkey.key.ec.q = copy(pk->key.ec.q, pk->key.ec.qlen);
        ta.pkey.key.ec.qlen = pk->key.ec.qlen;
    }
    struct tls_store *st = ctx->st;
    if (st->nanchors == ctx->cap) {
        ctx->cap = ctx->cap ? ctx->cap * 2 : 64;
        st->anchors = xrealloc(st->anchors, ctx->cap * sizeof(*st->anchors));
    }
    st->anchors[st->nanchors++] = ta;
    return 0;
}

static int add_chain_cert(void *vctx, const char *name, const unsigned char *der, size_t len)
{
    struct tls_identity *st = vctx;
    if (!is_cert(name))
        return 0;
    if (st->nchain == TLS_CHAIN_MAX)
        return -E2BIG;
    st->chain[st->nchain].data = copy(der, len);
    st->chain[st->nchain].data_len = len;
    st->nchain++;
    return 0;
}

static int add_key(void *vctx, const char *name, const unsigned char *der, size_t len)
{
    struct tls_identity *st = vctx;
    /* "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY", "EC PRIVATE KEY"; other
     * objects such as "EC PARAMETERS" are skipped. */
    size_t nl = strlen(name);
    if (nl < 11 || strcmp(name + nl - 11, "PRIVATE KEY") || st->key)
        return 0;
    st->key = xmalloc(sizeof(*st->key));
    br_skey_decoder_init(st->key);
    br_skey_decoder_push(st->key, der, len);
    if (br_skey_decoder_last_error(st->key))
        return -EINVAL;
    st->key_type = br_skey_decoder_key_type(st->key);
    return st->key_type == BR_KEYTYPE_RSA || st->key_type == BR_KEYTYPE_EC ? 0 : -EINVAL;
}

static int load_pem(const char *path, tls_pem_fn fn, void *ctx, const char *what, char *why,
                    size_t whylen)
{
    struct bytes data = {0};
    int ret = read_file(path, &data);
    if (ret < 0) {
        snprintf(why, whylen, "%s %s: %s", what, path,
                 ret == -EFBIG ? "larger than the PEM limit" : strerror(-ret));
        free(data.p);
        return ret;
    }
    ret = pem_each(data.p, data.len, fn, ctx);
    free(data.p);
    if (ret < 0)
        snprintf(why, whylen, "%s %s: %s", what, path,
                 ret == -E2BIG ? "more certificates than the chain limit"
                               : "not PEM, or an object in it does not decode");
    return ret;
}

static void identity_free(struct tls_identity *id)
{
    for (size_t i = 0; i < id->nchain; i++)
        free(id->chain[i].data);
    if (id->key) {
        /* The private key must not linger in freed memory. */
        memset(id->key, 0, sizeof(*id->key));
        free(id->key);
    }
    free(id);
}

/* A new identity from the two files, or NULL with *why set. */
static struct tls_identity *identity_load(const char *cert_file, const char *key_file, char *why,
                                          size_t whylen)
{
    struct tls_identity *id = xcalloc(1, sizeof(*id));
    int ret = load_pem(cert_file, add_chain_cert, id, "--tls-cert", why, whylen);
    if (ret < 0)
        goto fail;
    if (!id->nchain) {
        snprintf(why, whylen, "--tls-cert %s: no CERTIFICATE in it", cert_file);
        goto fail;
    }
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, NULL, NULL);
    br_x509_decoder_push(&dc, id->chain[0].data, id->chain[0].data_len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || x509_validity(id->chain[0].data, id->chain[0].data_len, &id->not_before,
                             &id->not_after) < 0) {
        snprintf(why, whylen, "--tls-cert %s: the first certificate does not decode", cert_file);
        goto fail;
    }
    id->issuer_key_type = br_x509_decoder_get_signer_key_type(&dc);
    ret = load_pem(key_file, add_key, id, "--tls-key", why, whylen);
    if (ret < 0)
        goto fail;
    if (!id->key) {
        snprintf(why, whylen, "--tls-key %s: no PRIVATE KEY in it", key_file);
        goto fail;
    }
    if (pk->key_type != id->key_type) {
        snprintf(why, whylen, "--tls-key %s: its key type does not match --tls-cert's", key_file);
        goto fail;
    }
    return id;
fail:
    identity_free(id);
    return NULL;
}

int tls_store_reload(struct tls_store *st, char *why, size_t whylen)
{
    if (!st->identity) {
        snprintf(why, whylen, "no --tls-cert to reload");
        return -EINVAL;
    }
    struct tls_identity *id = identity_load(st->cert_file, st->key_file, why, whylen);
    if (!id)
        return -EINVAL;
    id->replaced = st->identity;
    __atomic_store_n(&st->identity, id, __ATOMIC_RELEASE);
    return 0;
}

int tls_cert_file_validity(const char *path, int64_t *not_before, int64_t *not_after, char *why,
                           size_t whylen)
{
    struct tls_identity id = {0};
    int ret = load_pem(path, add_chain_cert, &id, "--tls-cert", why, whylen);
    if (ret == 0 && !id.nchain) {
        snprintf(why, whylen, "--tls-cert %s: no CERTIFICATE in it", path);
        ret = -EINVAL;
    }
    if (ret == 0 &&
        x509_validity(id.chain[0].data, id.chain[0].data_len, not_before, not_after) < 0) {
        snprintf(why, whylen, "--tls-cert %s: the first certificate does not decode", path);
        ret = -EINVAL;
    }
    for (size_t i = 0; i < id.nchain; i++)
        free(id.chain[i].data);
    return ret;
}

int tls_store_load(struct tls_store *st, const char *cert_file, const char *key_file,
                   const char *ca_file, bool need_anchors, int nloops, size_t cache_bytes,
                   char *why, size_t whylen)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->ca_file, sizeof(st->ca_file), "%s", ca_file ? ca_file : "");
    int ret = 0;
    if (cert_file && *cert_file) {
        snprintf(st->cert_file, sizeof(st->cert_file), "%s", cert_file);
        snprintf(st->key_file, sizeof(st->key_file), "%s", key_file ? key_file : "");
        st->identity = identity_load(st->cert_file, st->key_file, why, whylen);
        if (!st->identity)
            ret = -EINVAL;
    }
    if (ret == 0 && st->identity && nloops > 0 && cache_bytes) {
        st->nloops = nloops;
        st->cache_bytes = cache_bytes;
        st->caches = xcalloc((size_t)nloops, sizeof(*st->caches));
        st->cache_mem = xmalloc((size_t)nloops * cache_bytes);
        for (int i = 0; i < nloops; i++)
            br_ssl_session_cache_lru_init(&st->caches[i], st->cache_mem + (size_t)i * cache_bytes,
                                          cache_bytes);
    }
    if (ret == 0 && need_anchors) {
        struct anchors_ctx ctx = {.st = st};
        ret = load_pem(ca_file, add_anchor, &ctx, "--tls-ca-file", why, whylen);
        if (ret == 0 && !st->nanchors) {
            snprintf(why, whylen, "--tls-ca-file %s: no usable CA certificate in it", ca_file);
            ret = -EINVAL;
        }
    }
    if (ret < 0)
        tls_store_free(st);
    return ret;
}

void tls_store_free(struct tls_store *st)
{
    for (size_t i = 0; i < st->nanchors; i++) {
        br_x509_trust_anchor *ta = &st->anchors[i];
        free(ta->dn.data);
        if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
            free(ta->pkey.key.rsa.n);
            free(ta->pkey.key.rsa.e);
        } else {
            free(ta->pkey.key.ec.q);
        }
    }
    free(st->anchors);
    while (st->identity) {
        struct tls_identity *older = st->identity->replaced;
        identity_free(st->identity);
        st->identity = older;
    }
    free(st->caches);
    if (st->cache_mem) {
        /* Master secrets of past sessions must not linger in freed memory. */
        memset(st->cache_mem, 0, (size_t)st->nloops * st->cache_bytes);
        free(st->cache_mem);
    }
    memset(st, 0, sizeof(*st));
}
