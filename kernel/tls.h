/*
 * tls.h - TLS on a kernel conn, with BearSSL's engine (TLS 1.0 to 1.2:
 * BearSSL implements no TLS 1.3).
 *
 * A conn becomes TLS by conn_tls_server() or conn_tls_client() right after
 * conn_init(). From then on its recv completions carry records into the
 * engine and c->in receives the decrypted bytes; c->out holds plaintext,
 * which the engine encrypts into c->wire just before each send. Handlers
 * see the same conn contract as on plain TCP. A plain conn has c->tls NULL
 * and pays one predictable branch per completion.
 *
 * The store (trust anchors, the server's chain and key) is loaded once
 * before any loop runs and read-only afterwards, so every loop shares it.
 * The one exception is the server identity (chain and key), which SIGHUP
 * replaces: it sits behind one pointer that handshakes read once
 * (acquire) and a reload publishes (release). A replaced identity is kept
 * until the store is freed, because a handshake that began with it may
 * still be reading it; a reload costs the size of one chain and key.
 * Client sessions are remembered per origin (server name and port) in a
 * struct tls_origin owned by whoever connects to that origin (a Redis
 * client, an HTTP client's pool entry): the next connection resumes.
 *
 * Handshake and certificate failures are logged once, with the peer and
 * BearSSL's reason by name, and close the conn with -EPROTO.
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_TLS_H
#define TRIREME_KERNEL_TLS_H

#include <bearssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct config;

/* The system bundle (Debian's ca-certificates), the default --tls-ca-file. */
#define TLS_CA_FILE_DEFAULT "/etc/ssl/certs/ca-certificates.crt"
/* A PEM file (bundle, chain or key) larger than this is refused. */
#define TLS_PEM_MAX (8u * 1024u * 1024u)
/* Default of --tls-session-cache: bytes of server session cache per loop
 * (BearSSL's LRU cache, about 100 bytes per session). */
#define TLS_SESSION_CACHE_DEFAULT "64k"
/* A served certificate expiring within this many days is logged as a
 * warning at start and on reload, and `trireme doctor` warns. */
#define TLS_EXPIRY_WARN_DAYS 14
/* Certificates in --tls-cert's chain, at most. */
#define TLS_CHAIN_MAX 8

/* What the server presents: --tls-cert's chain and --tls-key's key. */
struct tls_identity {
    br_x509_certificate chain[TLS_CHAIN_MAX];
    size_t nchain;
    int key_type;                  /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    int issuer_key_type;           /* the key type that signed chain[0] */
    br_skey_decoder_context *key;  /* holds the decoded private key */
    int64_t not_before, not_after; /* chain[0]'s validity, Unix seconds */
    struct tls_identity *replaced; /* the one this took over from */
};

struct tls_store {
    /* client side: the anchors certificates are verified against */
    br_x509_trust_anchor *anchors;
    size_t nanchors;
    char ca_file[512];
    /* server side: NULL when not serving; see tls_store_identity() */
    struct tls_identity *identity;
    char cert_file[512], key_file[512];
    /* Server session caches, one per loop (indexed by loop id, each used
     * by its own loop only), so returning clients resume; none when
     * nloops or the size is 0. */
    br_ssl_session_cache_lru *caches;
    unsigned char *cache_mem;
    size_t cache_bytes; /* per loop */
    int nloops;
};

/* Where a client connects: SNI and the name its certificate must carry,
 * and the session the last handshake with it established. */
struct tls_origin {
    char name[256];
    int port;
    const char *alpn; /* NULL: offer no protocol; else e.g. "http/1.1" */
    bool have_session;
    br_ssl_session_parameters session;
};

/* Load --tls-cert/--tls-key when set (errors are fatal), with a session
 * cache of cache_bytes for each of nloops loops, and the anchors of
 * --tls-ca-file when need_anchors (some client will verify a server). On
 * failure *why says what and which file. */
int tls_store_load(struct tls_store *st, const char *cert_file, const char *key_file,
                   const char *ca_file, bool need_anchors, int nloops, size_t cache_bytes,
                   char *why, size_t whylen);
void tls_store_free(struct tls_store *st);
static inline const struct tls_identity *tls_store_identity(const struct tls_store *st)
{
    return st ? __atomic_load_n(&st->identity, __ATOMIC_ACQUIRE) : NULL;
}
static inline bool tls_store_serves(const struct tls_store *st)
{
    return tls_store_identity(st) != NULL;
}
/* Read --tls-cert/--tls-key again (SIGHUP) and, when both decode and
 * match, make them what new handshakes present; connections already up
 * keep theirs. On failure nothing changes and *why says what. Called on
 * one thread at a time. */
int tls_store_reload(struct tls_store *st, char *why, size_t whylen);
/* Decode a certificate file's first certificate's validity (doctor). */
int tls_cert_file_validity(const char *path, int64_t *not_before, int64_t *not_after, char *why,
                           size_t whylen);

/* Reads the PEM file at path (at most TLS_PEM_MAX bytes) and calls fn for
 * each object in it, in order, with the object's name ("PUBLIC KEY") and
 * decoded bytes. Returns 0, fn's first error, -EFBIG, -EINVAL when the
 * PEM does not decode, or open/read's error. For other modules' PEM files
 * (JWT public keys): one PEM reader for the process. */
typedef int (*tls_pem_fn)(void *ctx, const char *name, const unsigned char *der, size_t len);
int tls_pem_file_each(const char *path, tls_pem_fn fn, void *ctx);

/* Make c the server side of a handshake with st's chain and key. */
int conn_tls_server(struct conn *c, const struct tls_store *st);
/* Make c the client side, verifying the server against st's anchors and
 * origin->name; resumes origin's session when it has one. origin must
 * outlive c. */
int conn_tls_client(struct conn *c, const struct tls_store *st, struct tls_origin *origin);

/* BearSSL's name for an error code ("BR_ERR_X509_NOT_TRUSTED"; alerts as
 * "BR_ERR_RECV_FATAL_ALERT+<n>" into buf), never NULL. */
const char *tls_error_name(int err, char *buf, size_t len);

/* --- for kernel/conn.c only --- */
enum { TLS_GOT_DATA = 1, TLS_PEER_CLOSED = 2, TLS_SECURE = 4 };
/* Run the engine: records from the received ciphertext in, plaintext out
 * to c->in (when recv_side), c->out's plaintext in and records out to
 * c->wire (when the wire is free: no send in flight). Returns a mask of
 * TLS_GOT_DATA / TLS_PEER_CLOSED / TLS_SECURE (the handshake just
 * completed), or -EPROTO after logging (the caller
 * closes). */
int tls_pump(struct conn *c, bool recv_side);
/* Ciphertext from a recv completion; the next tls_pump() consumes it.
 * 0 or -EMSGSIZE. */
int tls_feed(struct conn *c, const void *p, size_t n);
void tls_free(struct conn *c);

#endif
