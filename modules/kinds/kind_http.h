/*
 * kind_http.h - `http` kinds: each attempt of a job is pushed to the
 * operator's own HTTP(S) endpoint, and the answer decides its fate (as
 * Cloud Tasks HTTP targets and QStash do).
 *
 * Declared in the --kinds file ({"type": "http", "url": ...}), by the
 * 12-factor shorthand TRIREME_HTTP_KIND_<kind>=<url>, or, with
 * --http-allow-hosts, as the generic kind `http` whose URL is the payload's
 * "url" (only to listed hosts; private and loopback addresses only when
 * listed as addresses: the check is on what the name resolved to).
 *
 * The request: a JSON body {"id","kind","queue","attempt","max_attempts",
 * "payload"} (and "files", [{"name","filename","content_type","size","url",
 * "expires_at"}], for a job with uploaded files when the kind says
 * "files": true: one indexed lookup per attempt, so only such kinds pay
 * it; each url is --public-url plus the file route signed with
 * --upload-url-secret, valid --upload-url-ttl), Trireme-* headers (job id, kind, queue, attempt,
 * retry count, deadline), the kind's own headers, and a Standard Webhooks signature (webhook-id
 * job_<id>, the same on every attempt; webhook-timestamp; webhook-signature v1,<base64 HMAC-SHA256
 * of id.timestamp.body>) when the kind names a secret. The answer: 2xx succeeds (a JSON body up to
 * max_result is the result, other bodies are stored as text); 429 and 503
 * are retried no sooner than Retry-After; other 5xx, connect, TLS and
 * time-out errors are retried with the job's backoff; 3xx and other 4xx
 * fail without retry; `Trireme-No-Retry: true` makes any failure final.
 * Every request also says the previous attempt's HTTP status
 * (Trireme-Previous-Response, 0 when there was none) and carries the
 * attempt's job token (Trireme-Job-Token) where the queue backend can hand
 * a job over (both can): a 202 then hands the job to the endpoint, which
 * finishes it through the job callbacks (modules/web/api_callbacks.c)
 * within `lease` (heartbeats extend it), or it is retried like any lost
 * lease.
 *
 * Connections are pooled per kind and loop (one kernel/http_client each),
 * at most `concurrency` per origin across the worker's loops; requests
 * beyond it wait for a connection, their time limit running.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_HTTP_H
#define TRIREME_MODULES_KINDS_KIND_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_KIND_TIMEOUT_MS      30000u       /* "timeout": one request, to its whole answer */
#define HTTP_KIND_MAX_RESULT      (256u << 10) /* "max_result": a 2xx body kept as the result */
#define HTTP_KIND_CONCURRENCY     64u          /* "concurrency": connections per origin */
#define HTTP_KIND_LEASE_MS        300000u      /* "lease": a job handed over by a 202 */
#define HTTP_KIND_CONCURRENCY_MAX 10000u
#define HTTP_KIND_ERROR_BODY      200u  /* body bytes quoted in last_error */
#define HTTP_KIND_HEADERS_MAX     32u   /* "headers": fields one kind adds */
#define HTTP_KIND_HEADER_MAX      1024u /* one "Name: value" of them */
#define HTTP_KIND_SECRET_MAX      256u  /* a signing key, decoded */
#define HTTP_KIND_URL_MAX         2048u /* "url", and a generic job's payload url */
#define HTTP_KIND_ALLOW_MAX       64u   /* --http-allow-hosts entries */
#define HTTP_KIND_ENV_PREFIX      "TRIREME_HTTP_KIND_"
#define HTTP_KIND_GENERIC         "http"                /* the generic kind's name */
#define HTTP_KIND_GENERIC_SECRET  "TRIREME_HTTP_SECRET" /* its signing secret, if set */

struct http_spec {
    char *url;          /* NULL: the generic kind (the payload's "url") */
    const char *method; /* static: "POST", "PUT" or "PATCH" */
    char *headers;      /* the kind's "Name: value\r\n" lines, or NULL */
    size_t headers_len;
    uint64_t timeout_ms, max_result;
    uint64_t lease_ms; /* after a 202: the endpoint's to call back within */
    unsigned concurrency;
    bool files; /* "files": the body lists the job's uploaded files, with signed URLs */
    uint8_t secret[HTTP_KIND_SECRET_MAX];
    size_t secret_len; /* 0: requests are not signed */
    /* the generic kind: --http-allow-hosts, names and address literals */
    char **allow;
    unsigned nallow;
};

/* Fill *s from a kinds-file entry. 0, or -1 with *field and msg. */
struct declared_kind;
int http_kind_parse(json_t *entry, struct declared_kind *d, const char **field, char *msg,
                    size_t cap);
void http_spec_free(struct http_spec *s);

/* Add the kinds of TRIREME_HTTP_KIND_<kind>=<url> in env (environ) and,
 * when allow_hosts is not empty, the generic kind `http`. A name declared
 * already is an error. 0, or -1 with msg naming the variable or flag. */
struct kinds_file;
int kinds_file_add_http(struct kinds_file *f, char **env, const char *allow_hosts, char *msg,
                        size_t cap);

/* The generic kind's check of an address it resolved: allowed when public,
 * or when listed. */
struct sockaddr;
bool http_addr_allowed(const struct http_spec *s, const struct sockaddr *sa);
bool http_host_allowed(const struct http_spec *s, const char *host, size_t len);

/* Retry-After: delta seconds or an HTTP date; ms from now_s, or -1. */
int64_t http_retry_after_ms(const char *v, size_t len, int64_t now_s);

/* The loop's state (the kinds module's start, stop and cleanup). */
struct loop;
struct http_loop;
struct http_loop *http_loop_new(struct loop *l, const struct kinds_file *f);
void http_loop_drain(struct http_loop *hl);
void http_loop_free(struct http_loop *hl);

struct job_run;
void http_kind_start(struct job_run *r);
int http_generic_validate(json_t *payload, char *msg, size_t cap);

#endif
