/*
 * ui.c - GET /ui, /ui/ and /ui/<file>: the operators' dashboard, static
 * files built into the binary (ui.h; the sources are modules/web/ui/).
 *
 * No credential: the files hold no data. The page asks for an API key or
 * a JWT and sends it on its own calls to /v1, which check it as for any
 * client. The files change only with the binary, but a browser must see a
 * new one right after an upgrade, so they are revalidated on every use
 * (no-cache) and a matching If-None-Match costs a 304 without the body.
 *
 * The Content-Security-Policy allows scripts, styles and connections from
 * this origin only and nothing inline: the page renders job payloads,
 * which are anyone's data, so even a rendering bug must not be able to
 * run a script or send data elsewhere. nosniff keeps a browser from
 * reading a file as another type than the one it is served as.
 */
#include <stdio.h>
#include <string.h>

#include "modules/web/ui.h"
#include "modules/web/web.h"

#define UI_HEADERS                                                                                 \
    "Cache-Control: no-cache\r\n"                                                                  \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'\r\n"                                                                   \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"

static const struct ui_file *ui_find(const char *name, size_t n)
{
    for (unsigned i = 0; i < ui_files_count; i++)
        if (strlen(ui_files[i].name) == n && !memcmp(ui_files[i].name, name, n))
            return &ui_files[i];
    return NULL;
}

void web_ui(struct web_request *r)
{
    size_t n = 0;
    const char *name = web_param(r, "file", &n);
    if (!name) { /* /ui and /ui/: the page */
        name = "index.html";
        n = strlen(name);
    }
    const struct ui_file *f = ui_find(name, n);
    if (!f) {
        web_respond_error(r, 404, "not_found", "no such dashboard file");
        return;
    }
    char extra[512];
    snprintf(extra, sizeof(extra), "ETag: %s\r\n" UI_HEADERS, f->etag);
    if (web_etag_matches(r, f->etag)) {
        web_respond(r, 304, NULL, NULL, 0, extra);
        return;
    }
    web_respond(r, 200, f->content_type, f->body, f->len, extra);
}
