/*
 * sha1.h - SHA-1 of a byte string, pure. Redis names cached Lua scripts by
 * the SHA-1 of their text (EVALSHA); this is only that, not a security
 * primitive.
 */
#ifndef TRIREME_PROTO_SHA1_H
#define TRIREME_PROTO_SHA1_H

#include <stddef.h>
#include <stdint.h>

void sha1(const void *data, size_t len, uint8_t out[20]);
/* 40 lower-case hex digits and a NUL. */
void sha1_hex(const void *data, size_t len, char out[41]);

#endif
