/*
 * redis.c - the Redis client on the ring (see redis.h for the contract).
 */
#include "kernel/redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/conn.h"
#include "kernel/log.h"
#include "kernel/metrics.h"
#include "kernel/redis_reader.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "proto/resp.h"

#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 3000
#define DEFAULT_TIMEOUT_MS 5000

enum { C_DOWN, C_CONNECTING, C_UP };
enum { Q_WAITING = 1, Q_SENT, Q_DONE };

/* One TCP connection; a new one per (re)connection, freed when closed. The
 * handshake (AUTH, SELECT) is queued ahead of everything and sent as soon
 * as the connection is up, so a handshake command is never left waiting. */
struct redis_sock {
    struct conn c; /* first */
    struct redis_client *cl;
    redisReader *reader;
};

static void connect_now(struct redis_client *cl);

/* --- URL ---------------------------------------------------------------- */

int redis_url_parse(const char *url, struct redis_url *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p;
    if (!strncmp(url, "redis://", 8)) {
        p = url + 8;
    } else if (!strncmp(url, "rediss://", 9)) {
        p = url + 9;
        out->tls = true;
    } else {
        *err = "must start with redis:// or rediss://";
        return -EINVAL;
    }
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            size_t ul = (size_t)(colon - p), pl = (size_t)(at - colon - 1);
            if (ul >= sizeof(out->user) || pl >= sizeof(out->pass)) {
                *err = "user or password is too long";
                return -EINVAL;
            }
            memcpy(out->user, p, ul);
            memcpy(out->pass, colon + 1, pl);
        } else {
            size_t pl = (size_t)(at - p);
            if (pl >= sizeof(out->pass)) {
                *err = "password is too long";
                return -EINVAL;
            }
            memcpy(out->pass, p, pl); /* redis://secret@host: a password alone */
        }
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    const char *hend = slash ? slash : p + strlen(p);
    const char *colon = NULL;
    if (*p == '[') { /* [::1]:6379 */
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb) {
            *err = "unterminated IPv6 address";
            return -EINVAL;
        }
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(hend - p));
        size_t hl = (size_t)((colon ? colon : hend) - p);
        if (hl >= sizeof(out->host)) {
            *err = "host is too long";
            return -EINVAL;
        }
        memcpy(out->host, p, hl);
    }
    if (!*out->host)
        strcpy(out->host, "127.0.0.1");
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != hend || port < 1 || port > 65535) {
            *err = "port must be 1..65535";
            return -EINVAL;
        }
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 100000) {
            *err = "database must be a number, as in redis://host:6379/0";
            return -EINVAL;
        }
        out->db = (int)db;
    }
    return 0;
}

/* --- completing commands ------------------------------------------------ */

static struct buf_pool *pool_of(struct redis_client *cl)
{
    return cl->loop->pool;
}

static struct redis_cmd *first(struct list *l)
{
    return list_entry(l->next, struct redis_cmd, link);
}

static void finish(struct redis_cmd *c, redisReply *r, const char *err)
{
    loop_timer_cancel(c->client->loop, &c->timer);
    c->state = Q_DONE;
    if (!err && r && r->type == REDIS_REPLY_ERROR)
        err = r->str;
    c->fn(c, r, err);
}

/* A handshake command leaves its list without a callback. */
static void forget_internal(struct redis_cmd *c)
{
    loop_timer_cancel(c->client->loop, &c->timer);
    c->state = Q_DONE;
}

static void drop_connection(struct redis_client *cl, const char *why);

/* c leaves the waiting list, and its encoding leaves pending. */
static void unqueue(struct redis_client *cl, struct redis_cmd *c)
{
    size_t off = 0;
    struct list *pos;
    for (pos = cl->waiting.next; pos != &c->link; pos = pos->next)
        off += list_entry(pos, struct redis_cmd, link)->wire_len;
    buf_cut(pool_of(cl), &cl->pending, off, c->wire_len);
    list_remove(&c->link);
}

