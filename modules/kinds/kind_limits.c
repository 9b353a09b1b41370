/*
 * kind_limits.c - parsing --kind-limits (pure).
 */
#include "modules/kinds/kind_limits.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/limits/gcra.h"
#include "modules/kinds/kind.h"

int kind_limits_parse(const char *text, struct kind_limits *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof(*out));
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", text);
    char *save = NULL;
    for (char *e = strtok_r(buf, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*e))
            e++;
        if (!*e)
            continue;
        if (out->n == KIND_LIMITS_MAX) {
            snprintf(msg, cap, "at most %d kind limits", KIND_LIMITS_MAX);
            return -1;
        }
        struct kind_limit *k = &out->v[out->n];
        char rate[64], extra[8];
        if (sscanf(e, "%63s %63s %7s", k->kind, rate, extra) != 2) {
            snprintf(msg, cap, "kind limit '%.60s': expected KIND N/WINDOW", e);
            return -1;
        }
        if (!job_kind_find(k->kind, strlen(k->kind))) {
            snprintf(msg, cap, "kind limit '%.60s': no job kind '%s'", e, k->kind);
            return -1;
        }
        const char *why = gcra_parse_rate(rate, &k->limit, &k->window_ms);
        if (why) {
            snprintf(msg, cap, "kind limit '%.60s': %s", e, why);
            return -1;
        }
        out->n++;
    }
    return 0;
}

const struct kind_limit *kind_limit_find(const struct kind_limits *l, const char *kind)
{
    for (unsigned i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].kind, kind))
            return &l->v[i];
    return NULL;
}
