/*
 * ratelimit.c - --rate-limits (ratelimit.h): the rules parsed and matched,
 * and a limited request held for one EVAL of the GCRA script
 * (modules/limits/gcra.h) on its rule's and key's bucket; it then resumes
 * into its handler (web_resume) or is answered 429 with Retry-After.
 */
#include "modules/web/ratelimit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/limits/gcra.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

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

const struct ratelimit_rule *ratelimit_match(const struct ratelimit_rules *rules,
                                             const char *method, size_t method_len,
                                             const char *path, size_t path_len)
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

struct rl_check {
    struct redis_cmd cmd;
    struct web_request *r;
    web_handler_fn handler;
};

static void on_abort(struct web_request *r)
{
    ((struct rl_check *)r->async)->r = NULL;
}

static void on_verdict(struct redis_cmd *c, redisReply *reply, const char *err)
{
    struct rl_check *k = container_of(c, struct rl_check, cmd);
    struct web_request *r = k->r;
    web_handler_fn fn = k->handler;
    free(k);
    if (!r)
        return;
    r->on_abort = NULL;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        /* Fail open: a limiter outage must not take the API down with it. */
        struct web_loop *wl = web_loop_of(r->loop);
        if (wl->loop->now_ns - wl->last_rl_warn_ns > 10000000000ull) {
            wl->last_rl_warn_ns = wl->loop->now_ns;
            LOG(LOG_WARN, "rate limit check failed; letting requests through",
                L_STR("error", err ? err : "unexpected reply"));
        }
        web_resume(r, fn);
        return;
    }
    if (reply->element[0]->integer == 1) {
        web_resume(r, fn);
        return;
    }
    long long ms = reply->element[1]->integer;
    long long secs = ms <= 0 ? 1 : (ms + 999) / 1000;
    char extra[64], msg[128];
    snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n", secs);
    snprintf(msg, sizeof(msg), "rate limit exceeded; retry in %lld ms", ms);
    web_respond_error_h(r, 429, "rate_limited", msg, extra);
}

/* FNV-1a: API keys are bucketed by hash, never stored in Redis. */
static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

bool web_ratelimit(struct web_request *r, const struct web_route *rt)
{
    struct web_loop *wl = web_loop_of(r->loop);
    const struct http1_request *h = r->http;
    const struct ratelimit_rule *rule =
        ratelimit_match(&wl->rules, h->method, h->method_len, h->path, h->path_len);
    if (!rule)
        return false;
    char who[160] = "";
    if (rule->key == RL_IP) {
        if (web_peer_ip(r, who, sizeof(who)))
            strcpy(who, "unknown");
    } else {
        const struct http1_header *hd =
            http1_find_header(h, rule->key == RL_API_KEY ? "authorization" : rule->header);
        if (!hd)
            strcpy(who, "-"); /* all requests without the key share one bucket */
        else if (rule->key == RL_API_KEY)
            snprintf(who, sizeof(who), "%016llx",
                     (unsigned long long)fnv1a(hd->value, hd->value_len));
        else
            snprintf(who, sizeof(who), "%.*s", (int)(hd->value_len > 128 ? 128 : hd->value_len),
                     hd->value);
    }
    char bucket[256], interval[32], burst[32];
    snprintf(bucket, sizeof(bucket), "trireme:rl:%u:%s", (unsigned)(rule - wl->rules.v), who);
    gcra_args(rule->limit, rule->window_ms, interval, burst);
    struct rl_check *k = xcalloc(1, sizeof(*k));
    k->r = r;
    k->handler = rt->handler;
    k->cmd.fn = on_verdict;
    k->cmd.timeout_ms = 1000;
    r->async = k;
    r->on_abort = on_abort;
    const char *argv[] = {"EVAL", GCRA_SCRIPT, "1", bucket, interval, burst};
    redis_submitv(&wl->redis, &k->cmd, 6, argv);
    return true;
}