static void on_cmd_timeout(struct loop *l, struct timer *t)
{
    struct redis_cmd *c = container_of(t, struct redis_cmd, timer);
    struct redis_client *cl = c->client;
    if (c->state == Q_WAITING) {
        unqueue(cl, c);
        finish(c, NULL, "timeout (Redis unreachable)");
        return;
    }
    /* Sent and unanswered past its deadline: the server is stuck or the
     * path is dead. Drop the connection; this command fails with the rest. */
    drop_connection(cl, "command timed out");
}

/* --- the socket --------------------------------------------------------- */

static bool sendable(const struct redis_client *cl)
{
    return cl->state == C_UP && cl->sock && !conn_closing(&cl->sock->c);
}

/* q is on the wire: it awaits its reply (its encoding kept in replay if it
 * may be re-sent), or, in pub/sub mode, it is done. */
static void mark_sent(struct redis_client *cl, struct redis_cmd *q, const char *wire,
                      struct list *done)
{
    if (cl->mode == REDIS_PUBSUB) {
        list_append(done, &q->link);
        return;
    }
    if (q->retry_safe && buf_append(pool_of(cl), &cl->replay, wire, q->wire_len)) {
        /* replay full: q stays sent but can no longer be re-sent */
        q->retry_safe = false;
    }
    q->state = Q_SENT;
    list_append(&cl->sent, &q->link);
}

/* Pub/sub commands are done once written; their callbacks run after every
 * byte that was queued is out, so what they submit comes after. */
static void finish_written(struct list *done)
{
    while (!list_empty(done)) {
        struct redis_cmd *q = first(done);
        list_remove(&q->link);
        finish(q, NULL, NULL);
    }
}

static void send_waiting(struct redis_client *cl)
{
    if (!sendable(cl) || list_empty(&cl->waiting))
        return;
    struct conn *c = &cl->sock->c;
    const char *wire = buf_head(&cl->pending);
    if (conn_write(c, wire, buf_size(&cl->pending))) {
        conn_close(c, -ENOMEM); /* the commands wait for the next connection */
        return;
    }
    struct list done;
    list_init(&done);
    while (!list_empty(&cl->waiting)) {
        struct redis_cmd *q = first(&cl->waiting);
        list_remove(&q->link);
        mark_sent(cl, q, wire, &done);
        wire += q->wire_len;
    }
    buf_release(pool_of(cl), &cl->pending);
    conn_flush(c);
    finish_written(&done);
}

/* Encode argv at the end of b (a handshake command's). */
static void encode(struct redis_client *cl, struct buf *b, struct redis_cmd *c, int argc,
                   const char **argv)
{
    size_t n = resp_command_size(argc, argv, NULL);
    char *w = buf_reserve(pool_of(cl), b, n);
    resp_command_write(w, argc, argv, NULL); /* a few hundred bytes at most */
    buf_commit(b, n);
    c->wire_len = (uint32_t)n;
}

static void on_reply(struct redis_client *cl, redisReply *r)
{
    if (cl->mode == REDIS_PUBSUB) {
        if (cl->on_push)
            cl->on_push(cl, r);
        return;
    }
    if (list_empty(&cl->sent)) {
        LOG(LOG_WARN, "redis: reply with no command waiting for it", L_STR("client", cl->name));
        return;
    }
    struct redis_cmd *q = first(&cl->sent);
    list_remove(&q->link);
    if (q->retry_safe)
        buf_consume(pool_of(cl), &cl->replay, q->wire_len);
    finish(q, r, NULL);
}

