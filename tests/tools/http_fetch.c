/*
 * http_fetch.c - trireme-http-fetch, a test-only driver of kernel/http_client
 * (built by build.zig into zig-out/test-bin/, never shipped in trireme).
 *
 *   trireme-http-fetch [--ca=FILE] [--n=N] [--parallel=P] [--timeout=MS]
 *       [--connect-timeout=MS] [--max-response=BYTES] [--per-origin=K]
 *       [--method=M] [--body=TEXT] [--header='Name: value']... [--print-body]
 *       [--log-level=L] [--dns-server=IP:PORT] [--gap=MS] URL...
 *
 * Runs N calls per URL, at most P in flight, on one loop, and prints one
 * line per call, in completion order:
 *   call=<i> url=<url> status=<code> bytes=<body length> err=<errno name or 0>
 * (and body=<body> with --print-body), then `done ok=<n> failed=<n>`.
 * --gap waits MS after each answer before the next call starts (with
 * --parallel=1: spacing calls out, e.g. past a DNS TTL).
 * The end-to-end tests read these lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/http_client.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/tls.h"
#include "kernel/xalloc.h"

struct job {
    struct http_call call;
    int idx;
};

struct run {
    struct loop l;
    struct http_client cl;
    struct job *jobs;
    int total, next, finished, ok, failed, parallel;
    bool print_body;
    const char *method, *body;
    char headers[4096];
    size_t headers_len;
    char **urls;
    int nurls, n;
    uint64_t timeout_ms;
    uint64_t gap_ms;
    struct timer gap;
};

static void start_next(struct run *r);

static void on_done(struct http_call *call, int err, const struct http_reply *rep)
{
    struct job *j = container_of(call, struct job, call);
    struct run *r = call->data;
    printf("call=%d url=%s status=%d bytes=%zu err=%s", j->idx, call->url, rep ? rep->status : 0,
           rep ? rep->body_len : 0, err ? strerrorname_np(-err) : "0");
    if (r->print_body && rep)
        printf(" body=%.*s", (int)rep->body_len, rep->body ? rep->body : "");
    printf("\n");
    fflush(stdout);
    if (err)
        r->failed++;
    else
        r->ok++;
    r->finished++;
    if (r->gap_ms && r->next < r->total)
        loop_timer_in(&r->l, &r->gap, r->gap_ms);
    else
        start_next(r);
    if (r->finished == r->total)
        r->l.stop_now = true;
}

static void start_next(struct run *r)
{
    while (r->next < r->total && r->next - r->finished < r->parallel) {
        struct job *j = &r->jobs[r->next];
        j->idx = r->next;
        j->call = (struct http_call){
            .method = r->method,
            .url = r->urls[r->next % r->nurls],
            .headers = r->headers_len ? r->headers : NULL,
            .headers_len = r->headers_len,
            .body = r->body,
            .body_len = r->body ? strlen(r->body) : 0,
            .timeout_ms = r->timeout_ms,
            .done = on_done,
            .data = r,
        };
        r->next++;
        http_call_start(&r->cl, &j->call);
    }
}

static void on_gap(struct loop *l, struct timer *t)
{
    start_next(container_of(t, struct run, gap));
}

static const char *opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) ? NULL : a + n;
}

int main(int argc, char **argv)
{
    static struct run r;
    const char *ca = NULL, *dns_server = NULL, *v;
    struct http_client_limits lim = {
        .connect_timeout_ms = HTTP_CLIENT_CONNECT_TIMEOUT_MS,
        .timeout_ms = HTTP_CLIENT_TIMEOUT_MS,
        .max_response = HTTP_CLIENT_MAX_RESPONSE,
        .max_per_origin = HTTP_CLIENT_MAX_PER_ORIGIN,
        .idle_ms = HTTP_CLIENT_IDLE_MS,
    };
    int level = LOG_WARN;
    r.n = 1;
    r.parallel = 1;
    r.method = "GET";
    r.urls = xcalloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((v = opt(a, "--ca=")))
            ca = v;
        else if ((v = opt(a, "--n=")))
            r.n = atoi(v);
        else if ((v = opt(a, "--parallel=")))
            r.parallel = atoi(v);
        else if ((v = opt(a, "--timeout=")))
            r.timeout_ms = strtoull(v, NULL, 10);
        else if ((v = opt(a, "--connect-timeout=")))
            lim.connect_timeout_ms = strtoull(v, NULL, 10);
        else if ((v = opt(a, "--max-response=")))
            lim.max_response = strtoull(v, NULL, 10);
        else if ((v = opt(a, "--per-origin=")))
            lim.max_per_origin = (unsigned)atoi(v);
        else if ((v = opt(a, "--method=")))
            r.method = v;
        else if ((v = opt(a, "--body=")))
            r.body = v;
        else if ((v = opt(a, "--header=")))
            r.headers_len += (size_t)snprintf(r.headers + r.headers_len,
                                              sizeof(r.headers) - r.headers_len, "%s\r\n", v);
        else if ((v = opt(a, "--dns-server=")))
            dns_server = v;
        else if ((v = opt(a, "--gap=")))
            r.gap_ms = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--print-body"))
            r.print_body = true;
        else if ((v = opt(a, "--log-level=")))
            level = log_level_parse(v);
        else if (!strncmp(a, "--", 2)) {
            fprintf(stderr, "trireme-http-fetch: unknown option %s\n", a);
            return 2;
        } else
            r.urls[r.nurls++] = argv[i];
    }
    if (!r.nurls || r.n < 1 || r.parallel < 1 || level < 0 || r.headers_len >= sizeof(r.headers)) {
        fprintf(stderr,
                "usage: trireme-http-fetch [options] URL... (see tests/tools/http_fetch.c)\n");
        return 2;
    }
    log_setup((enum log_level)level, false);
    struct tls_store st;
    char why[768];
    if (tls_store_load(&st, NULL, NULL, ca ? ca : TLS_CA_FILE_DEFAULT, true, 0, 0, why,
                       sizeof(why))) {
        fprintf(stderr, "trireme-http-fetch: %s\n", why);
        return 1;
    }
    struct loop_config lc = {.entries = 256,
                             .recv_bufs = 256,
                             .recv_buf_size = 16384,
                             .pool_chunk = 16384,
                             .pool_max_free = 64};
    if (loop_init(&r.l, 0, &lc) < 0 || http_client_init(&r.cl, &r.l, &st, &lim) < 0) {
        fprintf(stderr, "trireme-http-fetch: cannot set up the loop\n");
        return 1;
    }
    if (dns_server && dns_set_servers(&r.cl.dns, dns_server) < 0) {
        fprintf(stderr, "trireme-http-fetch: bad --dns-server %s\n", dns_server);
        return 2;
    }
    r.gap.fn = on_gap;
    r.total = r.n * r.nurls;
    r.jobs = xcalloc((size_t)r.total, sizeof(*r.jobs));
    start_next(&r);
    loop_run(&r.l);
    http_client_close(&r.cl);
    r.l.stop_now = false;
    r.l.stopping = true;
    loop_run(&r.l);
    loop_free(&r.l);
    printf("done ok=%d failed=%d\n", r.ok, r.failed);
    free(r.jobs);
    free(r.urls);
    tls_store_free(&st);
    log_flush();
    return 0;
}
