/*
 * pg_array.h - PostgreSQL array literals ("{1,NULL,\"a b\"}") for query
 * parameters, the one way they are built.
 *
 * The buffer is reused: pg_array_begin empties it without giving its
 * memory back, so a literal rebuilt every heartbeat allocates only when it
 * outgrows every earlier one.
 */
#ifndef TRIREME_KERNEL_PG_ARRAY_H
#define TRIREME_KERNEL_PG_ARRAY_H

#include <stddef.h>

struct pg_array {
    char *s;
    size_t len, cap;
    unsigned n; /* elements added since pg_array_begin */
};

void pg_array_begin(struct pg_array *a);
void pg_array_int(struct pg_array *a, long long v);
void pg_array_null(struct pg_array *a);
/* A text element, quoted (so empty strings, NULL, commas and braces stay
 * text) with " and \ escaped. */
void pg_array_text(struct pg_array *a, const char *s, size_t n);
/* Closes the literal and returns it (valid until the next begin). */
const char *pg_array_end(struct pg_array *a);
void pg_array_free(struct pg_array *a);

#endif