static void sock_read(struct conn *c)
{
    struct redis_sock *s = container_of(c, struct redis_sock, c);
    struct redis_client *cl = s->cl;
    if (redisReaderFeed(s->reader, buf_head(&c->in), buf_size(&c->in)) != REDIS_OK) {
        conn_close(c, -EPROTO);
        return;
    }
    buf_consume(c->loop->pool, &c->in, buf_size(&c->in));
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
            LOG(LOG_ERROR, "redis: protocol error", L_STR("client", cl->name),
                L_STR("error", redis_reader_error(s->reader)));
            conn_close(c, -EPROTO);
            return;
        }
        if (!reply)
            break;
        if (cl->sock == s)
            on_reply(cl, reply);
        freeReplyObject(reply);
        if (cl->sock != s)
            break; /* a callback dropped this connection */
    }
    send_waiting(cl);
}

static void sock_closed(struct conn *c, int err)
{
    struct redis_sock *s = container_of(c, struct redis_sock, c);
    struct redis_client *cl = s->cl;
    redis_reader_free(s->reader);
    if (cl && cl->sock == s)
        drop_connection(cl, err ? strerror(-err) : "closed by server");
    free(s);
}

static void sock_eof(struct conn *c)
{
    struct redis_sock *s = container_of(c, struct redis_sock, c);
    if (s->cl && s->cl->sock == s)
        drop_connection(s->cl, "closed by server");
    else
        conn_close(c, 0);
}

static void connected(struct redis_client *cl, bool handshake);

/* rediss:// without AUTH or SELECT: up once the server is verified. */
static void sock_secure(struct conn *c)
{
    struct redis_sock *s = container_of(c, struct redis_sock, c);
    if (s->cl && s->cl->sock == s && !*s->cl->url.pass &&
        !(s->cl->url.db != 0 && s->cl->mode == REDIS_COMMANDS))
        connected(s->cl, false);
}

static const struct conn_handler sock_handler = {
    .on_read = sock_read,
    .on_eof = sock_eof,
    .on_secure = sock_secure,
    .on_close = sock_closed,
};

static void schedule_retry(struct redis_client *cl)
{
    if (cl->closing)
        return;
    cl->backoff_ms = cl->backoff_ms ? cl->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (cl->backoff_ms > BACKOFF_MAX_MS)
        cl->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay = cl->backoff_ms / 2 + loop_random(cl->loop) % (cl->backoff_ms / 2 + 1);
    loop_timer_in(cl->loop, &cl->retry, delay);
}

/* cmds (in order) and their encodings (bytes, in the same order) go ahead
 * of everything waiting. bytes is consumed. */
static void queue_first(struct redis_client *cl, struct list *cmds, struct buf *bytes)
{
    if (list_empty(cmds)) {
        buf_release(pool_of(cl), bytes);
        return;
    }
    if (buf_size(&cl->pending) &&
        buf_append(pool_of(cl), bytes, buf_head(&cl->pending), buf_size(&cl->pending))) {
        /* Cannot happen below BUF_MAX; fail rather than send misaligned bytes. */
        buf_release(pool_of(cl), bytes);
        while (!list_empty(cmds)) {
            struct redis_cmd *q = first(cmds);
            list_remove(&q->link);
            finish(q, NULL, "out of memory");
        }
        return;
    }
    buf_release(pool_of(cl), &cl->pending);
    cl->pending = *bytes;
    memset(bytes, 0, sizeof(*bytes));
    struct list *at = &cl->waiting;
    while (!list_empty(cmds)) {
        struct redis_cmd *q = first(cmds);
        list_remove(&q->link);
        q->state = Q_WAITING;
        list_insert(at, &q->link);
        at = &q->link;
    }
}

/* The client has just learnt Redis is down: fail_fast commands stop
 * waiting for a connection (their callers answer "unavailable" now). */
static void fail_waiting_fast(struct redis_client *cl)
{
    struct list gone;
    list_init(&gone);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &cl->waiting)
    {
        struct redis_cmd *q = list_entry(pos, struct redis_cmd, link);
        if (!q->fail_fast || q->internal)
            continue;
        unqueue(cl, q);
        list_append(&gone, &q->link);
    }
    while (!list_empty(&gone)) {
        struct redis_cmd *q = first(&gone);
        list_remove(&q->link);
        finish(q, NULL, "Redis unavailable");
    }
}

