/*
 * recvbuf.h - the loop's provided-buffer ring for multishot recv.
 *
 * The kernel picks a buffer for each recv completion, so sockets with
 * nothing to say hold no memory. Callers copy what they need out of the
 * buffer and give it back at once with recvbuf_put().
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_RECVBUF_H
#define TRIREME_KERNEL_RECVBUF_H

#include <liburing.h>
#include <stdint.h>

#define RECVBUF_GROUP 1

struct recv_bufs {
    struct io_uring_buf_ring *br;
    char *mem;
    uint32_t count, size, mask;
};

int recvbuf_init(struct recv_bufs *rb, struct io_uring *ring, uint32_t count, uint32_t size);
void recvbuf_free(struct recv_bufs *rb, struct io_uring *ring);

static inline char *recvbuf_ptr(struct recv_bufs *rb, uint16_t bid)
{
    return rb->mem + (size_t)bid * rb->size;
}

static inline void recvbuf_put(struct recv_bufs *rb, uint16_t bid)
{
    io_uring_buf_ring_add(rb->br, recvbuf_ptr(rb, bid), rb->size, bid, (int)rb->mask, 0);
    io_uring_buf_ring_advance(rb->br, 1);
}

#endif
