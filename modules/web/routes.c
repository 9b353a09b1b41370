/*
 * routes.c - the web role's one route table. Handlers live in their own
 * files; adding an endpoint is one line here.
 */
#include "modules/web/web.h"

void web_healthz(struct web_request *r);

const struct web_route web_routes[] = {
    {"GET", "/healthz", web_healthz},
};
const unsigned web_routes_count = sizeof(web_routes) / sizeof(web_routes[0]);
