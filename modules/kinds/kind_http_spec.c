/*
 * kind_http_spec.c - declaring http kinds (kind_http.h): the kinds-file
 * entry, the TRIREME_HTTP_KIND_<kind>=<url> shorthand, the generic kind's
 * allowlist and its address check, and Retry-After. Pure apart from
 * reading the environment at start.
 */
#include "modules/kinds/kind_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "kernel/xalloc.h"
#include "modules/kinds/kinds_file.h"
#include "modules/webhooks/standard.h"
#include "proto/base64.h"
#include "proto/http_url.h"

/* Headers the request itself sets: a kind may not replace them. */
static const char *const reserved[] = {
    "host",       "content-length",    "content-type",     "connection", "transfer-encoding",
    "webhook-id", "webhook-timestamp", "webhook-signature"};

static bool token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c);
}

static int check_url(const char *url, char *msg, size_t cap)
{
    struct http_url u;
    const char *why;
    if (strlen(url) > HTTP_KIND_URL_MAX) {
        snprintf(msg, cap, "longer than %u characters", HTTP_KIND_URL_MAX);
        return -1;
    }
    if (http_url_parse(url, strlen(url), &u, &why)) {
        snprintf(msg, cap, "not an http:// or https:// URL: %s", why);
        return -1;
    }
    return 0;
}

static int parse_headers(json_t *h, struct http_spec *s, char *msg, size_t cap)
{
    if (!json_is_object(h) || json_object_size(h) > HTTP_KIND_HEADERS_MAX) {
        snprintf(msg, cap, "must be an object of at most %u \"Name\": \"value\" strings",
                 HTTP_KIND_HEADERS_MAX);
        return -1;
    }
    size_t cap_all = json_object_size(h) * (HTTP_KIND_HEADER_MAX + 4) + 1, len = 0;
    char *out = xmalloc(cap_all);
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v)
    {
        const char *val = json_string_value(v);
        bool ok = val && *name && strlen(name) + strlen(val) + 2 <= HTTP_KIND_HEADER_MAX;
        for (const char *c = name; ok && *c; c++)
            ok = token_char(*c);
        for (const char *c = val; ok && *c; c++)
            ok = *c != '\r' && *c != '\n';
        if (!ok) {
            snprintf(msg, cap,
                     "header '%.60s': a token name and a string value without CR or LF, at "
                     "most %u bytes",
                     name, HTTP_KIND_HEADER_MAX);
            free(out);
            return -1;
        }
        bool taken = !strncasecmp(name, "trireme-", 8);
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
            taken = taken || !strcasecmp(name, reserved[i]);
        if (taken) {
            snprintf(msg, cap, "header '%.60s': set by Trireme itself, not by the kinds file",
                     name);
            free(out);
            return -1;
        }
        len += (size_t)snprintf(out + len, cap_all - len, "%s: %s\r\n", name, val);
    }
    s->headers = out;
    s->headers_len = len;
    return 0;
}

/* A Standard Webhooks secret: "whsec_" and base64 (the prefix optional). */
static int load_secret(const char *env_name, struct http_spec *s, char *msg, size_t cap)
{
    const char *v = getenv(env_name);
    if (!v || !*v) {
        snprintf(msg, cap, "the environment variable %.100s is not set or empty", env_name);
        return -1;
    }
    long n = stdwh_secret(v, s->secret, sizeof(s->secret));
    if (n < 0) {
        snprintf(msg, cap,
                 "the environment variable %.100s is not a Standard Webhooks secret "
                 "(whsec_ and base64 of at most %u bytes)",
                 env_name, HTTP_KIND_SECRET_MAX);
        return -1;
    }
    s->secret_len = (size_t)n;
    return 0;
}

static void spec_defaults(struct http_spec *s)
{
    s->method = "POST";
    s->timeout_ms = HTTP_KIND_TIMEOUT_MS;
    s->max_result = HTTP_KIND_MAX_RESULT;
    s->lease_ms = HTTP_KIND_LEASE_MS;
    s->concurrency = HTTP_KIND_CONCURRENCY;
}

/* The job's time limit: the request's own, and a second for its answer to
 * be written, so the request's time-out is what ends a slow attempt. */
static void set_kind_timeout(struct declared_kind *d)
{
    d->kind.timeout_ms = d->http.timeout_ms + 1000;
}

