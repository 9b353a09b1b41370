/*
 * ratelimit.c - parsing and matching --rate-limits rules (pure).
 */
#include "modules/web/ratelimit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/limits/gcra.h"

static int bad(char *msg, size_t cap, const char *rule, const char *why)
{
    snprintf(msg, cap, "rate limit rule '%.80s': %s", rule, why);
    return -1;
}

int ratelimit_parse(const char *text, struct ratelimit_rules *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof(*out));
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", text);
    char *save = NULL;
    for (char *rule = strtok_r(buf, ";", &save); rule; rule = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*rule))
            rule++;
        if (!*rule)
            continue;
        if (out->n == RATELIMIT_MAX_RULES)
            return bad(msg, cap, rule, "too many rules (at most 16)");
        struct ratelimit_rule *r = &out->v[out->n];
        char key[96], rate[64], extra[8];
        int got = sscanf(rule, "%15s %127s %95s %63s %7s", r->method, r->path, key, rate, extra);
        if (got != 4)
            return bad(msg, cap, rule, "expected METHOD PATH KEY N/WINDOW");
        if (r->path[0] != '/')
            return bad(msg, cap, rule, "PATH must start with /");
        if (!strcmp(key, "ip"))
            r->key = RL_IP;
        else if (!strcmp(key, "key"))
            r->key = RL_API_KEY;
        else if (!strncmp(key, "header:", 7) && key[7] && strlen(key + 7) < sizeof(r->header)) {
            r->key = RL_HEADER;
            strcpy(r->header, key + 7);
        } else
            return bad(msg, cap, rule, "KEY must be ip, key or header:NAME");
        const char *why = gcra_parse_rate(rate, &r->limit, &r->window_ms);
        if (why)
            return bad(msg, cap, rule, why);
        out->n++;
    }
    return 0;
}

const struct ratelimit_rule *ratelimit_match(const struct ratelimit_rules *rules, const char *method,
                                             size_t method_len, const char *path, size_t path_len)
{
    for (unsigned i = 0; i < rules->n; i++) {
        const struct ratelimit_rule *r = &rules->v[i];
        if (strcmp(r->method, "*") &&
            (strlen(r->method) != method_len || memcmp(r->method, method, method_len)))
            continue;
        size_t pl = strlen(r->path);
        if (r->path[pl - 1] == '*') {
            if (path_len >= pl - 1 && !memcmp(r->path, path, pl - 1))
                return r;
        } else if (pl == path_len && !memcmp(r->path, path, pl)) {
            return r;
        }
    }
    return NULL;
}
