/*
 * gcra.h - the Redis script behind every shared rate limit (HTTP routes,
 * job kinds): GCRA, the generic cell rate algorithm, on Redis's clock.
 *
 * KEYS[1] is the bucket, ARGV[1] the emission interval in microseconds
 * (window / N), ARGV[2] the burst N. Returns {1, 0} to admit, or
 * {0, retry_after_ms}. Exactly N pass at once, then one per interval; the
 * bucket expires by itself once it is full again.
 */
#ifndef TRIREME_MODULES_LIMITS_GCRA_H
#define TRIREME_MODULES_LIMITS_GCRA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/config.h"

#define GCRA_SCRIPT                                                                                \
    "local t = redis.call('TIME')"                                                                 \
    " local now = tonumber(t[1]) * 1000000 + tonumber(t[2])"                                       \
    " local interval = tonumber(ARGV[1])"                                                          \
    " local burst = tonumber(ARGV[2]) * interval"                                                 \
    " local tat = tonumber(redis.call('GET', KEYS[1])) or now"                                     \
    " if tat < now then tat = now end"                                                             \
    " local new_tat = tat + interval"                                                              \
    " if new_tat - now > burst then"                                                               \
    "  return {0, math.ceil((new_tat - burst - now) / 1000)} end"                                  \
    " redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX',"                              \
    "  math.ceil((new_tat - now) / 1000) + 1)"                                                      \
    " return {1, 0}"

/* "100/1m" -> limit 100, window 60000 ms. NULL, or what is wrong. */
static inline const char *gcra_parse_rate(const char *s, uint64_t *limit, uint64_t *window_ms)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return "the rate must look like 100/1m";
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (end != slash || n == 0 || n > 1000000000ull)
        return "N must be a positive integer";
    int64_t w = config_parse_duration_ms(slash + 1);
    if (w <= 0)
        return "WINDOW must be a duration such as 1s or 1m";
    *limit = n;
    *window_ms = (uint64_t)w;
    return NULL;
}

/* The script's two arguments for "limit per window_ms". */
static inline void gcra_args(uint64_t limit, uint64_t window_ms, char interval[32], char burst[32])
{
    snprintf(interval, 32, "%.3f", (double)window_ms * 1000.0 / (double)limit);
    snprintf(burst, 32, "%llu", (unsigned long long)limit);
}

#endif