static void drop_connection(struct redis_client *cl, const char *why)
{
    bool was_up = cl->state == C_UP, was_ready = cl->ready;
    cl->ready = false;
    if (!cl->closing || was_ready)
        metrics_count(cl->loop->metrics,
                      was_ready ? MC_REDIS_DISCONNECTS : MC_REDIS_CONNECT_FAILURES);
    if (was_ready)
        metrics_gauge_add(cl->loop->metrics, MG_REDIS_UP, -1);
    struct redis_sock *s = cl->sock;
    cl->sock = NULL;
    cl->state = C_DOWN;
    if (s) {
        s->cl = NULL;
        conn_close(&s->c, 0);
    }
    /* In flight: taken off the client first, since the callbacks of those
     * that fail may submit (or close) again. */
    struct list inflight, again;
    list_init(&inflight);
    list_init(&again);
    while (!list_empty(&cl->sent)) {
        struct list *n = cl->sent.next;
        list_remove(n);
        list_append(&inflight, n);
    }
    struct buf replay = cl->replay;
    memset(&cl->replay, 0, sizeof(cl->replay));
    /* The safe ones go back ahead of newer work, in their original order
     * (replay holds exactly their encodings); the rest fail. */
    while (!list_empty(&inflight)) {
        struct redis_cmd *q = first(&inflight);
        list_remove(&q->link);
        if (q->internal)
            forget_internal(q); /* a fresh connection sends its own */
        else if (q->retry_safe)
            list_append(&again, &q->link);
        else
            finish(q, NULL, "Redis connection lost");
    }
    if (cl->closing) {
        buf_release(pool_of(cl), &replay);
        while (!list_empty(&again)) {
            struct redis_cmd *q = first(&again);
            list_remove(&q->link);
            finish(q, NULL, "Redis connection lost");
        }
    } else {
        queue_first(cl, &again, &replay);
    }
    if (was_up && cl->on_state)
        cl->on_state(cl, false);
    if (cl->closing)
        return;
    if (!was_ready && !cl->down) { /* a refused TLS handshake or AUTH counts too */
        cl->down = true;
        fail_waiting_fast(cl);
    }
    LOG(was_up ? LOG_WARN : LOG_INFO,
        was_up ? "redis connection lost, reconnecting" : "redis connection failed",
        L_STR("client", cl->name), L_STR("error", why), L_STR("host", cl->url.host),
        L_INT("port", cl->url.port));
    schedule_retry(cl);
}

static void connected(struct redis_client *cl, bool handshake)
{
    cl->backoff_ms = 0;
    cl->down = false;
    cl->ready = true;
    metrics_count(cl->loop->metrics, MC_REDIS_CONNECTS);
    metrics_gauge_add(cl->loop->metrics, MG_REDIS_UP, 1);
    if (handshake)
        LOG(LOG_INFO, "redis connected", L_STR("client", cl->name), L_STR("host", cl->url.host),
            L_INT("port", cl->url.port), L_INT("db", cl->url.db));
    else
        LOG(LOG_INFO, "redis connected", L_STR("client", cl->name), L_STR("host", cl->url.host),
            L_INT("port", cl->url.port));
    if (cl->on_state)
        cl->on_state(cl, true);
}

/* AUTH and SELECT ride ahead of everything, as internal commands; data
 * marks the last one. */
static void on_handshake(struct redis_cmd *c, redisReply *r, const char *err)
{
    struct redis_client *cl = c->client;
    if (err) {
        LOG(LOG_ERROR, "redis: handshake refused", L_STR("client", cl->name), L_STR("error", err));
        if (cl->on_connect_error)
            cl->on_connect_error(cl, c == &cl->handshake[0] ? "AUTH" : "SELECT", err);
        drop_connection(cl, err);
        return;
    }
    if (c->data && cl->state == C_UP)
        connected(cl, true);
}

