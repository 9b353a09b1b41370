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

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 3000
#define DEFAULT_TIMEOUT_MS 5000

enum { C_DOWN, C_CONNECTING, C_UP };
enum { Q_WAITING = 1, Q_SENT, Q_DONE };

/* One TCP connection; a new one per (re)connection, freed when closed. */
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
        *err = "rediss:// (TLS) is not supported yet; use redis:// on a private network";
        return -1;
    } else {
        *err = "must start with redis://";
        return -1;
    }
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            size_t ul = (size_t)(colon - p), pl = (size_t)(at - colon - 1);
            if (ul >= sizeof(out->user) || pl >= sizeof(out->pass)) {
                *err = "user or password is too long";
                return -1;
            }
            memcpy(out->user, p, ul);
            memcpy(out->pass, colon + 1, pl);
        } else {
            size_t pl = (size_t)(at - p);
            if (pl >= sizeof(out->pass)) {
                *err = "password is too long";
                return -1;
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
            return -1;
        }
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(hend - p));
        size_t hl = (size_t)((colon ? colon : hend) - p);
        if (hl >= sizeof(out->host)) {
            *err = "host is too long";
            return -1;
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
            return -1;
        }
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 100000) {
            *err = "database must be a number, as in redis://host:6379/0";
            return -1;
        }
        out->db = (int)db;
    }
    return 0;
}

/* --- completing commands ------------------------------------------------ */

static void finish(struct redis_cmd *c, redisReply *r, const char *err)
{
    loop_timer_cancel(c->client->loop, &c->timer);
    free(c->wire);
    c->wire = NULL;
    c->state = Q_DONE;
    if (!err && r && r->type == REDIS_REPLY_ERROR)
        err = r->str;
    c->fn(c, r, err);
}

static void drop_connection(struct redis_client *cl, const char *why);

static void on_cmd_timeout(struct loop *l, struct timer *t)
{
    struct redis_cmd *c = (struct redis_cmd *)((char *)t - offsetof(struct redis_cmd, timer));
    struct redis_client *cl = c->client;
    if (c->state == Q_WAITING) {
        struct redis_cmd **pp = &cl->wait_head, *prev = NULL;
        while (*pp && *pp != c)
            prev = *pp, pp = &(*pp)->next;
        if (*pp) {
            *pp = c->next;
            if (cl->wait_tail == c)
                cl->wait_tail = prev;
        }
        finish(c, NULL, "timeout (Redis unreachable)");
        return;
    }
    /* Sent and unanswered past its deadline: the server is stuck or the
     * path is dead. Drop the connection; this command fails with the rest. */
    drop_connection(cl, "command timed out");
}

/* --- the socket --------------------------------------------------------- */

static void send_waiting(struct redis_client *cl)
{
    if (cl->state != C_UP || !cl->sock || conn_closing(&cl->sock->c))
        return;
    struct conn *c = &cl->sock->c;
    bool any = false;
    while (cl->wait_head) {
        struct redis_cmd *q = cl->wait_head;
        cl->wait_head = q->next;
        if (!cl->wait_head)
            cl->wait_tail = NULL;
        q->next = NULL;
        if (conn_write(c, q->wire, (size_t)q->wire_len)) {
            finish(q, NULL, "out of memory");
            continue;
        }
        any = true;
        if (cl->mode == REDIS_PUBSUB) {
            /* Replies arrive as pushes; the command is done once written. */
            finish(q, NULL, NULL);
            continue;
        }
        q->state = Q_SENT;
        if (cl->sent_tail)
            cl->sent_tail->next = q;
        else
            cl->sent_head = q;
        cl->sent_tail = q;
    }
    if (any)
        conn_flush(c);
}

static void on_reply(struct redis_client *cl, redisReply *r)
{
    if (cl->mode == REDIS_PUBSUB) {
        if (cl->on_push)
            cl->on_push(cl, r);
        return;
    }
    struct redis_cmd *q = cl->sent_head;
    if (!q) {
        LOG(LOG_WARN, "redis: reply with no command waiting for it", L_STR("client", cl->name));
        return;
    }
    cl->sent_head = q->next;
    if (!cl->sent_head)
        cl->sent_tail = NULL;
    q->next = NULL;
    finish(q, r, NULL);
}

