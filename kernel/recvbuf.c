/*
 * recvbuf.c - registering the provided-buffer ring (liburing 2.3 API).
 */
#include "kernel/recvbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int recvbuf_init(struct recv_bufs *rb, struct io_uring *ring, uint32_t count, uint32_t size)
{
    memset(rb, 0, sizeof(*rb));
    if (count == 0 || (count & (count - 1)) || count > 32768)
        return -EINVAL;
    size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
    void *r = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return -errno;
    /* Anonymous mmap: pages stay unbacked until the kernel first writes a
     * buffer, so an idle process does not pay for them in RSS, and memory
     * checkers see them as initialised. */
    char *mem =
        mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        int e = -errno;
        munmap(r, ring_bytes);
        return e;
    }
    rb->br = r;
    rb->mem = mem;
    rb->count = count;
    rb->size = size;
    rb->mask = count - 1;
    io_uring_buf_ring_init(rb->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)(uintptr_t)r,
        .ring_entries = count,
        .bgid = RECVBUF_GROUP,
    };
    int ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret) {
        munmap(mem, (size_t)count * size);
        munmap(r, ring_bytes);
        memset(rb, 0, sizeof(*rb));
        return ret;
    }
    for (uint32_t i = 0; i < count; i++)
        io_uring_buf_ring_add(rb->br, recvbuf_ptr(rb, (uint16_t)i), size, (uint16_t)i,
                              (int)rb->mask, (int)i);
    io_uring_buf_ring_advance(rb->br, (int)count);
    return 0;
}

void recvbuf_free(struct recv_bufs *rb, struct io_uring *ring)
{
    if (!rb->br)
        return;
    io_uring_unregister_buf_ring(ring, RECVBUF_GROUP);
    munmap(rb->mem, (size_t)rb->count * rb->size);
    munmap(rb->br, (size_t)rb->count * sizeof(struct io_uring_buf));
    memset(rb, 0, sizeof(*rb));
}
