/*
 * http_client.c - the HTTP/1.1 client (see http_client.h for the contract).
 *
 * Ownership: an origin lives as long as its client (origins are few and
 * declared by the operator). A connection (struct http_conn_c) is made for
 * the origin's waiting calls and belongs to the origin until its conn's
 * on_close; it carries at most one call at a time. A call is on exactly one
 * of: its origin's waiting list, a connection, or nowhere (finished). Its
 * timer bounds the whole call; when it fires, the call is taken off
 * whichever it is on, and a connection it was using is closed (the answer
 * could still arrive and would desynchronise the next call).
 */
#include "kernel/http_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/conn.h"
#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/tcp_connect.h"
#include "kernel/tls.h"
#include "kernel/xalloc.h"
#include "proto/http1_response.h"
#include "proto/http_url.h"

struct http_origin {
    struct list link;
    struct http_client *cl;
    char host[HTTP_URL_MAX_HOST + 1];
    int port;
    bool tls;
    struct tls_origin tls_origin; /* SNI name and the session to resume */
    struct list waiting;          /* calls, in order */
    struct list idle;             /* connections ready for a call */
    struct list all;              /* every connection with a live conn */
    unsigned nwaiting;
    unsigned nconns;
    unsigned nopening; /* connections not yet able to take a call */
};

struct http_conn_c {
    struct conn c; /* first */
    struct http_origin *o;
    struct http_call *call;
    struct list link; /* on o->idle while idle */
    struct list all;  /* on o->all once its conn is live */
    struct dns_lookup lk;
    struct tcp_connect tc;
    struct dns_addrs addrs;
    int addr_i;
    bool reused; /* it carried a call before this one */
    bool have_head;
    bool conn_up; /* conn_init ran: c is live */
    struct http1_resp_parser p;
    struct http1_resp resp;
    struct http1_chunked ch;
    uint64_t body_in, body_out; /* chunked: bytes read / decoded after the head */
    struct http1_header hdrs[HTTP_CLIENT_MAX_HEADERS];
};

static void dispatch(struct http_origin *o);

/* --- calls --------------------------------------------------------------- */

static void call_finish(struct http_call *call, int err, const struct http_reply *r)
{
    loop_timer_cancel(call->cl->loop, &call->timer);
    call->conn = NULL;
    call->origin = NULL;
    call->done(call, err, r);
}

static void call_unwait(struct http_call *call)
{
    list_remove(&call->link);
    list_init(&call->link);
    call->origin->nwaiting--;
}

static void on_call_timer(struct loop *l, struct timer *t)
{
    struct http_call *call = container_of(t, struct http_call, timer);
    if (call->conn) {
        struct http_conn_c *hc = call->conn;
        hc->call = NULL;
        conn_close(&hc->c, -ETIMEDOUT);
    } else if (call->origin) {
        call_unwait(call);
    } else {
        call->done(call, call->refused, NULL); /* refused at start */
        return;
    }
    call_finish(call, -ETIMEDOUT, NULL);
}

static void refuse_later(struct http_call *call, int err)
{
    call->origin = NULL;
    call->conn = NULL;
    call->refused = err;
    loop_timer_in(call->cl->loop, &call->timer, 0);
}

/* --- connections ---------------------------------------------------------- */

static bool sends_length(const struct http_call *call)
{
    return call->body_len || !strcmp(call->method, "POST") || !strcmp(call->method, "PUT") ||
           !strcmp(call->method, "PATCH");
}

