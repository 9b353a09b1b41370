/*
 * limits.c - the compiled-in limits `trireme --help` lists: the kernel's
 * and proto's here, each module's from its descriptor (module.h). The
 * values are the macros themselves, so the list cannot drift from the code.
 */
#include <stdio.h>

#include "kernel/conn.h"
#include "kernel/dns.h"
#include "kernel/http_client.h"
#include "kernel/module.h"
#include "kernel/redis.h"
#include "kernel/redis_reader.h"
#include "kernel/tls.h"
#include "proto/cron.h"
#include "proto/jwt.h"
#include "proto/multipart.h"

static const struct module_limit kernel_limits[] = {
    {"CONN_MAX_INPUT", CONN_MAX_INPUT, "bytes", "unread input one connection buffers"},
    {"CONN_LINGER_MS", CONN_LINGER_MS, "ms", "a lingering close gives up after"},
    {"REDIS_COMMAND_MAX", REDIS_COMMAND_MAX, "bytes", "one Redis command"},
    {"REDIS_REPLY_MAX_ELEMENTS", REDIS_REPLY_MAX_ELEMENTS, "",
     "array slots in one Redis reply, all nesting levels (beyond: protocol error, reconnect)"},
    {"TLS_PEM_MAX", TLS_PEM_MAX, "bytes", "a PEM file (CA bundle, chain, key)"},
    {"TLS_CHAIN_MAX", TLS_CHAIN_MAX, "", "certificates in --tls-cert's chain"},
    {"TLS_EXPIRY_WARN_DAYS", TLS_EXPIRY_WARN_DAYS, "days",
     "warn when a certificate expires within"},
    {"DNS_MAX_ADDRS", DNS_MAX_ADDRS, "", "addresses kept per name"},
    {"DNS_CACHE_MAX", DNS_CACHE_MAX, "", "names cached per resolver"},
    {"DNS_MIN_TTL_MS", DNS_MIN_TTL_MS, "ms", "shortest time an answer is cached"},
    {"DNS_MAX_TTL_MS", DNS_MAX_TTL_MS, "ms", "longest time an answer is cached"},
    {"DNS_TIMEOUT_MS", DNS_TIMEOUT_MS, "ms", "one DNS query (tried DNS_TRIES times)"},
    {"HTTP_CLIENT_CONNECT_TIMEOUT_MS", HTTP_CLIENT_CONNECT_TIMEOUT_MS, "ms",
     "outgoing TCP connect, per address tried"},
    {"HTTP_CLIENT_MAX_HEAD", HTTP_CLIENT_MAX_HEAD, "bytes", "a response's status line and headers"},
    {"HTTP_CLIENT_MAX_HEADERS", HTTP_CLIENT_MAX_HEADERS, "", "a response's header fields"},
    {"HTTP_CLIENT_MAX_ORIGINS", HTTP_CLIENT_MAX_ORIGINS, "", "origins one worker loop talks to"},
    {"HTTP_CLIENT_IDLE_MS", HTTP_CLIENT_IDLE_MS, "ms",
     "an idle keep-alive connection is closed after"},
    {"JWT_MAX_TOKEN", JWT_MAX_TOKEN, "bytes", "a bearer JWT (larger: 401 before decoding)"},
    {"MULTIPART_MAX_HEAD", MULTIPART_MAX_HEAD, "bytes", "one upload part's header block"},
    {"MULTIPART_MAX_NAME", MULTIPART_MAX_NAME, "bytes", "an upload form field's name"},
    {"MULTIPART_MAX_FILENAME", MULTIPART_MAX_FILENAME, "bytes", "an uploaded file's name"},
    {"CRON_EVERY_MAX", CRON_EVERY_MAX, "s", "the longest @every interval"},
    {NULL, 0, NULL, NULL},
};

static void print_limits(FILE *out, const struct module_limit *l)
{
    for (; l && l->name; l++) {
        char value[48];
        snprintf(value, sizeof(value), "%lld%s%s", l->value, *l->unit ? " " : "", l->unit);
        fprintf(out, "  %-32s %-18s %s\n", l->name, value, l->what);
    }
}

void module_limits_help(FILE *out)
{
    print_limits(out, kernel_limits);
    for (unsigned i = 0; i < modules_builtin_count; i++)
        print_limits(out, modules_builtin[i]->limits);
}