static void sock_read(struct conn *c)
{
    struct redis_sock *s = (struct redis_sock *)c;
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
                L_STR("error", s->reader->errstr));
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
    struct redis_sock *s = (struct redis_sock *)c;
    struct redis_client *cl = s->cl;
    redisReaderFree(s->reader);
    if (cl && cl->sock == s)
        drop_connection(cl, err ? strerror(-err) : "closed by server");
    free(s);
}

static void sock_eof(struct conn *c)
{
    struct redis_sock *s = (struct redis_sock *)c;
    if (s->cl && s->cl->sock == s)
        drop_connection(s->cl, "closed by server");
    else
        conn_close(c, 0);
}

static const struct conn_handler sock_handler = {
    .on_read = sock_read,
    .on_eof = sock_eof,
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

static void drop_connection(struct redis_client *cl, const char *why)
{
    bool was_up = cl->state == C_UP;
    struct redis_sock *s = cl->sock;
    cl->sock = NULL;
    cl->state = C_DOWN;
    if (s) {
        s->cl = NULL;
        conn_close(&s->c, 0);
    }
    /* In flight: re-send the safe ones first, fail the rest. */
    struct redis_cmd *q = cl->sent_head, *first = NULL, *last = NULL;
    cl->sent_head = cl->sent_tail = NULL;
    while (q) {
        struct redis_cmd *next = q->next;
        q->next = NULL;
        if (q->internal) { /* a fresh connection sends its own */
            loop_timer_cancel(cl->loop, &q->timer);
            free(q->wire);
            free(q);
        } else if (q->retry_safe && !cl->closing) {
            q->state = Q_WAITING;
            if (last)
                last->next = q;
            else
                first = q;
            last = q;
        } else {
            finish(q, NULL, "Redis connection lost");
        }
        q = next;
    }
    if (first) {
        last->next = cl->wait_head;
        if (!cl->wait_head)
            cl->wait_tail = last;
        cl->wait_head = first;
    }
    if (was_up && cl->on_state)
        cl->on_state(cl, false);
    if (cl->closing)
        return;
    LOG(was_up ? LOG_WARN : LOG_INFO,
        was_up ? "redis connection lost, reconnecting" : "redis connection failed",
        L_STR("client", cl->name), L_STR("error", why), L_STR("host", cl->url.host),
        L_INT("port", cl->url.port));
    schedule_retry(cl);
}

/* AUTH and SELECT ride ahead of everything, as internal commands. */
static void on_handshake(struct redis_cmd *c, redisReply *r, const char *err)
{
    struct redis_client *cl = c->client;
    bool last = c->data != NULL;
    free(c);
    if (err) {
        LOG(LOG_ERROR, "redis: handshake refused", L_STR("client", cl->name), L_STR("error", err));
        drop_connection(cl, err);
        return;
    }
    if (last && cl->state == C_UP) {
        cl->backoff_ms = 0;
        LOG(LOG_INFO, "redis connected", L_STR("client", cl->name), L_STR("host", cl->url.host),
            L_INT("port", cl->url.port), L_INT("db", cl->url.db));
        if (cl->on_state)
            cl->on_state(cl, true);
    }
}

static void push_front_internal(struct redis_client *cl, int argc, const char **argv, bool last)
{
    struct redis_cmd *c = calloc(1, sizeof(*c));
    c->client = cl;
    c->fn = on_handshake;
    c->internal = true;
    c->data = last ? c : NULL;
    c->wire_len = redisFormatCommandArgv(&c->wire, argc, argv, NULL);
    c->state = Q_WAITING;
    c->timer.fn = on_cmd_timeout;
    loop_timer_in(cl->loop, &c->timer, CONNECT_TIMEOUT_MS);
    c->next = cl->wait_head;
    cl->wait_head = c;
    if (!cl->wait_tail)
        cl->wait_tail = c;
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
        drop_connection(cl, strerror(-fd));
        return;
    }
    struct redis_sock *s = calloc(1, sizeof(*s));
    s->cl = cl;
    s->reader = redisReaderCreate();
    s->reader->maxbuf = REDIS_READER_MAXBUF;
    conn_init(&s->c, cl->loop, fd, &sock_handler);
    cl->sock = s;
    cl->state = C_UP;
    conn_start(&s->c);
    /* SELECT does not matter to pub/sub (channels are not per database);
     * in that mode AUTH's "+OK" reaches on_push, which ignores non-arrays. */
    bool auth = *cl->url.pass, sel = cl->url.db != 0 && cl->mode == REDIS_COMMANDS;
    char db[16];
    snprintf(db, sizeof(db), "%d", cl->url.db);
    if (sel) {
        const char *argv[] = {"SELECT", db};
        push_front_internal(cl, 2, argv, true);
    }
    if (auth) {
        const char *argv3[] = {"AUTH", cl->url.user, cl->url.pass};
        const char *argv2[] = {"AUTH", cl->url.pass};
        if (*cl->url.user)
            push_front_internal(cl, 3, argv3, !sel);
        else
            push_front_internal(cl, 2, argv2, !sel);
    }
    if (!auth && !sel) {
        cl->backoff_ms = 0;
        LOG(LOG_INFO, "redis connected", L_STR("client", cl->name), L_STR("host", cl->url.host),
            L_INT("port", cl->url.port));
        if (cl->on_state)
            cl->on_state(cl, true);
    }
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
    struct redis_client *cl = (struct redis_client *)((char *)t - offsetof(struct redis_client, retry));
    connect_now(cl);
}

