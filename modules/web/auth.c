/*
 * auth.c - credentials and scopes for /v1: `Authorization: Bearer <key>`.
 *
 * Keys come from TRIREME_API_KEYS (comma-separated) and MASTER_API_KEY. An
 * entry is `key` (full access, as before scopes existed) or
 * `key:scope+scope` (e.g. `k1:jobs:read`); the key part is everything up
 * to the first ':'. Every configured key is compared in constant time, and
 * all of them are always compared, so timing tells nothing about which key
 * or prefix matched.
 *
 * When a JWT secret or public key is configured, a bearer value shaped like a JWS (two
 * dots; API keys never contain one) is verified as a JWT instead
 * (auth_jwt.c); a bad one is 401 invalid_token as RFC 6750 3.1 says.
 *
 * The scope a request needs follows from its method and path, so handlers
 * only call web_authorized (web_credential checks the credential alone and
 * tells its scopes, for GET /v1/me): GET/HEAD on /v1 need jobs:read (schedules
 * included: reading them reveals nothing a job reader cannot see), other
 * methods on /v1/schedules need schedules:write, and the rest jobs:write.
 * admin grants all. A valid credential without the scope is 403
 * insufficient_scope.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/web/auth_jwt.h"
#include "modules/registry.h"
#include "modules/web/web.h"
#include "proto/base64.h"
#include "proto/csv_list.h"
#include "proto/jwt.h"

/* Finds key in list; on a match writes the entry's scopes, space-separated,
 * into scopes ("admin" for an entry without any). */
static bool key_listed(const char *list, const char *key, size_t klen, char *scopes)
{
    bool found = false;
    const char *at = list, *p;
    size_t n;
    while (csv_next(&at, &p, &n)) {
        const char *colon = memchr(p, ':', n);
        size_t kn = colon ? (size_t)(colon - p) : n;
        if (kn && ct_equal_len(key, klen, p, kn)) {
            found = true;
            if (colon) {
                size_t sn = n - kn - 1 < AUTH_SCOPES_MAX - 1 ? n - kn - 1 : AUTH_SCOPES_MAX - 1;
                for (size_t i = 0; i < sn; i++)
                    scopes[i] = colon[1 + i] == '+' ? ' ' : colon[1 + i];
                scopes[sn] = '\0';
            } else {
                strcpy(scopes, "admin");
            }
        }
    }
    return found;
}

static const char *needed_scope(const struct web_request *r)
{
    const struct http1_request *h = r->http;
    bool read = (h->method_len == 3 && !memcmp(h->method, "GET", 3)) ||
                (h->method_len == 4 && !memcmp(h->method, "HEAD", 4));
    if (read)
        return "jobs:read";
    if (h->path_len >= 13 && !memcmp(h->path, "/v1/schedules", 13))
        return "schedules:write";
    return "jobs:write";
}

bool web_credential(struct web_request *r, char *scopes)
{
    const struct config *cfg = r->loop->srv->cfg;
    if (cfg->insecure_no_auth) {
        strcpy(scopes, "admin");
        return true;
    }
    const struct http1_header *h = http1_find_header(r->http, "authorization");
    bool jwt = auth_jwt_enabled(cfg);
    if (!*cfg->api_keys && !*cfg->master_api_key && !jwt) {
        web_respond_error(r, 401, "unauthorized",
                          "no API key is configured on this server (set TRIREME_API_KEYS)");
        return false;
    }
    if (!h || h->value_len < 8 || strncasecmp(h->value, "Bearer ", 7)) {
        LOG(LOG_INFO, "request refused: no bearer credentials",
            L_STRN("request_id", r->id, r->id_len));
        web_respond_error_h(r, 401, "unauthorized", "missing Authorization: Bearer <api key>",
                            "WWW-Authenticate: Bearer\r\n");
        return false;
    }
    const char *key = h->value + 7;
    size_t klen = h->value_len - 7;
    scopes[0] = '\0';
    const char *d1 = memchr(key, '.', klen);
    if (jwt && d1 && memchr(d1 + 1, '.', klen - (size_t)(d1 + 1 - key))) {
        const struct jwt_keys *keys = r->loop->srv->module_state[MODULE_WEB];
        const char *why = auth_jwt_verify(cfg, keys, key, klen, (int64_t)time(NULL), scopes);
        if (why) {
            LOG(LOG_INFO, "JWT refused", L_STR("reason", why),
                L_STRN("request_id", r->id, r->id_len));
            web_respond_error_h(r, 401, "invalid_token", why,
                                "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
            return false;
        }
    } else {
        bool ok = key_listed(cfg->api_keys, key, klen, scopes);
        if (*cfg->master_api_key &&
            ct_equal_len(key, klen, cfg->master_api_key, strlen(cfg->master_api_key))) {
            ok = true;
            strcpy(scopes, "admin");
        }
        if (!ok) {
            LOG(LOG_INFO, "request refused: API key not valid",
                L_STRN("request_id", r->id, r->id_len));
            web_respond_error(r, 403, "forbidden", "the API key is not valid");
            return false;
        }
    }
    return true;
}

bool web_authorized(struct web_request *r)
{
    char scopes[AUTH_SCOPES_MAX];
    if (!web_credential(r, scopes))
        return false;
    const char *need = needed_scope(r);
    if (jwt_scope_has(scopes, "admin") || jwt_scope_has(scopes, need))
        return true;
    LOG(LOG_INFO, "request refused: insufficient scope", L_STR("needed", need),
        L_STRN("request_id", r->id, r->id_len));
    char msg[96];
    snprintf(msg, sizeof(msg), "this credential lacks the scope %s", need);
    char hdr[128];
    snprintf(hdr, sizeof(hdr),
             "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"%s\"\r\n", need);
    web_respond_error_h(r, 403, "insufficient_scope", msg, hdr);
    return false;
}
