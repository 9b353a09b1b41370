/*
 * buf.c - pooled connection buffers (see buf.h for the why).
 */
#include "kernel/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"

void buf_pool_init(struct buf_pool *p, uint32_t chunk, uint32_t max_free)
{
    memset(p, 0, sizeof(*p));
    p->chunk = chunk;
    p->max_free = max_free;
}

void buf_pool_free(struct buf_pool *p)
{
    while (p->free) {
        void *next = *(void **)p->free;
        free(p->free);
        p->free = next;
    }
    p->nfree = 0;
}

static char *chunk_get(struct buf_pool *p)
{
    if (p->free) {
        char *c = p->free;
        p->free = *(void **)c;
        p->nfree--;
        return c;
    }
    p->allocated++;
    return xmalloc(p->chunk);
}

static void chunk_put(struct buf_pool *p, char *c)
{
    if (p->nfree >= p->max_free) {
        free(c);
        return;
    }
    *(void **)c = p->free;
    p->free = c;
    p->nfree++;
}

void buf_release(struct buf_pool *p, struct buf *b)
{
    if (b->data) {
        if (b->pooled)
            chunk_put(p, b->data);
        else
            free(b->data);
    }
    memset(b, 0, sizeof(*b));
}

char *buf_reserve(struct buf_pool *p, struct buf *b, size_t n)
{
    if (!b->data) {
        if (n <= p->chunk) {
            b->data = chunk_get(p);
            b->cap = p->chunk;
            b->pooled = 1;
        } else {
            if (n > BUF_MAX)
                return NULL;
            b->data = xmalloc(n);
            b->cap = (uint32_t)n;
            b->pooled = 0;
        }
        b->off = b->len = 0;
    }
    if (b->cap - b->len >= n)
        return b->data + b->len;
    uint32_t used = b->len - b->off;
    if (b->off && b->cap - used >= n) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return b->data + b->len;
    }
    size_t need = (size_t)used + n, cap = b->cap;
    while (cap < need)
        cap *= 2;
    if (cap > BUF_MAX)
        return NULL;
    char *d = xmalloc(cap);
    memcpy(d, b->data + b->off, used);
    if (b->pooled)
        chunk_put(p, b->data);
    else
        free(b->data);
    b->data = d;
    b->cap = (uint32_t)cap;
    b->pooled = 0;
    b->off = 0;
    b->len = used;
    return b->data + b->len;
}

int buf_append(struct buf_pool *p, struct buf *b, const void *src, size_t n)
{
    char *w = buf_reserve(p, b, n);
    if (!w)
        return -E2BIG;
    memcpy(w, src, n);
    b->len += (uint32_t)n;
    return 0;
}

void buf_consume(struct buf_pool *p, struct buf *b, size_t n)
{
    b->off += (uint32_t)n;
    if (b->off >= b->len)
        buf_release(p, b);
}

void buf_cut(struct buf_pool *p, struct buf *b, size_t off, size_t n)
{
    char *at = b->data + b->off + off;
    memmove(at, at + n, buf_size(b) - off - n);
    b->len -= (uint32_t)n;
    if (b->off >= b->len)
        buf_release(p, b);
}
