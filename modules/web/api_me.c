/*
 * api_me.c - GET /v1/me: the scopes of the credential that asks, so a
 * client (the dashboard) can offer only the actions it may take. Any valid
 * credential may ask, whatever its scopes; none is 401, as everywhere.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "modules/web/auth_jwt.h"
#include "modules/web/web.h"

void api_me(struct web_request *r)
{
    char scopes[AUTH_SCOPES_MAX];
    if (!web_credential(r, scopes))
        return;
    /* Each scope escaped: a JWT's scope claim is the issuer's text. Every
     * character escapes to at most 6 bytes. */
    char body[32 + AUTH_SCOPES_MAX * 8];
    size_t o = 0;
    o += (size_t)snprintf(body, sizeof(body), "{\"scopes\":[");
    const char *p = scopes;
    bool first = true;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (!first)
            body[o++] = ',';
        first = false;
        body[o++] = '"';
        o += web_json_escape(body + o, sizeof(body) - o - 4, p, n);
        body[o++] = '"';
        p += n;
    }
    o += (size_t)snprintf(body + o, sizeof(body) - o, "]}");
    web_respond_json(r, 200, body, o);
}
