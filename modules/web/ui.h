/*
 * ui.h - the dashboard's static files (modules/web/ui/), built into the
 * binary (build.zig's embedUi writes ui_gen.c: each file's bytes,
 * Content-Type and a strong ETag computed from those bytes) and served by
 * GET /ui and /ui/<file> (ui.c).
 */
#ifndef TRIREME_MODULES_WEB_UI_H
#define TRIREME_MODULES_WEB_UI_H

struct ui_file {
    const char *name;         /* "index.html", "app.js", ... */
    const char *content_type; /* "text/html; charset=utf-8", ... */
    const char *etag;         /* quoted, as the ETag header carries it */
    unsigned len;
    const char *body;
};

extern const struct ui_file ui_files[];
extern const unsigned ui_files_count;

#endif
