/*
 * health.c - GET /healthz: liveness only (no dependency is checked here,
 * so a slow database never gets a healthy process restarted).
 */
#include <stdio.h>

#include "kernel/server.h"
#include "kernel/version.h"
#include "modules/web/web.h"

void web_healthz(struct web_request *r)
{
    struct server *s = r->loop->srv;
    char roles[160], body[384];
    /* s->roles is "web,worker": render as a JSON array. */
    size_t o = 0;
    roles[o++] = '[';
    const char *p = s->roles;
    while (*p && o < sizeof(roles) - 8) {
        roles[o++] = '"';
        while (*p && *p != ',' && o < sizeof(roles) - 4)
            roles[o++] = *p++;
        roles[o++] = '"';
        if (*p == ',') {
            roles[o++] = ',';
            p++;
        }
    }
    roles[o++] = ']';
    roles[o] = 0;
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"uptime_seconds\":%llu,\"version\":\"%s\",\"roles\":%s}",
                     (unsigned long long)server_uptime_s(s, r->loop), TRIREME_VERSION, roles);
    web_respond_json(r, 200, body, (size_t)n);
}
