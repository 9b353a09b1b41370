/*
 * container_of.h - from a pointer to a member back to its struct.
 *
 * Ops, timers and queries are embedded in the struct they serve, and
 * their callbacks receive the member; this is the one way back.
 */
#ifndef TRIREME_KERNEL_CONTAINER_OF_H
#define TRIREME_KERNEL_CONTAINER_OF_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
