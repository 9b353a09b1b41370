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

size_t resp_array_size(int argc)
{
    return 1 + digits((size_t)argc) + 2;
}

size_t resp_bulk_size(size_t len)
{
    return 1 + digits(len) + 2 + len + 2;
}

char *resp_array_write(char *out, int argc)
{
    *out++ = '*';
    out += put_uint(out, (size_t)argc);
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

char *resp_bulk_write(char *out, const char *p, size_t len)
{
    *out++ = '$';
    out += put_uint(out, len);
    *out++ = '\r';
    *out++ = '\n';
    if (len)
        memcpy(out, p, len);
    out += len;
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

static size_t arg_len(const char *const *argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

size_t resp_command_size(int argc, const char *const *argv, const size_t *lens)
{
    size_t n = resp_array_size(argc);
    for (int i = 0; i < argc; i++)
        n += resp_bulk_size(arg_len(argv, lens, i));
    return n;
}

size_t resp_command_write(char *out, int argc, const char *const *argv, const size_t *lens)
{
    char *p = resp_array_write(out, argc);
    for (int i = 0; i < argc; i++)
        p = resp_bulk_write(p, argv[i], arg_len(argv, lens, i));
    return (size_t)(p - out);
}
