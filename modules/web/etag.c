/*
 * etag.c - If-None-Match against a strong ETag, for the documents built
 * into the binary (openapi.c, ui.c): one matcher, so both answer 304 by
 * the same rules.
 */
#include <stdbool.h>
#include <string.h>

#include "modules/web/web.h"

/* Does an If-None-Match list (RFC 9110 13.1.2: "*", or ETags separated by
 * commas, weak ones compared weakly) name etag? */
static bool list_names(const char *v, size_t n, const char *etag)
{
    size_t tag = strlen(etag);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i < n && v[i] == '*')
            return true;
        if (i + 2 <= n && v[i] == 'W' && v[i + 1] == '/')
            i += 2;
        if (i + tag <= n && !memcmp(v + i, etag, tag))
            return true;
        while (i < n && v[i] != ',')
            i++;
    }
    return false;
}

bool web_etag_matches(const struct web_request *r, const char *etag)
{
    const struct http1_header *h = http1_find_header(r->http, "if-none-match");
    return h && list_names(h->value, h->value_len, etag);
}