static void write_request(struct http_conn_c *hc, struct http_call *call)
{
    struct http_origin *o = hc->o;
    bool v6 = strchr(o->host, ':') != NULL;
    char head[HTTP_URL_MAX_HOST + 128];
    int n;
    if (o->port == (o->tls ? 443 : 80))
        n = snprintf(head, sizeof(head), " HTTP/1.1\r\nHost: %s%s%s\r\n", v6 ? "[" : "", o->host,
                     v6 ? "]" : "");
    else
        n = snprintf(head, sizeof(head), " HTTP/1.1\r\nHost: %s%s%s:%d\r\n", v6 ? "[" : "", o->host,
                     v6 ? "]" : "", o->port);
    char len[48];
    int ln = 0;
    if (sends_length(call))
        ln = snprintf(len, sizeof(len), "Content-Length: %zu\r\n", call->body_len);
    struct conn *c = &hc->c;
    conn_write(c, call->method, strlen(call->method));
    conn_write(c, " ", 1);
    conn_write(c, call->target, call->target_len);
    conn_write(c, head, (size_t)n);
    conn_write(c, len, (size_t)ln);
    if (call->headers_len)
        conn_write(c, call->headers, call->headers_len);
    conn_write(c, "\r\n", 2);
    if (call->body_len)
        conn_write(c, call->body, call->body_len);
    conn_flush(c);
}

static void assign(struct http_conn_c *hc, struct http_call *call)
{
    hc->call = call;
    call->conn = hc;
    hc->have_head = false;
    hc->body_in = hc->body_out = 0;
    http1_resp_parser_init(&hc->p);
    conn_deadline(&hc->c, 0);
    write_request(hc, call);
}

/* A connection is free: give it the next waiting call, or park it. */
static void conn_ready(struct http_conn_c *hc)
{
    struct http_origin *o = hc->o;
    if (!list_empty(&o->waiting) && !o->cl->closing) {
        struct http_call *call = list_entry(o->waiting.next, struct http_call, link);
        call_unwait(call);
        assign(hc, call);
        return;
    }
    list_append(&o->idle, &hc->link);
    conn_deadline(&hc->c, o->cl->lim.idle_ms);
}

static void conn_gone(struct http_conn_c *hc)
{
    struct http_origin *o = hc->o;
    struct http_client *cl = o->cl;
    if (hc->conn_up)
        list_remove(&hc->all);
    o->nconns--;
    cl->nconns--;
    free(hc);
    if (!cl->closing) {
        dispatch(o);
    } else if (!o->nconns) {
        list_remove(&o->link);
        free(o);
    }
}

/* The first waiting call fails with err (the connection opened for it
 * cannot carry it). */
static void fail_first_waiting(struct http_origin *o, int err)
{
    if (list_empty(&o->waiting) || o->cl->closing)
        return;
    struct http_call *call = list_entry(o->waiting.next, struct http_call, link);
    call_unwait(call);
    call_finish(call, err, NULL);
}

/* A connection that never came up: the call it was opened for (the first
 * waiting one) fails with err, so a dead origin fails calls one by one
 * instead of holding them all until their timeouts. */
static void open_failed(struct http_conn_c *hc, int err)
{
    struct http_origin *o = hc->o;
    o->nopening--;
    LOG(LOG_DEBUG, "http client: cannot connect", L_STR("host", o->host), L_INT("port", o->port),
        L_STR("error", strerror(-err)));
    fail_first_waiting(o, err);
    conn_gone(hc);
}

static void deliver(struct http_conn_c *hc, const char *body, size_t body_len)
{
    struct http_call *call = hc->call;
    struct http1_resp *r = &hc->resp;
    hc->call = NULL;
    hc->reused = true;
    struct http_reply reply = {
        .status = r->status,
        .reason = r->reason,
        .reason_len = r->reason_len,
        .headers = r->headers,
        .num_headers = r->num_headers,
        .body = body,
        .body_len = body_len,
    };
    bool keep = r->keep_alive;
    uint64_t used = r->head_len + (r->body == HTTP1_RESP_CHUNKED ? hc->body_in : body_len);
    if (buf_size(&hc->c.in) != used)
        keep = false; /* bytes nobody asked for: the stream is out of step */
    /* A call started from done finds this connection about to be free
     * (counted as opening), rather than opening another. */
    if (keep)
        hc->o->nopening++;
    call_finish(call, 0, &reply);
    buf_consume(hc->c.loop->pool, &hc->c.in, buf_size(&hc->c.in));
    if (keep)
        hc->o->nopening--;
    if (keep && !conn_closing(&hc->c) && !hc->o->cl->closing)
        conn_ready(hc);
    else
        conn_close(&hc->c, 0);
}

