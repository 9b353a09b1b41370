/*
 * auth.c - API keys for /v1: `Authorization: Bearer <key>`.
 *
 * Keys come from TRIREME_API_KEYS (comma-separated) and MASTER_API_KEY.
 * When a JWT secret is configured, a bearer value shaped like a JWS
 * (two dots; API keys never contain one) is verified as a JWT instead
 * (auth_jwt.c); a bad one is 401 invalid_token as RFC 6750 3.1 says.
 * Every configured key is compared in constant time, and all of them are
 * always compared, so timing tells nothing about which key or prefix
 * matched.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/web/auth_jwt.h"
#include "modules/web/web.h"

static bool ct_equal(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned char diff = (unsigned char)(an != bn);
    for (size_t i = 0; i < bn; i++)
        diff |= (unsigned char)(b[i] ^ (i < an ? a[i] : 0));
    return diff == 0;
}

static bool key_listed(const char *list, const char *key, size_t klen)
{
    bool found = false;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n)
            found |= ct_equal(key, klen, p, n);
        if (!e)
            break;
        p = e + 1;
    }
    return found;
}

bool web_authorized(struct web_request *r)
{
    const struct config *cfg = r->loop->srv->cfg;
    if (cfg->insecure_no_auth)
        return true;
    const struct http1_header *h = http1_find_header(r->http, "authorization");
    bool jwt = auth_jwt_enabled(cfg);
    if (!*cfg->api_keys && !*cfg->master_api_key && !jwt) {
        web_respond_error(r, 401, "unauthorized",
                          "no API key is configured on this server (set TRIREME_API_KEYS)");
        return false;
    }
    if (!h || h->value_len < 8 || strncasecmp(h->value, "Bearer ", 7)) {
        web_respond_error_h(r, 401, "unauthorized", "missing Authorization: Bearer <api key>",
                            "WWW-Authenticate: Bearer\r\n");
        return false;
    }
    const char *key = h->value + 7;
    size_t klen = h->value_len - 7;
    const char *d1 = memchr(key, '.', klen);
    if (jwt && d1 && memchr(d1 + 1, '.', klen - (size_t)(d1 + 1 - key))) {
        const char *why = auth_jwt_verify(cfg, key, klen, (int64_t)time(NULL));
        if (!why)
            return true;
        LOG(LOG_INFO, "JWT refused", L_STR("reason", why), L_STRN("request_id", r->id, r->id_len));
        web_respond_error_h(r, 401, "invalid_token", why,
                            "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
        return false;
    }
    bool ok = key_listed(cfg->api_keys, key, klen);
    if (*cfg->master_api_key)
        ok |= ct_equal(key, klen, cfg->master_api_key, strlen(cfg->master_api_key));
    if (!ok)
        web_respond_error(r, 403, "forbidden", "the API key is not valid");
    return ok;
}
