/*
 * csv_list.h - walking a comma-separated setting ("a, b,c"): the items with
 * the blanks around each trimmed, as flags such as --api-keys,
 * --cors-origins and --pull-kinds take them. Pure: no allocation.
 */
#ifndef TRIREME_PROTO_CSV_LIST_H
#define TRIREME_PROTO_CSV_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The next item of the list at *p: *item and *len (blanks trimmed; an empty
 * item between two commas has len 0), and *p moves past it. false once the
 * list is used up: an empty list has no items, and a trailing comma ends
 * it. */
bool csv_next(const char **p, const char **item, size_t *len);

#endif
