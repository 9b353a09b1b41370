/*
 * csv_list.c - walking a comma-separated setting; see csv_list.h.
 */
#include "proto/csv_list.h"

#include <string.h>

bool csv_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    if (!*s)
        return false;
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    *p = comma ? comma + 1 : s + n;
    while (n && *s == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    *item = s;
    *len = n;
    return true;
}
