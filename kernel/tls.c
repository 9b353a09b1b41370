/*
 * tls.c - BearSSL's engine between a conn's ring I/O and its handler.
 *
 * The engine owns one bidirectional record buffer per connection. Nothing
 * here blocks or touches the socket: conn.c hands over received ciphertext
 * (tls_feed) and runs tls_pump() after each completion; tls_pump moves
 * bytes between the engine and the conn's buffers until the engine can make
 * no more progress. Records are appended to c->wire only while no send is
 * in flight (the kernel is reading c->wire then), so the engine's own
 * output buffer is the back-pressure while a send flies.
 */
#include "kernel/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kernel/conn.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"

struct tls_session {
    union {
        br_ssl_client_context client;
        br_ssl_server_context server;
    } u;
    br_x509_minimal_context x509; /* client side: the server's chain */
    br_ssl_engine_context *eng;
    struct buf rec_in;         /* ciphertext received, not yet taken by the engine */
    struct tls_origin *origin; /* client side */
    const char *alpn[1];
    bool client;
    bool handshake_done;
    bool close_sent;
    bool offered_session;
    unsigned char io[BR_SSL_BUFSIZE_BIDI];
};

static void peer_name(const struct conn *c, char *out, size_t len)
{
    const struct tls_session *t = c->tls;
    if (t->client) {
        snprintf(out, len, "%s:%d", t->origin->name, t->origin->port);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

static void log_failure(const struct conn *c, int err)
{
    const struct tls_session *t = c->tls;
    char peer[300], nb[48];
    peer_name(c, peer, sizeof(peer));
    const char *reason = tls_error_name(err, nb, sizeof(nb));
    if (t->client)
        LOG(LOG_WARN, "tls: handshake with server failed", L_STR("peer", peer),
            L_STR("reason", reason), L_INT("code", err),
            L_BOOL("during_handshake", !t->handshake_done));
    else
        LOG(LOG_INFO, "tls: client connection failed", L_STR("peer", peer), L_STR("reason", reason),
            L_INT("code", err), L_BOOL("during_handshake", !t->handshake_done));
}

static void handshake_finished(struct conn *c)
{
    struct tls_session *t = c->tls;
    t->handshake_done = true;
    if (!t->client)
        return;
    br_ssl_session_parameters now;
    br_ssl_engine_get_session_parameters(t->eng, &now);
    bool resumed = t->offered_session && now.session_id_len &&
                   now.session_id_len == t->origin->session.session_id_len &&
                   !memcmp(now.session_id, t->origin->session.session_id, now.session_id_len);
    t->origin->session = now;
    t->origin->have_session = now.session_id_len > 0;
    LOG(LOG_DEBUG, "tls: connected", L_STR("server", t->origin->name),
        L_INT("port", t->origin->port), L_BOOL("resumed", resumed),
        L_INT("version", br_ssl_engine_get_version(t->eng)));
}

int tls_feed(struct conn *c, const void *p, size_t n)
{
    struct tls_session *t = c->tls;
    if (buf_size(&t->rec_in) + n > CONN_MAX_INPUT)
        return -EMSGSIZE;
    return buf_append(c->loop->pool, &t->rec_in, p, n) ? -EMSGSIZE : 0;
}

int tls_pump(struct conn *c, bool recv_side)
{
    struct tls_session *t = c->tls;
    br_ssl_engine_context *e = t->eng;
    struct buf_pool *pool = c->loop->pool;
    bool wire_free = !(c->flags & CONN_SENDING);
    int got = 0;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st & BR_SSL_CLOSED) {
            int err = br_ssl_engine_last_error(e);
            if (err == BR_ERR_OK)
                return got | TLS_PEER_CLOSED;
            log_failure(c, err);
            return -EPROTO;
        }
        /* A handshake always ends on a received record, so the recv side
         * is where it is seen to end. */
        if (recv_side && !t->handshake_done && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
            handshake_finished(c);
            got |= TLS_SECURE;
        }
        size_t len;
        unsigned char *p;
        if (wire_free && (st & BR_SSL_SENDREC)) {
            p = br_ssl_engine_sendrec_buf(e, &len);
            if (buf_append(pool, &c->wire, p, len))
                return -ENOMEM;
            br_ssl_engine_sendrec_ack(e, len);
            continue;
        }
        if (recv_side && (st & BR_SSL_RECVAPP)) {
            p = br_ssl_engine_recvapp_buf(e, &len);
            if (buf_size(&c->in) + len > CONN_MAX_INPUT)
                return -EMSGSIZE;
            if (buf_append(pool, &c->in, p, len))
                return -ENOMEM;
            br_ssl_engine_recvapp_ack(e, len);
            got |= TLS_GOT_DATA;
            continue;
        }
        if (wire_free && (st & BR_SSL_SENDAPP)) {
            size_t have = buf_size(&c->out);
            if (have) {
                p = br_ssl_engine_sendapp_buf(e, &len);
                size_t n = have < len ? have : len;
                memcpy(p, buf_head(&c->out), n);
                br_ssl_engine_sendapp_ack(e, n);
                buf_consume(pool, &c->out, n);
                if (n == have)
                    br_ssl_engine_flush(e, 0);
                continue;
            }
            if ((c->flags & CONN_CLOSE_AFTER_SEND) && !t->close_sent) {
                /* Our side is done: close_notify goes out before the FIN. */
                t->close_sent = true;
                br_ssl_engine_close(e);
                continue;
            }
        }
        if (recv_side && (st & BR_SSL_RECVREC) && buf_size(&t->rec_in)) {
            p = br_ssl_engine_recvrec_buf(e, &len);
            size_t have = buf_size(&t->rec_in);
            size_t n = have < len ? have : len;
            memcpy(p, buf_head(&t->rec_in), n);
            br_ssl_engine_recvrec_ack(e, n);
            buf_consume(pool, &t->rec_in, n);
            continue;
        }
        return got;
    }
}