static void fail_call(struct http_conn_c *hc, int err)
{
    struct http_call *call = hc->call;
    hc->call = NULL;
    if (call)
        call_finish(call, err, NULL);
    conn_close(&hc->c, err);
}

static void on_read(struct conn *c)
{
    struct http_conn_c *hc = (struct http_conn_c *)c;
    struct http_call *call = hc->call;
    if (!call) {
        conn_close(c, -EPROTO); /* the server spoke unasked */
        return;
    }
    uint64_t max = hc->o->cl->lim.max_response;
    for (;;) {
        char *base = buf_head(&c->in);
        size_t have = buf_size(&c->in);
        struct http1_resp *r = &hc->resp;
        if (!hc->have_head) {
            r->headers = hc->hdrs;
            r->headers_cap = HTTP_CLIENT_MAX_HEADERS;
            int ret = http1_parse_response(&hc->p, base, have, HTTP_CLIENT_MAX_HEAD, call->head, r);
            if (ret == HTTP1_INCOMPLETE)
                return;
            if (ret != HTTP1_OK) {
                LOG(LOG_DEBUG, "http client: bad response", L_STR("host", hc->o->host),
                    L_STR("error", r->error));
                fail_call(hc, ret == HTTP1_E_HEADERS_LARGE ? -EMSGSIZE : -EPROTO);
                return;
            }
            if (r->status < 200 && r->status != 101) {
                /* an interim answer (100 Continue): the real one follows */
                buf_consume(c->loop->pool, &c->in, r->head_len);
                http1_resp_parser_init(&hc->p);
                continue;
            }
            if (r->status == 101) {
                fail_call(hc, -EPROTO); /* no upgrade was asked for */
                return;
            }
            hc->have_head = true;
            http1_chunked_init(&hc->ch);
            if (r->body == HTTP1_RESP_LENGTH && r->head_len + r->content_length > max) {
                fail_call(hc, -EMSGSIZE);
                return;
            }
        }
        switch (r->body) {
        case HTTP1_RESP_NONE:
            deliver(hc, NULL, 0);
            return;
        case HTTP1_RESP_LENGTH:
            if (have - r->head_len < r->content_length)
                return;
            deliver(hc, base + r->head_len, (size_t)r->content_length);
            return;
        case HTTP1_RESP_CLOSE:
            if (have > max)
                fail_call(hc, -EMSGSIZE);
            return; /* on_eof delivers */
        case HTTP1_RESP_CHUNKED: {
            char *body = base + r->head_len;
            size_t used = 0, made = 0;
            const char *err = NULL;
            int ret =
                http1_chunked_decode(&hc->ch, body + hc->body_in, have - r->head_len - hc->body_in,
                                     body + hc->body_out, &used, &made, max - r->head_len, &err);
            hc->body_in += used;
            hc->body_out += made;
            if (ret == HTTP1_INCOMPLETE)
                return;
            if (ret != HTTP1_OK) {
                fail_call(hc, ret == HTTP1_E_BODY_LARGE ? -EMSGSIZE : -EPROTO);
                return;
            }
            deliver(hc, body, (size_t)hc->body_out);
            return;
        }
        }
    }
}

static void on_eof(struct conn *c)
{
    struct http_conn_c *hc = (struct http_conn_c *)c;
    if (hc->call && hc->have_head && hc->resp.body == HTTP1_RESP_CLOSE) {
        hc->resp.keep_alive = false;
        deliver(hc, buf_head(&c->in) + hc->resp.head_len, buf_size(&c->in) - hc->resp.head_len);
        return;
    }
    conn_close(c, hc->call ? -ECONNRESET : 0);
}

static void on_timeout(struct conn *c)
{
    conn_close(c, 0); /* idle too long */
}

