/*
 * xalloc.h - the one allocation policy: allocation cannot fail.
 *
 * Out of memory, a server can neither answer nor log reliably, and every
 * caller checking NULL is code that is never run. These abort the process
 * with a message instead (as Redis' zmalloc does); the supervisor restarts
 * it, and at-least-once delivery re-runs whatever was in flight. Use them
 * everywhere instead of malloc/calloc/realloc/strdup.
 */
#ifndef TRIREME_KERNEL_XALLOC_H
#define TRIREME_KERNEL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
