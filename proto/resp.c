/*
 * resp.c - RESP command encoding (see resp.h).
 */
#include "proto/resp.h"

#include <string.h>

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Decimal v at out; returns the digits written. */
static size_t put_uint(char *out, size_t v)
{
    size_t n = digits(v);
    for (size_t i = n; i > 0; i--) {
        out[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return n;
}

static size_t arg_len(const char *const *argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

size_t resp_command_size(int argc, const char *const *argv, const size_t *lens)
{
    size_t n = 1 + digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, lens, i);
        n += 1 + digits(len) + 2 + len + 2;
    }
    return n;
}

size_t resp_command_write(char *out, int argc, const char *const *argv, const size_t *lens)
{
    char *p = out;
    *p++ = '*';
    p += put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, lens, i);
        *p++ = '$';
        p += put_uint(p, len);
        *p++ = '\r';
        *p++ = '\n';
        if (len)
            memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - out);
}