static void on_close(struct conn *c, int err)
{
    struct http_conn_c *hc = (struct http_conn_c *)c;
    struct http_origin *o = hc->o;
    if (!hc->call) {
        /* idle (or its call already answered or timed out) */
        if (hc->link.next && hc->link.next != &hc->link) {
            list_remove(&hc->link);
            list_init(&hc->link);
        }
    } else {
        struct http_call *call = hc->call;
        hc->call = NULL;
        call->conn = NULL;
        bool nothing_back = !hc->have_head && buf_size(&c->in) == 0;
        if (hc->reused && nothing_back && !call->retried && !o->cl->closing &&
            (err == 0 || err == -ECONNRESET || err == -EPIPE)) {
            /* The server closed a kept-alive connection as we reused it:
             * it never read the request. Once more, first in line. */
            call->retried = true;
            call->origin = o;
            list_insert(&o->waiting, &call->link);
            o->nwaiting++;
        } else {
            call_finish(call, err ? err : -ECONNRESET, NULL);
        }
    }
    conn_gone(hc);
}

static const struct conn_handler handler = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

static void try_connect(struct http_conn_c *hc);

static void on_connected(struct tcp_connect *tc, int fd)
{
    struct http_conn_c *hc = tc->data;
    struct http_origin *o = hc->o;
    if (fd < 0) {
        if (++hc->addr_i < hc->addrs.n && !o->cl->closing) {
            try_connect(hc); /* the next address (IPv6 then IPv4, or several A records) */
            return;
        }
        open_failed(hc, fd);
        return;
    }
    if (o->cl->closing) {
        close(fd);
        open_failed(hc, -ECANCELED);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_init(&hc->c, o->cl->loop, fd, &handler);
    hc->conn_up = true;
    list_append(&o->all, &hc->all);
    list_init(&hc->link);
    o->nopening--;
    if (o->tls) {
        int e = conn_tls_client(&hc->c, o->cl->tls, &o->tls_origin);
        if (e < 0) {
            fail_first_waiting(o, -EPROTO);
            conn_close(&hc->c, -EPROTO);
            return;
        }
    }
    conn_start(&hc->c);
    conn_ready(hc);
}

static void try_connect(struct http_conn_c *hc)
{
    struct sockaddr_storage *sa = &hc->addrs.addr[hc->addr_i];
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)hc->o->port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)hc->o->port);
    hc->tc.data = hc;
    tcp_connect_start(&hc->tc, hc->o->cl->loop, (struct sockaddr *)sa, hc->addrs.len[hc->addr_i],
                      hc->o->cl->lim.connect_timeout_ms, on_connected);
}

static void on_resolved(struct dns_lookup *lk, int err, const struct dns_addrs *addrs)
{
    struct http_conn_c *hc = container_of(lk, struct http_conn_c, lk);
    if (err) {
        LOG(LOG_DEBUG, "http client: cannot resolve", L_STR("host", hc->o->host),
            L_INT("error", err));
        open_failed(hc, err);
        return;
    }
    hc->addrs = *addrs;
    hc->addr_i = 0;
    try_connect(hc);
}

static void open_conn(struct http_origin *o)
{
    struct http_conn_c *hc = xcalloc(1, sizeof(*hc));
    hc->o = o;
    hc->lk.fn = on_resolved;
    list_init(&hc->link);
    o->nconns++;
    o->nopening++;
    o->cl->nconns++;
    dns_resolve(&o->cl->dns, o->host, &hc->lk);
}

static void dispatch(struct http_origin *o)
{
    while (!list_empty(&o->waiting) && !list_empty(&o->idle)) {
        struct http_conn_c *hc = list_entry(o->idle.next, struct http_conn_c, link);
        list_remove(&hc->link);
        list_init(&hc->link);
        conn_ready(hc);
    }
    while (o->nwaiting > o->nopening && o->nconns < o->cl->lim.max_per_origin)
        open_conn(o);
}

/* --- origins and the public face ----------------------------------------- */

