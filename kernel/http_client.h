/*
 * http_client.h - an HTTP/1.1 client on the ring: keep-alive connections
 * pooled per origin (scheme, host, port), a per-origin concurrency limit,
 * connect and total timeouts, a response size limit, TLS through
 * kernel/tls.h and names through kernel/dns.h. Redirects are not followed:
 * a 3xx is an answer like any other.
 *
 * One client per loop. A call is a struct http_call embedded in the
 * caller's own struct, so a request allocates nothing per call; what the
 * call points at (URL, headers, body) must stay valid until its done
 * callback ran. done runs exactly once, never before http_call_start()
 * returns.
 *
 * One request at a time per connection (no pipelining): a connection whose
 * answer ended cleanly goes back to its origin's idle list for the next
 * call, and is closed after HTTP_CLIENT_IDLE_MS unused. A request that
 * finds its reused connection closed by the server before any byte of the
 * answer is sent once more on a new connection (the server cannot have
 * processed it: it closed an idle connection).
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_HTTP_CLIENT_H
#define TRIREME_KERNEL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/dns.h"
#include "kernel/list.h"
#include "kernel/loop.h"
#include "kernel/timer.h"
#include "proto/http1.h"

struct tls_store;

/* Defaults of the named limits (struct http_client_limits). */
#define HTTP_CLIENT_CONNECT_TIMEOUT_MS 5000u           /* TCP connect, per address tried */
#define HTTP_CLIENT_TIMEOUT_MS         30000u          /* a call from start to its whole answer */
#define HTTP_CLIENT_MAX_RESPONSE       (1024u * 1024u) /* head plus decoded body */
#define HTTP_CLIENT_MAX_PER_ORIGIN     64u             /* connections open to one origin at once */
#define HTTP_CLIENT_IDLE_MS            30000u /* an unused keep-alive connection is closed after */
/* Fixed by the client: */
#define HTTP_CLIENT_MAX_HEAD    (16u * 1024u) /* response status line and headers */
#define HTTP_CLIENT_MAX_HEADERS 64u           /* response header fields */
#define HTTP_CLIENT_MAX_ORIGINS 1024u         /* distinct origins one client talks to */

struct http_client_limits {
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;
    uint64_t max_response;
    unsigned max_per_origin;
    uint64_t idle_ms;
};

struct http_reply {
    int status;
    const char *reason;
    uint32_t reason_len;
    const struct http1_header *headers;
    uint32_t num_headers;
    const char *body; /* decoded (chunked framing removed) */
    size_t body_len;
};

struct http_call;
/* err: 0 with reply, or -EINVAL (bad URL), -EHOSTUNREACH (no such host),
 * -ECONNREFUSED and other connect errors, -ETIMEDOUT, -EPROTO (TLS failed
 * or the answer is not HTTP/1.1), -EMSGSIZE (answer over max_response),
 * -ECONNRESET (closed mid-answer), -EMFILE (origin table full), -ECANCELED
 * (client closed). reply and everything it points at are valid only
 * during the call. */
typedef void (*http_call_fn)(struct http_call *call, int err, const struct http_reply *reply);

struct http_call {
    /* set by the caller */
    const char *method;  /* "POST" */
    const char *url;     /* http:// or https:// */
    const char *headers; /* extra "Name: value\r\n" lines, or NULL */
    size_t headers_len;
    const void *body;
    size_t body_len;
    uint64_t timeout_ms; /* 0: the client's */
    http_call_fn done;
    void *data;
    /* internal */
    struct http_client *cl;
    struct http_origin *origin;
    struct http_conn_c *conn;
    struct list link; /* on its origin's waiting list */
    struct timer timer;
    const char *target;
    uint32_t target_len;
    int refused; /* -errno reported from the timer: done never runs inside start */
    bool retried;
    bool head;
};

struct http_client {
    struct loop *loop;
    const struct tls_store *tls; /* anchors for https://; NULL: https calls fail */
    struct http_client_limits lim;
    struct dns dns;
    struct list origins;
    unsigned norigins;
    unsigned nconns; /* open or opening; the struct may be freed at 0 after close */
    bool closing;
};

/* lim NULL: the defaults above. */
int http_client_init(struct http_client *cl, struct loop *l, const struct tls_store *tls,
                     const struct http_client_limits *lim);
/* Start a call (see struct http_call); done runs later, exactly once. */
void http_call_start(struct http_client *cl, struct http_call *call);
/* Fail waiting calls and calls in flight with -ECANCELED, close every
 * connection. Not from a done callback. */
void http_client_close(struct http_client *cl);

#endif
