/*
 * redis.h - Redis on the ring. Trireme owns the socket (a kernel conn).
 * Commands are encoded by proto/resp straight into the connection's output
 * buffer, so submitting one allocates nothing; replies are decoded by
 * hiredis' redisReader (with its buffer limit set).
 *
 * A client is one connection with pipelining: commands go out as soon as
 * they are submitted and replies come back in order. Blocking commands and
 * pub/sub need a client of their own (REDIS_PUBSUB mode: every reply goes
 * to on_push). AUTH and SELECT from the URL are sent first on every
 * (re)connection. A lost connection fails what was in flight (or re-sends
 * what is marked retry_safe) and reconnects with backoff, forever, with log
 * lines. A command that outlives its deadline means a stuck server or a
 * dead path: the connection is dropped and re-made.
 *
 * Bytes are kept only while they may still be needed: the encodings of
 * commands waiting for a connection (in order, in `pending`), and of the
 * retry_safe commands sent and not yet answered (in order, in `replay`),
 * so a reconnection can send them again. Both are loop-pool buffers.
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_REDIS_H
#define TRIREME_KERNEL_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kernel/buf.h"
#include "kernel/list.h"
#include "kernel/loop.h"
#include "kernel/tcp_connect.h"
#include "kernel/timer.h"
#include "kernel/tls.h"

struct redis_cmd;
struct redis_client;

/* reply valid only during the call; err: NULL, a server error reply's text,
 * or "timeout", "connection lost", ... */
typedef void (*redis_fn)(struct redis_cmd *c, redisReply *reply, const char *err);

struct redis_cmd {
    redis_fn fn;
    void *data;
    uint64_t timeout_ms; /* 0: the client's default */
    bool retry_safe;
    bool fail_fast; /* waiting for a connection: fails once the client is known down */
    /* internal */
    struct redis_client *client;
    struct list link;  /* on the client's waiting or sent list */
    uint32_t wire_len; /* bytes of its encoding */
    struct timer timer;
    uint8_t state;
    bool internal; /* AUTH/SELECT of a fresh connection, owned by the client */
};

struct redis_url {
    char host[256];
    int port;
    char user[128];
    char pass[256];
    int db;
    bool tls; /* rediss:// */
};

/* 0, or -EINVAL with *err naming what is wrong with the URL. */
int redis_url_parse(const char *url, struct redis_url *out, const char **err);

enum redis_mode { REDIS_COMMANDS, REDIS_PUBSUB };

struct redis_client {
    struct loop *loop;
    struct redis_url url;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum redis_mode mode;
    const char *name; /* for log lines: "leader", "pubsub", ... */
    uint64_t default_timeout_ms;
    struct redis_sock *sock;
    struct tcp_connect connect;
    struct timer retry;
    unsigned backoff_ms;
    struct list waiting; /* not yet sent, in order; their encodings in pending */
    struct list sent;    /* awaiting replies, in order; the retry_safe ones' in replay */
    struct buf pending, replay;
    struct redis_cmd handshake[2]; /* AUTH and SELECT of the current connection */
    struct tls_origin tls;         /* rediss://: the server's name, its last session */
    uint8_t state;
    bool closing;
    bool connecting;
    bool down;  /* a connection attempt failed since the last one came up */
    bool ready; /* connected, TLS and AUTH/SELECT done: commands are answered */
    /* Optional: every reply in REDIS_PUBSUB mode. */
    void (*on_push)(struct redis_client *cl, redisReply *reply);
    /* Optional: the connection came up (after AUTH/SELECT) or went down. */
    void (*on_state)(struct redis_client *cl, bool up);
    /* Optional: an attempt to connect failed, at the TCP connect (step
     * NULL) or when the server refused the handshake (step "AUTH" or
     * "SELECT"); the client tries again after a backoff, as always. */
    void (*on_connect_error)(struct redis_client *cl, const char *step, const char *why);
    void *data;
};

/* Resolves the host (blocking getaddrinfo: call before the loop runs or at
 * a module's start) and connects. 0, or tcp_resolve's -errno. */
int redis_client_init(struct redis_client *cl, struct loop *l, const struct redis_url *url,
                      enum redis_mode mode, const char *name);
/* Fail queued commands, close. The struct may be freed once the loop ran
 * one more iteration (the socket's close completes asynchronously). */
void redis_client_close(struct redis_client *cl);
bool redis_client_up(const struct redis_client *cl);
/* Known down: the last connection attempt failed (callers that would
 * rather answer "unavailable" at once than wait for a reconnection). */
static inline bool redis_client_down(const struct redis_client *cl)
{
    return cl->down;
}
/* After the loop ended (cleanup): release what a forced exit left open. */
void redis_client_free(struct redis_client *cl);

/* Queue a command. argv strings are copied (encoded) before this returns.
 * A command that would encode to more than REDIS_COMMAND_MAX bytes fails. */
void redis_submit(struct redis_client *cl, struct redis_cmd *c, int argc, const char **argv,
                  const size_t *argvlen);
/* The same in two steps, for a caller that encodes its own command with
 * proto/resp (from wherever its arguments are): room for the command's n
 * bytes, written by the caller, then handed over with the room pointer.
 * Nothing else may be submitted on cl in between. NULL: c already failed
 * (its fn ran: the client is closing, or n is over REDIS_COMMAND_MAX). */
char *redis_submit_begin(struct redis_client *cl, struct redis_cmd *c, size_t n);
void redis_submit_end(struct redis_client *cl, struct redis_cmd *c, char *room);
/* Convenience: printf-free argv of C strings. */
void redis_submitv(struct redis_client *cl, struct redis_cmd *c, int argc, const char **argv);

/* Redis' own default proto-max-bulk-len is 512 MB; one command stays below. */
#define REDIS_COMMAND_MAX (512u * 1024 * 1024)

#endif
