/*
 * ratelimit_redis.c - holding a request for its rate-limit verdict.
 *
 * One EVAL per limited request: the GCRA script (modules/limits) keeps, per rule and
 * key, the theoretical arrival time of the next request; all instances
 * share it through Redis, on Redis's clock. The request resumes into its
 * handler (web_resume) or is answered 429 with Retry-After.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/limits/gcra.h"
#include "modules/web/ratelimit.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

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