static void handshake_cmd(struct redis_client *cl, struct list *cmds, struct buf *bytes, int i,
                          int argc, const char **argv, bool last)
{
    struct redis_cmd *c = &cl->handshake[i];
    *c = (struct redis_cmd){
        .fn = on_handshake, .data = last ? cl : NULL, .client = cl, .internal = true};
    c->timer.fn = on_cmd_timeout;
    encode(cl, bytes, c, argc, argv);
    loop_timer_in(cl->loop, &c->timer, CONNECT_TIMEOUT_MS);
    list_append(cmds, &c->link);
}

static void on_connected(struct tcp_connect *tc, int fd)
{
    struct redis_client *cl = tc->data;
    cl->connecting = false;
    if (cl->closing) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fd < 0) {
        if (cl->on_connect_error)
            cl->on_connect_error(cl, NULL, strerror(-fd));
        drop_connection(cl, strerror(-fd));
        return;
    }
    struct redis_sock *s = xcalloc(1, sizeof(*s));
    s->cl = cl;
    s->reader = redis_reader_new();
    conn_init(&s->c, cl->loop, fd, &sock_handler);
    if (cl->url.tls) {
        /* Commands written before the handshake ends wait in the engine. */
        int e = conn_tls_client(&s->c, cl->loop->srv ? cl->loop->srv->tls : NULL, &cl->tls);
        if (e < 0) {
            LOG(LOG_ERROR, "redis: no TLS trust anchors loaded (--tls-ca-file)",
                L_STR("client", cl->name));
            s->cl = NULL;
            conn_close(&s->c, e);
            drop_connection(cl, "TLS set-up failed");
            return;
        }
    }
    cl->sock = s;
    cl->state = C_UP;
    conn_start(&s->c);
    /* SELECT does not matter to pub/sub (channels are not per database);
     * in that mode AUTH's "+OK" reaches on_push, which ignores non-arrays. */
    bool auth = *cl->url.pass, sel = cl->url.db != 0 && cl->mode == REDIS_COMMANDS;
    struct list cmds;
    list_init(&cmds);
    struct buf bytes = {0};
    if (auth) {
        const char *argv3[] = {"AUTH", cl->url.user, cl->url.pass};
        const char *argv2[] = {"AUTH", cl->url.pass};
        if (*cl->url.user)
            handshake_cmd(cl, &cmds, &bytes, 0, 3, argv3, !sel);
        else
            handshake_cmd(cl, &cmds, &bytes, 0, 2, argv2, !sel);
    }
    if (sel) {
        char db[16];
        snprintf(db, sizeof(db), "%d", cl->url.db);
        handshake_cmd(cl, &cmds, &bytes, 1, 2, (const char *[]){"SELECT", db}, true);
    }
    if (auth || sel)
        queue_first(cl, &cmds, &bytes);
    else if (!cl->url.tls)
        connected(cl, false);
    send_waiting(cl);
}

static void connect_now(struct redis_client *cl)
{
    if (cl->closing || cl->connecting || cl->sock)
        return;
    cl->connecting = true;
    cl->state = C_CONNECTING;
    cl->connect.data = cl;
    tcp_connect_start(&cl->connect, cl->loop, (struct sockaddr *)&cl->addr, cl->addrlen,
                      CONNECT_TIMEOUT_MS, on_connected);
}

static void on_retry(struct loop *l, struct timer *t)
{
    connect_now(container_of(t, struct redis_client, retry));
}

/* --- public ------------------------------------------------------------- */

