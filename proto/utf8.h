/*
 * utf8.h - is a byte string well-formed UTF-8 (RFC 3629)?
 *
 * Pure: no I/O, no allocation. Well-formed means what PostgreSQL's text
 * and Redis clients' JSON accept alike: shortest encodings only, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. NUL is refused too:
 * no C string or PostgreSQL text can carry it.
 */
#ifndef TRIREME_PROTO_UTF8_H
#define TRIREME_PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool utf8_valid(const char *s, size_t n);

#endif