static struct tls_session *session_new(struct conn *c)
{
    struct tls_session *t = xmalloc(sizeof(*t));
    memset(t, 0, offsetof(struct tls_session, io));
    c->tls = t;
    return t;
}

int conn_tls_server(struct conn *c, const struct tls_store *st)
{
    const struct tls_identity *id = tls_store_identity(st);
    if (!id)
        return -EINVAL;
    struct tls_session *t = session_new(c);
    br_ssl_server_context *sc = &t->u.server;
    if (id->key_type == BR_KEYTYPE_RSA)
        br_ssl_server_init_full_rsa(sc, id->chain, id->nchain, br_skey_decoder_get_rsa(id->key));
    else
        br_ssl_server_init_full_ec(sc, id->chain, id->nchain, (unsigned)id->issuer_key_type,
                                   br_skey_decoder_get_ec(id->key));
    t->eng = &sc->eng;
    if (c->loop->id >= 0 && c->loop->id < st->nloops)
        br_ssl_server_set_cache(sc, &st->caches[c->loop->id].vtable);
    br_ssl_engine_add_flags(t->eng, BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_buffer(t->eng, t->io, sizeof(t->io), 1);
    t->alpn[0] = "http/1.1";
    br_ssl_engine_set_protocol_names(t->eng, t->alpn, 1);
    if (!br_ssl_server_reset(sc)) {
        tls_free(c);
        return -EPROTO;
    }
    return 0;
}

int conn_tls_client(struct conn *c, const struct tls_store *st, struct tls_origin *origin)
{
    if (!st || !st->nanchors)
        return -ENOENT;
    struct tls_session *t = session_new(c);
    br_ssl_client_context *cc = &t->u.client;
    t->client = true;
    t->origin = origin;
    br_ssl_client_init_full(cc, &t->x509, st->anchors, st->nanchors);
    t->eng = &cc->eng;
    br_ssl_engine_add_flags(t->eng, BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_buffer(t->eng, t->io, sizeof(t->io), 1);
    if (origin->alpn) {
        t->alpn[0] = origin->alpn;
        br_ssl_engine_set_protocol_names(t->eng, t->alpn, 1);
    }
    if (origin->have_session) {
        br_ssl_engine_set_session_parameters(t->eng, &origin->session);
        t->offered_session = true;
    }
    if (!br_ssl_client_reset(cc, origin->name, t->offered_session)) {
        tls_free(c);
        return -EPROTO;
    }
    return 0;
}

void tls_free(struct conn *c)
{
    struct tls_session *t = c->tls;
    if (!t)
        return;
    buf_release(c->loop->pool, &t->rec_in);
    /* Session keys must not linger in freed memory. */
    memset(t, 0, offsetof(struct tls_session, io));
    free(t);
    c->tls = NULL;
}
