/*
 * conn.h - a stream socket on the ring: multishot recv, batched sends,
 * deadlines, and a close that cancels what is in flight.
 *
 * Input: every recv completion is copied from the loop's provided buffer
 * into c->in, which the handler parses and consumes (buf_consume). Output:
 * conn_write() appends to c->out; at most one send is in flight per socket,
 * and whatever was written while it flew goes out together in the next one.
 *
 * TLS (kernel/tls.h) sits between the socket and these buffers: c->in and
 * c->out then hold plaintext and c->wire the engine's records.
 *
 * A protocol embeds struct conn as its first member and supplies a
 * struct conn_handler. The conn is freed by the handler's on_close, which
 * runs exactly once, after every op of the conn has completed.
 */
#ifndef TRIREME_KERNEL_CONN_H
#define TRIREME_KERNEL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/buf.h"
#include "kernel/loop.h"
#include "kernel/timer.h"

struct conn;
struct tls_session;

struct conn_handler {
    /* New bytes are in c->in. */
    void (*on_read)(struct conn *c);
    /* The peer shut its side (EOF). Default when NULL: conn_close(). */
    void (*on_eof)(struct conn *c);
    /* Everything written so far is on the wire (optional). */
    void (*on_drained)(struct conn *c);
    /* TLS only (optional): the handshake completed; the peer is verified. */
    void (*on_secure)(struct conn *c);
    /* The deadline set by conn_deadline() passed. */
    void (*on_timeout)(struct conn *c);
    /* Last call: the socket is closed; free the struct. err: 0 or -errno. */
    void (*on_close)(struct conn *c, int err);
};

enum {
    CONN_RECV_ARMED = 1 << 0,
    CONN_SENDING = 1 << 1,
    CONN_CLOSING = 1 << 2,
    CONN_EOF = 1 << 3,
    CONN_CLOSE_AFTER_SEND = 1 << 4,
    CONN_LINGER = 1 << 5,
    CONN_CANCELING = 1 << 6,
    CONN_RECV_PAUSED = 1 << 7,
};

struct conn {
    struct op recv_op;
    struct op send_op;
    struct op cancel_op;
    struct op pause_op; /* cancels the multishot recv for conn_recv_pause */
    struct timer timer;
    struct loop *loop;
    const struct conn_handler *h;
    struct buf in, out, wire;
    struct tls_session *tls; /* NULL: plain TCP; else see kernel/tls.h */
    int fd;
    int err; /* first error seen, reported to on_close */
    uint16_t flags;
    uint8_t ops; /* ops in flight; the conn is freed only at zero */
};

/* The conn owns fd from here on. Counts as live for the loop. */
void conn_init(struct conn *c, struct loop *l, int fd, const struct conn_handler *h);
/* Start receiving. */
void conn_start(struct conn *c);
/* Queue bytes; 0 or -ENOMEM. conn_flush() sends what is queued. */
int conn_write(struct conn *c, const void *p, size_t n);
char *conn_write_reserve(struct conn *c, size_t n);
void conn_write_commit(struct conn *c, size_t n);
void conn_flush(struct conn *c);
/* Close once everything queued is sent (and the peer had a moment to read
 * it: lingering close, so an unread request body cannot turn into a RST
 * that destroys our answer). */
void conn_close_after_send(struct conn *c);
/* Close now: cancel recv and send, drop queued output. */
void conn_close(struct conn *c, int err);
/* The loop has stopped for good (a forced exit when --grace ran out) with
 * this conn still open: close its fd and release its buffers without
 * touching the ring. on_close is not called; the caller frees the struct. */
void conn_abandon(struct conn *c);
/* Flow control: stop reading from the socket (the peer's sends then wait
 * in the kernel's socket buffer and TCP window) until conn_recv_resume().
 * Bytes already in flight may still arrive in c->in. A lingering close
 * resumes reading by itself. */
void conn_recv_pause(struct conn *c);
void conn_recv_resume(struct conn *c);
/* Arm (ms > 0) or clear (ms == 0) the conn's single deadline. */
void conn_deadline(struct conn *c, uint64_t ms);

static inline bool conn_closing(const struct conn *c)
{
    return (c->flags & (CONN_CLOSING | CONN_CLOSE_AFTER_SEND)) != 0;
}

/* Lingering close gives up after this many ms. */
#define CONN_LINGER_MS 2000
/* recv stops being re-armed (input dropped) when c->in exceeds this. */
#define CONN_MAX_INPUT (64u * 1024u * 1024u)

#endif
