/*
 * ratelimit.h - HTTP rate limits shared by every instance, kept in Redis.
 *
 * Rules come from --rate-limits (`METHOD PATH KEY N/WINDOW; ...`). Each is
 * a GCRA (generic cell rate algorithm) bucket evaluated atomically by one
 * Redis script on the server's clock: exactly N requests pass at once,
 * then one per WINDOW/N. Without Redis configured the rules are refused at
 * start; with Redis down, requests pass (fail open) and a warning is
 * logged, because an outage of a limiter must not become an outage of the
 * API.
 */
#ifndef TRIREME_MODULES_WEB_RATELIMIT_H
#define TRIREME_MODULES_WEB_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_RULES 16

enum ratelimit_key { RL_IP, RL_API_KEY, RL_HEADER };

struct ratelimit_rule {
    char method[16]; /* "*" for any */
    char path[128];  /* exact, or a prefix when it ends in '*' */
    enum ratelimit_key key;
    char header[64];
    uint64_t limit;
    uint64_t window_ms;
};

struct ratelimit_rules {
    struct ratelimit_rule v[RATELIMIT_MAX_RULES];
    unsigned n;
};

/* Parse the --rate-limits text. 0, or -1 with msg naming the bad rule. */
int ratelimit_parse(const char *text, struct ratelimit_rules *out, char *msg, size_t cap);

struct web_request;
struct web_route;

/* True when the request is held for a rate-limit check (it resumes into
 * the route's handler, or is answered 429). The web loop's gate when rules
 * and Redis are configured. */
bool web_ratelimit(struct web_request *r, const struct web_route *rt);

/* The first rule for this request, or NULL. */
const struct ratelimit_rule *ratelimit_match(const struct ratelimit_rules *rules,
                                             const char *method, size_t method_len,
                                             const char *path, size_t path_len);

#endif
