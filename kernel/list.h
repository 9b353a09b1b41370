/*
 * list.h - an intrusive, circular, doubly linked list.
 *
 * A struct that lives on a list embeds a struct list; the head is a bare
 * struct list initialised with list_init(). Removal is O(1) and needs no
 * head, and a removed node points to itself, so removing twice is harmless.
 */
#ifndef TRIREME_KERNEL_LIST_H
#define TRIREME_KERNEL_LIST_H

#include <stdbool.h>

#include "kernel/container_of.h"

struct list {
    struct list *prev, *next;
};

static inline void list_init(struct list *l)
{
    l->prev = l->next = l;
}

static inline bool list_empty(const struct list *l)
{
    return l->next == l;
}

/* n goes right after at (at the head: first). */
static inline void list_insert(struct list *at, struct list *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

/* n goes last. */
static inline void list_append(struct list *head, struct list *n)
{
    list_insert(head->prev, n);
}

static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define list_entry(node, type, member) container_of(node, type, member)

/* Every entry; the body must not remove any. */
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Every entry; the body may remove (and free) the current one. */
#define list_for_each_safe(pos, tmp, head)                                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
