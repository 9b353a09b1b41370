/*
 * buf.h - byte buffers for connections, backed by a per-loop chunk pool.
 *
 * A buffer holds no memory while empty: an idle keep-alive connection costs
 * only its struct. The first byte takes a fixed-size chunk from the loop's
 * pool (a free list, so steady traffic never calls malloc); a buffer that
 * outgrows its chunk moves to a malloc'd block, which is the slow path of
 * large bodies. Emptied buffers hand their memory back at once.
 *
 * Memory comes from xalloc (aborts when exhausted); what can still fail is
 * a buffer outgrowing its 32-bit size. Functions that can fail return 0 or
 * a negative errno.
 */
#ifndef TRIREME_KERNEL_BUF_H
#define TRIREME_KERNEL_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A buffer's size is 32-bit. */
#define BUF_MAX UINT32_MAX

struct buf_pool {
    void *free; /* singly linked through the first word of each chunk */
    uint32_t chunk;
    uint32_t nfree, max_free;
    uint64_t allocated; /* chunks ever taken from malloc, for metrics */
};

struct buf {
    char *data;
    uint32_t off; /* first unread byte */
    uint32_t len; /* end of data */
    uint32_t cap;
    uint8_t pooled; /* data is a pool chunk */
};

void buf_pool_init(struct buf_pool *p, uint32_t chunk, uint32_t max_free);
void buf_pool_free(struct buf_pool *p);

static inline uint32_t buf_size(const struct buf *b)
{
    return b->len - b->off;
}

static inline char *buf_head(const struct buf *b)
{
    return b->data ? b->data + b->off : NULL;
}

/* Room for at least n more bytes; returns where to write, or NULL when the
 * buffer would outgrow BUF_MAX. */
char *buf_reserve(struct buf_pool *p, struct buf *b, size_t n);
static inline void buf_commit(struct buf *b, size_t n)
{
    b->len += (uint32_t)n;
}
/* 0, or -E2BIG when the buffer would outgrow BUF_MAX. */
int buf_append(struct buf_pool *p, struct buf *b, const void *src, size_t n);
/* Remove n bytes at offset off from the head, keeping the rest in order. */
void buf_cut(struct buf_pool *p, struct buf *b, size_t off, size_t n);
/* Drop n bytes from the front; releases the memory when it empties. */
void buf_consume(struct buf_pool *p, struct buf *b, size_t n);
void buf_release(struct buf_pool *p, struct buf *b);

#endif