static struct http_origin *origin_for(struct http_client *cl, const struct http_url *u)
{
    for (struct list *p = cl->origins.next; p != &cl->origins; p = p->next) {
        struct http_origin *o = list_entry(p, struct http_origin, link);
        if (o->port == u->port && o->tls == u->tls && strlen(o->host) == u->host_len &&
            !strncasecmp(o->host, u->host, u->host_len))
            return o;
    }
    if (cl->norigins == HTTP_CLIENT_MAX_ORIGINS)
        return NULL;
    struct http_origin *o = xcalloc(1, sizeof(*o));
    o->cl = cl;
    memcpy(o->host, u->host, u->host_len);
    o->port = u->port;
    o->tls = u->tls;
    memcpy(o->tls_origin.name, u->host, u->host_len);
    o->tls_origin.port = u->port;
    o->tls_origin.alpn = "http/1.1";
    list_init(&o->waiting);
    list_init(&o->idle);
    list_init(&o->all);
    list_append(&cl->origins, &o->link);
    cl->norigins++;
    return o;
}

int http_client_init(struct http_client *cl, struct loop *l, const struct tls_store *tls,
                     const struct http_client_limits *lim)
{
    memset(cl, 0, sizeof(*cl));
    cl->loop = l;
    cl->tls = tls;
    cl->lim = lim ? *lim
                  : (struct http_client_limits){
                        .connect_timeout_ms = HTTP_CLIENT_CONNECT_TIMEOUT_MS,
                        .timeout_ms = HTTP_CLIENT_TIMEOUT_MS,
                        .max_response = HTTP_CLIENT_MAX_RESPONSE,
                        .max_per_origin = HTTP_CLIENT_MAX_PER_ORIGIN,
                        .idle_ms = HTTP_CLIENT_IDLE_MS,
                    };
    list_init(&cl->origins);
    return dns_init(&cl->dns, l);
}

void http_call_start(struct http_client *cl, struct http_call *call)
{
    call->cl = cl;
    call->conn = NULL;
    call->origin = NULL;
    call->retried = false;
    call->timer = (struct timer){.fn = on_call_timer};
    list_init(&call->link);
    struct http_url u;
    const char *why;
    if (cl->closing) {
        refuse_later(call, -ECANCELED);
        return;
    }
    if (http_url_parse(call->url, strlen(call->url), &u, &why) < 0) {
        LOG(LOG_DEBUG, "http client: bad URL", L_STR("url", call->url), L_STR("error", why));
        refuse_later(call, -EINVAL);
        return;
    }
    struct http_origin *o = origin_for(cl, &u);
    if (!o) {
        refuse_later(call, -EMFILE);
        return;
    }
    if (u.tls && (!cl->tls || !cl->tls->nanchors)) {
        refuse_later(call, -EPROTO); /* no anchors to verify any server with */
        return;
    }
    call->target = u.target;
    call->target_len = u.target_len;
    call->head = !strcmp(call->method, "HEAD");
    call->origin = o;
    list_append(&o->waiting, &call->link);
    o->nwaiting++;
    loop_timer_in(cl->loop, &call->timer, call->timeout_ms ? call->timeout_ms : cl->lim.timeout_ms);
    dispatch(o);
}

void http_client_close(struct http_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    struct list *p = cl->origins.next;
    while (p != &cl->origins) {
        struct http_origin *o = list_entry(p, struct http_origin, link);
        p = p->next;
        while (!list_empty(&o->waiting)) {
            struct http_call *call = list_entry(o->waiting.next, struct http_call, link);
            call_unwait(call);
            call_finish(call, -ECANCELED, NULL);
        }
        while (!list_empty(&o->idle)) {
            struct http_conn_c *hc = list_entry(o->idle.next, struct http_conn_c, link);
            list_remove(&hc->link);
            list_init(&hc->link);
        }
        /* Live connections close (a call on one fails with -ECANCELED);
         * connections still resolving or connecting see `closing` when that
         * ends. The origin goes with its last connection (conn_gone). */
        for (struct list *q = o->all.next; q != &o->all; q = q->next) {
            struct http_conn_c *hc = list_entry(q, struct http_conn_c, all);
            struct http_call *call = hc->call;
            hc->call = NULL;
            if (call)
                call_finish(call, -ECANCELED, NULL);
            conn_close(&hc->c, -ECANCELED);
        }
        if (!o->nconns) {
            list_remove(&o->link);
            free(o);
        }
    }
    dns_close(&cl->dns);
}
