/*
 * zone.c - IANA time zones from the system tz database (tzdata), for
 * schedules (validated by sched_input.c, evaluated by beat).
 *
 * proto/tzfile parses; this file only finds and reads the file, refusing
 * names that could escape the tz directory. Zones are loaded when a
 * schedule is validated or loaded, never on a hot path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"
#include "modules/schedules/schedules.h"

#define ZONE_FILE_MAX (1 << 20) /* real TZif files are under 4 KB */

static bool zone_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n >= SCHED_ZONE_NAME_MAX || name[0] == '/' || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '-' || c == '+';
        if (!ok || (c == '/' && (name[i + 1] == '/' || name[i + 1] == '.')))
            return false;
    }
    return true;
}

int sched_zone_load(const char *tzdir, const char *name, struct tz *out, char *err, size_t cap)
{
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        tz_init_utc(out);
        return 0;
    }
    if (!zone_name_ok(name)) {
        /* Not echoed: it may hold anything, control characters included. */
        snprintf(err, cap, "is not an IANA time zone name (like Europe/Berlin)");
        return -1;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tzdir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "unknown time zone '%s' (not in %s: %s)", name, tzdir, strerror(errno));
        return -1;
    }
    uint8_t *buf = xmalloc(ZONE_FILE_MAX);
    size_t len = fread(buf, 1, ZONE_FILE_MAX, f);
    fclose(f);
    char why[160] = "";
    int rc = tzfile_parse(buf, len, out, why, sizeof(why));
    free(buf);
    if (rc) {
        snprintf(err, cap, "time zone '%s' cannot be read: %s", name, why);
        return -1;
    }
    return 0;
}

const struct tz *sched_zones_get(struct sched_zones *zs, const char *tzdir, const char *name,
                                 char *err, size_t cap)
{
    for (unsigned i = 0; i < zs->n; i++)
        if (!strcmp(zs->v[i].name, name))
            return zs->v[i].tz;
    struct tz *z = xmalloc(sizeof(*z));
    if (sched_zone_load(tzdir, name, z, err, cap)) {
        free(z);
        return NULL;
    }
    if (zs->n == zs->cap) {
        zs->cap = zs->cap ? zs->cap * 2 : 8;
        zs->v = xrealloc(zs->v, zs->cap * sizeof(*zs->v));
    }
    snprintf(zs->v[zs->n].name, sizeof(zs->v[zs->n].name), "%s", name);
    zs->v[zs->n++].tz = z;
    return z;
}

void sched_zones_free(struct sched_zones *zs)
{
    for (unsigned i = 0; i < zs->n; i++)
        free(zs->v[i].tz);
    free(zs->v);
    *zs = (struct sched_zones){0};
}
