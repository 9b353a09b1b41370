/*
 * json_escape.c - JSON string escaping (see json_escape.h).
 */
#include "proto/json_escape.h"

#include <string.h>

size_t json_escape(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[6];
        size_t el = 1;
        e[0] = (char)c;
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            el = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            e[0] = '\\';
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        if (o + el >= cap)
            break;
        memcpy(dst + o, e, el);
        o += el;
    }
    dst[o] = 0;
    return o;
}