int http_kind_parse(json_t *e, struct declared_kind *d, const char **field, char *msg, size_t cap)
{
    static const char *const known[] = {"type",    "url",         "method",     "headers",
                                        "timeout", "concurrency", "secret_env", "max_result",
                                        "lease",   "files"};
    struct http_spec *s = &d->http;
    memset(s, 0, sizeof(*s));
    spec_defaults(s);
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok = ok || !strcmp(key, known[i]);
        if (!ok) {
            *field = key;
            snprintf(msg, cap,
                     "is not a field of an http kind (url, method, headers, timeout, "
                     "concurrency, secret_env, max_result, lease, files)");
            return -1;
        }
    }
    json_t *url = json_object_get(e, "url");
    *field = "url";
    if (!json_is_string(url)) {
        snprintf(msg, cap, "is required: the endpoint, http:// or https://");
        return -1;
    }
    if (check_url(json_string_value(url), msg, cap))
        return -1;
    json_t *m = json_object_get(e, "method");
    if (m) {
        *field = "method";
        const char *mv = json_string_value(m);
        s->method = !mv                    ? NULL
                    : !strcmp(mv, "POST")  ? "POST"
                    : !strcmp(mv, "PUT")   ? "PUT"
                    : !strcmp(mv, "PATCH") ? "PATCH"
                                           : NULL;
        if (!s->method) {
            snprintf(msg, cap, "must be \"POST\" (the default), \"PUT\" or \"PATCH\"");
            return -1;
        }
    }
    uint64_t conc = HTTP_KIND_CONCURRENCY;
    json_t *c = json_object_get(e, "concurrency");
    if (c && (!json_is_integer(c) || json_integer_value(c) < 1 ||
              json_integer_value(c) > HTTP_KIND_CONCURRENCY_MAX)) {
        *field = "concurrency";
        snprintf(msg, cap, "must be an integer from 1 to %u (connections per origin)",
                 HTTP_KIND_CONCURRENCY_MAX);
        return -1;
    }
    if (c)
        conc = (uint64_t)json_integer_value(c);
    s->concurrency = (unsigned)conc;
    if (kinds_field_duration(e, "timeout", &s->timeout_ms, 10, 24 * 3600 * 1000ULL, field, msg,
                             cap) ||
        kinds_field_size(e, "max_result", &s->max_result, 0, 64 << 20, field, msg, cap) ||
        kinds_field_duration(e, "lease", &s->lease_ms, 1000, 24 * 3600 * 1000ULL, field, msg, cap))
        return -1;
    json_t *files = json_object_get(e, "files");
    if (files && !json_is_boolean(files)) {
        *field = "files";
        snprintf(msg, cap, "must be true (send the job's uploaded files as signed URLs) or false");
        return -1;
    }
    s->files = json_is_true(files);
    json_t *h = json_object_get(e, "headers");
    if (h) {
        *field = "headers";
        if (parse_headers(h, s, msg, cap))
            return -1;
    }
    json_t *se = json_object_get(e, "secret_env");
    if (se) {
        *field = "secret_env";
        if (!json_is_string(se) || !*json_string_value(se)) {
            snprintf(msg, cap, "must name an environment variable holding the signing secret");
            http_spec_free(s);
            return -1;
        }
        if (load_secret(json_string_value(se), s, msg, cap)) {
            http_spec_free(s);
            return -1;
        }
    }
    s->url = xstrdup(json_string_value(url));
    set_kind_timeout(d);
    return 0;
}

void http_spec_free(struct http_spec *s)
{
    free(s->url);
    free(s->headers);
    for (unsigned i = 0; i < s->nallow; i++)
        free(s->allow[i]);
    free(s->allow);
    memset(s->secret, 0, sizeof(s->secret));
    s->url = s->headers = NULL;
    s->allow = NULL;
    s->nallow = 0;
}

/* --- declared outside the file ------------------------------------------- */

static struct declared_kind *add_kind(struct kinds_file *f, const char *name, size_t n)
{
    struct declared_kind *d = kinds_file_append(f, name, n, KIND_TYPE_HTTP);
    d->kind.summary = "pushed to an HTTP(S) endpoint (declared in the environment)";
    d->kind.start = http_kind_start;
    spec_defaults(&d->http);
    return d;
}

