/*
 * json_escape.h - the inside of a JSON string literal, from arbitrary bytes.
 *
 * Pure: no I/O, no allocation. Quotes, backslashes and every byte outside
 * printable ASCII (controls, DEL, and each byte of a multi-byte sequence)
 * become \uXXXX or \" \\, so the result is valid JSON whatever the input
 * was: messages quote request bytes, which need not be valid UTF-8.
 */
#ifndef TRIREME_PROTO_JSON_ESCAPE_H
#define TRIREME_PROTO_JSON_ESCAPE_H

#include <stddef.h>

/* Escape s[0..n) into dst (always NUL-terminated when cap > 0). Output is
 * cut before the first escape that would not fit whole, so it never ends in
 * half an escape. Returns the length written (without the NUL). */
size_t json_escape(char *dst, size_t cap, const char *s, size_t n);

#endif
