/*
 * web.c - the web role's module descriptor: a listener per loop.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"

static void on_accept(struct listener *ls, int fd)
{
    http_conn_accept(ls->data, fd);
}

static int web_start(struct loop *l)
{
    const struct config *cfg = l->srv->cfg;
    struct web_loop *wl = calloc(1, sizeof(*wl));
    if (!wl)
        return -1;
    wl->headers = calloc(cfg->max_headers, sizeof(*wl->headers));
    if (!wl->headers) {
        free(wl);
        return -1;
    }
    wl->loop = l;
    wl->srv = l->srv;
    wl->limits = (struct http1_limits){
        .max_head = cfg->max_head,
        .max_uri = cfg->max_uri,
        .max_headers = cfg->max_headers,
        .max_body = cfg->max_body,
    };
    l->modules[MODULE_WEB] = wl;
    const char *step = "";
    int ret =
        listener_open(&wl->listener, l, cfg->host, cfg->port, cfg->backlog, on_accept, &step);
    if (ret < 0) {
        LOG(LOG_ERROR, "web: cannot listen", L_STR("host", cfg->host), L_INT("port", cfg->port),
            L_STR("step", step), L_STR("error", strerror(-ret)));
        return ret;
    }
    wl->listener.data = wl;
    return 0;
}

static void web_stop(struct loop *l)
{
    struct web_loop *wl = web_loop_of(l);
    if (!wl || wl->draining)
        return;
    wl->draining = true;
    listener_close(&wl->listener);
    http_conn_drain(wl);
}

static void web_cleanup(struct server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        struct web_loop *wl = s->loops[i].modules[MODULE_WEB];
        if (!wl)
            continue;
        free(wl->headers);
        free(wl);
        s->loops[i].modules[MODULE_WEB] = NULL;
    }
}

const struct module web_module = {
    .name = "web",
    .summary = "HTTP API: /healthz, /v1/...",
    .is_role = true,
    .start = web_start,
    .stop = web_stop,
    .cleanup = web_cleanup,
};