static int parse_allow(struct http_spec *s, const char *list, char *msg, size_t cap)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ","), n = len;
        const char *h = p;
        while (n && *h == ' ')
            h++, n--;
        while (n && h[n - 1] == ' ')
            n--;
        if (n) {
            if (s->nallow == HTTP_KIND_ALLOW_MAX || n > 253) {
                snprintf(msg, cap, "--http-allow-hosts: at most %u hosts of at most 253 characters",
                         HTTP_KIND_ALLOW_MAX);
                return -1;
            }
            s->allow = xrealloc(s->allow, (s->nallow + 1) * sizeof(*s->allow));
            s->allow[s->nallow] = xstrndup(h, n);
            for (char *c = s->allow[s->nallow]; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            s->nallow++;
        }
        p += len + (p[len] ? 1 : 0);
    }
    if (!s->nallow) {
        snprintf(msg, cap, "--http-allow-hosts: names no host");
        return -1;
    }
    return 0;
}

int kinds_file_add_http(struct kinds_file *f, char **env, const char *allow_hosts, char *msg,
                        size_t cap)
{
    const size_t pre = strlen(HTTP_KIND_ENV_PREFIX);
    for (char **e = env; e && *e; e++) {
        if (strncmp(*e, HTTP_KIND_ENV_PREFIX, pre))
            continue;
        const char *name = *e + pre, *eq = strchr(name, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - name);
        char what[120];
        snprintf(what, sizeof(what), "%s%.*s", HTTP_KIND_ENV_PREFIX, (int)(n > 64 ? 64 : n), name);
        if (kinds_file_name_free(f, name, n, what, msg, cap))
            return -1;
        char why[200];
        if (check_url(eq + 1, why, sizeof(why))) {
            snprintf(msg, cap, "%s: kind '%.*s': field 'url': %s", what, (int)n, name, why);
            return -1;
        }
        struct declared_kind *d = add_kind(f, name, n);
        d->http.url = xstrdup(eq + 1);
        set_kind_timeout(d);
    }
    if (!*allow_hosts)
        return 0;
    const char *g = HTTP_KIND_GENERIC;
    if (kinds_file_name_free(f, g, strlen(g), "--http-allow-hosts", msg, cap))
        return -1;
    struct http_spec s = {0};
    if (parse_allow(&s, allow_hosts, msg, cap)) {
        http_spec_free(&s);
        return -1;
    }
    const char *sec = getenv(HTTP_KIND_GENERIC_SECRET);
    if (sec && *sec && load_secret(HTTP_KIND_GENERIC_SECRET, &s, msg, cap)) {
        http_spec_free(&s);
        return -1;
    }
    struct declared_kind *d = add_kind(f, g, strlen(g));
    d->http.allow = s.allow;
    d->http.nallow = s.nallow;
    memcpy(d->http.secret, s.secret, sizeof(s.secret));
    d->http.secret_len = s.secret_len;
    d->kind.summary = "pushed to the payload's \"url\" (hosts in --http-allow-hosts only)";
    d->kind.validate = http_generic_validate;
    set_kind_timeout(d);
    return 0;
}

/* --- the generic kind's checks ------------------------------------------- */

bool http_host_allowed(const struct http_spec *s, const char *host, size_t len)
{
    for (unsigned i = 0; i < s->nallow; i++)
        if (strlen(s->allow[i]) == len && !strncasecmp(s->allow[i], host, len))
            return true;
    return false;
}

/* Loopback, private, link-local, unique-local, CGNAT, multicast and the
 * unspecified address: where a request must not go unless listed. */
static bool addr_internal(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
               (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) || (a >> 28) == 14 ||
               (a >> 28) == 15;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return addr_internal((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_MULTICAST(a) || (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

bool http_addr_allowed(const struct http_spec *s, const struct sockaddr *sa)
{
    if (!addr_internal(sa))
        return true;
    char text[INET6_ADDRSTRLEN] = "";
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, a, text, sizeof(text)))
        return false;
    return http_host_allowed(s, text, strlen(text));
}

/* --- Retry-After ----------------------------------------------------------- */

int64_t http_retry_after_ms(const char *v, size_t len, int64_t now_s)
{
    char buf[64];
    if (!len || len >= sizeof(buf))
        return -1;
    memcpy(buf, v, len);
    buf[len] = 0;
    if (buf[0] >= '0' && buf[0] <= '9') {
        char *end;
        unsigned long long s = strtoull(buf, &end, 10);
        if (*end || s > 365ULL * 24 * 3600)
            return -1;
        return (int64_t)s * 1000;
    }
    struct tm tm = {0}; /* IMF-fixdate, the form RFC 9110 says to send */
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    int64_t at = (int64_t)timegm(&tm);
    return at <= now_s ? 0 : (at - now_s) * 1000;
}
