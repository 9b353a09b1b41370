/*
 * pg_array.c - PostgreSQL array literals; see pg_array.h.
 */
#include "kernel/pg_array.h"

#include <stdio.h>
#include <stdlib.h>

#include "kernel/xalloc.h"

static char *room(struct pg_array *a, size_t n)
{
    if (a->cap - a->len <= n) {
        while (a->cap - a->len <= n)
            a->cap = a->cap ? a->cap * 2 : 64;
        a->s = xrealloc(a->s, a->cap);
    }
    return a->s + a->len;
}

static void separate(struct pg_array *a)
{
    if (a->n++)
        *room(a, 1) = ',', a->len++;
}

void pg_array_begin(struct pg_array *a)
{
    a->len = 0;
    a->n = 0;
    *room(a, 1) = '{';
    a->len = 1;
}

void pg_array_int(struct pg_array *a, long long v)
{
    separate(a);
    a->len += (size_t)snprintf(room(a, 24), 24, "%lld", v);
}

void pg_array_null(struct pg_array *a)
{
    separate(a);
    a->len += (size_t)snprintf(room(a, 5), 5, "NULL");
}

void pg_array_text(struct pg_array *a, const char *s, size_t n)
{
    separate(a);
    char *o = room(a, 2 * n + 2);
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k++] = '"';
    a->len += k;
}

const char *pg_array_end(struct pg_array *a)
{
    char *o = room(a, 2);
    o[0] = '}';
    o[1] = 0;
    a->len++;
    return a->s;
}

void pg_array_free(struct pg_array *a)
{
    free(a->s);
    *a = (struct pg_array){0};
}