/* --- public ------------------------------------------------------------- */

int redis_client_init(struct redis_client *cl, struct loop *l, const struct redis_url *url,
                      enum redis_mode mode, const char *name)
{
    void (*push)(struct redis_client *, redisReply *) = cl->on_push;
    void (*st)(struct redis_client *, bool) = cl->on_state;
    void *data = cl->data;
    memset(cl, 0, sizeof(*cl));
    cl->on_push = push;
    cl->on_state = st;
    cl->data = data;
    cl->loop = l;
    cl->url = *url;
    cl->mode = mode;
    cl->name = name;
    cl->default_timeout_ms = DEFAULT_TIMEOUT_MS;
    cl->retry.fn = on_retry;
    if (tcp_resolve(url->host, url->port, &cl->addr, &cl->addrlen)) {
        LOG(LOG_ERROR, "redis: cannot resolve host", L_STR("host", url->host));
        return -1;
    }
    connect_now(cl);
    return 0;
}

bool redis_client_up(const struct redis_client *cl)
{
    return cl->state == C_UP;
}

void redis_submit(struct redis_client *cl, struct redis_cmd *c, int argc, const char **argv,
                  const size_t *argvlen)
{
    c->client = cl;
    c->next = NULL;
    c->timer.fn = on_cmd_timeout;
    if (cl->closing) {
        c->state = Q_DONE;
        c->fn(c, NULL, "redis client is closing");
        return;
    }
    c->wire_len = redisFormatCommandArgv(&c->wire, argc, argv, argvlen);
    if (c->wire_len < 0) {
        c->wire = NULL;
        c->state = Q_DONE;
        c->fn(c, NULL, "out of memory");
        return;
    }
    c->state = Q_WAITING;
    loop_timer_in(cl->loop, &c->timer, c->timeout_ms ? c->timeout_ms : cl->default_timeout_ms);
    if (cl->wait_tail)
        cl->wait_tail->next = c;
    else
        cl->wait_head = c;
    cl->wait_tail = c;
    send_waiting(cl);
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
    while (cl->wait_head) {
        struct redis_cmd *q = cl->wait_head;
        cl->wait_head = q->next;
        q->next = NULL;
        if (q->internal) {
            loop_timer_cancel(cl->loop, &q->timer);
            free(q->wire);
            free(q);
            continue;
        }
        finish(q, NULL, "redis client is closing");
    }
    cl->wait_tail = NULL;
    drop_connection(cl, "closing");
}

void redis_client_free(struct redis_client *cl)
{
    struct redis_sock *s = cl->sock;
    cl->sock = NULL;
    if (s) {
        redisReaderFree(s->reader);
        conn_abandon(&s->c);
        free(s);
    }
    while (cl->sent_head) {
        struct redis_cmd *q = cl->sent_head;
        cl->sent_head = q->next;
        free(q->wire);
        q->wire = NULL;
        if (q->internal)
            free(q);
    }
    while (cl->wait_head) {
        struct redis_cmd *q = cl->wait_head;
        cl->wait_head = q->next;
        free(q->wire);
        q->wire = NULL;
        if (q->internal)
            free(q);
    }
}