int redis_client_init(struct redis_client *cl, struct loop *l, const struct redis_url *url,
                      enum redis_mode mode, const char *name)
{
    void (*push)(struct redis_client *, redisReply *) = cl->on_push;
    void (*st)(struct redis_client *, bool) = cl->on_state;
    void (*refused)(struct redis_client *, const char *, const char *) = cl->on_connect_error;
    void *data = cl->data;
    memset(cl, 0, sizeof(*cl));
    cl->on_push = push;
    cl->on_state = st;
    cl->on_connect_error = refused;
    cl->data = data;
    cl->loop = l;
    cl->url = *url;
    cl->mode = mode;
    cl->name = name;
    cl->default_timeout_ms = DEFAULT_TIMEOUT_MS;
    cl->retry.fn = on_retry;
    if (url->tls) {
        snprintf(cl->tls.name, sizeof(cl->tls.name), "%s", url->host);
        cl->tls.port = url->port;
    }
    list_init(&cl->waiting);
    list_init(&cl->sent);
    int ret = tcp_resolve(url->host, url->port, &cl->addr, &cl->addrlen);
    if (ret < 0) {
        LOG(LOG_ERROR, "redis: cannot resolve host", L_STR("host", url->host));
        return ret;
    }
    connect_now(cl);
    return 0;
}

bool redis_client_up(const struct redis_client *cl)
{
    return cl->ready;
}

static void fail_now(struct redis_cmd *c, const char *err)
{
    c->state = Q_DONE;
    c->fn(c, NULL, err);
}

char *redis_submit_begin(struct redis_client *cl, struct redis_cmd *c, size_t n)
{
    c->client = cl;
    c->timer.fn = on_cmd_timeout;
    send_waiting(cl); /* what came first goes first (its callbacks may close cl) */
    if (cl->closing) {
        fail_now(c, "redis client is closing");
        return NULL;
    }
    char *room = NULL;
    if (n <= REDIS_COMMAND_MAX)
        room = sendable(cl) ? conn_write_reserve(&cl->sock->c, n)
                            : buf_reserve(pool_of(cl), &cl->pending, n);
    if (!room) {
        fail_now(c, "command too large");
        return NULL;
    }
    c->wire_len = (uint32_t)n;
    return room;
}

void redis_submit_end(struct redis_client *cl, struct redis_cmd *c, char *room)
{
    c->state = Q_WAITING;
    loop_timer_in(cl->loop, &c->timer, c->timeout_ms ? c->timeout_ms : cl->default_timeout_ms);
    if (!sendable(cl)) {
        buf_commit(&cl->pending, c->wire_len);
        list_append(&cl->waiting, &c->link);
        return;
    }
    conn_write_commit(&cl->sock->c, c->wire_len);
    struct list done;
    list_init(&done);
    mark_sent(cl, c, room, &done);
    conn_flush(&cl->sock->c);
    finish_written(&done);
}

void redis_submit(struct redis_client *cl, struct redis_cmd *c, int argc, const char **argv,
                  const size_t *argvlen)
{
    char *room = redis_submit_begin(cl, c, resp_command_size(argc, argv, argvlen));
    if (!room)
        return;
    resp_command_write(room, argc, argv, argvlen);
    redis_submit_end(cl, c, room);
}

void redis_submitv(struct redis_client *cl, struct redis_cmd *c, int argc, const char **argv)
{
    redis_submit(cl, c, argc, argv, NULL);
}

void redis_client_close(struct redis_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    loop_timer_cancel(cl->loop, &cl->retry);
    buf_release(pool_of(cl), &cl->pending);
    while (!list_empty(&cl->waiting)) {
        struct redis_cmd *q = first(&cl->waiting);
        list_remove(&q->link);
        if (q->internal)
            forget_internal(q);
        else
            finish(q, NULL, "redis client is closing");
    }
    drop_connection(cl, "closing");
}

void redis_client_free(struct redis_client *cl)
{
    if (!cl->loop)
        return; /* never initialised */
    struct redis_sock *s = cl->sock;
    cl->sock = NULL;
    if (s) {
        redis_reader_free(s->reader);
        conn_abandon(&s->c);
        free(s);
    }
    buf_release(pool_of(cl), &cl->pending);
    buf_release(pool_of(cl), &cl->replay);
    list_init(&cl->waiting);
    list_init(&cl->sent);
}
