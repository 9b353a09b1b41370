/*
 * rfc3339.h - RFC 3339 timestamps to and from Unix time, pure.
 */
#ifndef TRIREME_PROTO_RFC3339_H
#define TRIREME_PROTO_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-22T07:00:00Z", "...T07:00:00.250+01:00" (also ' ' for 'T',
 * 'z'). Returns 0 and *ms, or -1 when s[0..n) is not a valid timestamp. */
int rfc3339_parse_ms(const char *s, size_t n, int64_t *ms);

/* "2026-11-22T07:00:00.250Z" (UTC, milliseconds) into out; returns the
 * length (24 for years 0..9999), or 0 when cap is too small. */
size_t rfc3339_format_ms(int64_t ms, char *out, size_t cap);

/* "2026-11-22T07:00:00Z" (UTC, whole seconds) into out; returns the
 * length (20 for years 0..9999), or 0 when cap is too small. Seconds
 * beyond +-RFC3339_S_MAX (about a billion years) are clamped to it. */
#define RFC3339_S_MAX ((int64_t)1 << 55)
size_t rfc3339_format_s(int64_t s, char *out, size_t cap);

#endif
