/*
 * kind_limits.h - --kind-limits: how many jobs of a kind may start per
 * window across every worker instance (an external API's quota, say).
 */
#ifndef TRIREME_MODULES_KINDS_KIND_LIMITS_H
#define TRIREME_MODULES_KINDS_KIND_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define KIND_LIMITS_MAX 16

struct kind_limit {
    char kind[64];
    uint64_t limit, window_ms;
};

struct kind_limits {
    struct kind_limit v[KIND_LIMITS_MAX];
    unsigned n;
};

/* "sleep 10/1s; sql 100/1m". 0, or -1 with msg naming the bad entry. */
int kind_limits_parse(const char *text, struct kind_limits *out, char *msg, size_t cap);
const struct kind_limit *kind_limit_find(const struct kind_limits *l, const char *kind);

#endif
