/*
 * urlquery.h - application/x-www-form-urlencoded query strings (the part of
 * a URI after '?'): finding a parameter and percent-decoding its value.
 *
 * Pure: no I/O, no allocation. Pairs are separated by '&'; a pair without
 * '=' has an empty value; names are compared as sent (not decoded). In a
 * value, '+' is a space and %XX a byte; a '%' not followed by two hex
 * digits is malformed, and so is a decoded NUL (values become C strings).
 */
#ifndef TRIREME_PROTO_URLQUERY_H
#define TRIREME_PROTO_URLQUERY_H

#include <stddef.h>

/* Decode s[0..n) into out (NUL-terminated). Returns the decoded length, or
 * -1 when malformed or when it does not fit in cap (NUL included). */
long urlquery_decode(const char *s, size_t n, char *out, size_t cap);
/* The same for a path segment (RFC 3986 3.3), where '+' is itself: clients
 * percent-encode a path parameter's reserved characters (":" "@" "+"). */
long urlpath_decode(const char *s, size_t n, char *out, size_t cap);

/* The first parameter called name in q[0..qn) (q may be NULL), decoded
 * into out. Returns 1 when present, 0 when absent, -1 when its value is
 * malformed or too long for out. */
int urlquery_get(const char *q, size_t qn, const char *name, char *out, size_t cap);

#endif
