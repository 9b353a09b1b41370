/*
 * http_url.h - http:// and https:// URLs split for an HTTP client, pure.
 *
 * Accepts scheme://host[:port][/path][?query][#fragment] with scheme http
 * or https (any case), host a DNS name, an IPv4 literal or a bracketed
 * IPv6 literal; refuses userinfo (credentials belong in headers, not in
 * URLs that end up in logs), empty hosts, bad ports and bytes that are not
 * visible ASCII. The fragment is dropped; an empty path becomes "/".
 */
#ifndef TRIREME_PROTO_HTTP_URL_H
#define TRIREME_PROTO_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest host name (RFC 1035: 253 characters, plus room for brackets). */
#define HTTP_URL_MAX_HOST 255

struct http_url {
    bool tls;         /* https */
    const char *host; /* without brackets; not NUL-terminated */
    uint32_t host_len;
    int port;           /* 80 / 443 when absent */
    bool port_explicit; /* the URL named the port */
    bool ipv6;          /* host was a bracketed literal */
    const char *target; /* path and query, "/" when empty (static then) */
    uint32_t target_len;
};

/* 0, or -1 with *error naming the problem (a static string). */
int http_url_parse(const char *url, size_t len, struct http_url *u, const char **error);

#endif
