/*
 * dns.c - c-ares on the ring (see dns.h).
 *
 * c-ares reports each socket it opens or closes, and whether it wants to
 * read or write, through its socket-state callback: each becomes an
 * fd_watch. Readiness and the deadline from ares_timeout() both end in
 * ares_process_fd(). An answer fills its cache entry and runs the entry's
 * waiters; entries are found by name with a linear scan (DNS_CACHE_MAX is
 * small, and a hit costs far less than the connection it serves).
 */
#include "kernel/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/fdwatch.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"

struct dns_watch {
    struct fd_watch w;
    struct list link;
    struct dns *d;
};

struct dns_entry {
    struct dns *d;
    char name[256];
    uint64_t expires_ns; /* 0: never resolved */
    struct dns_addrs addrs;
    struct list waiters;
    bool resolving;
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_result;

static void ares_global_init(void)
{
    ares_init_result = ares_library_init(ARES_LIB_INIT_ALL);
}

static void arm_timer(struct dns *d)
{
    struct timeval max = {DNS_TIMEOUT_MS / 1000, 0}, tv;
    struct timeval *t = ares_timeout(d->ch, &max, &tv);
    uint64_t ms = (uint64_t)t->tv_sec * 1000u + (uint64_t)t->tv_usec / 1000u;
    loop_timer_in(d->loop, &d->timer, ms ? ms : 1);
}

static void on_timer(struct loop *l, struct timer *t)
{
    struct dns *d = container_of(t, struct dns, timer);
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (!d->closing)
        arm_timer(d);
}

static void on_ready(struct fd_watch *w, unsigned revents)
{
    struct dns_watch *dw = container_of(w, struct dns_watch, w);
    struct dns *d = dw->d;
    int fd = w->fd;
    bool rd = revents & (POLLIN | POLLERR | POLLHUP), wr = revents & POLLOUT;
    ares_process_fd(d->ch, rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
}

static void watch_stopped(struct fd_watch *w)
{
    free(container_of(w, struct dns_watch, w));
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_watch *dw = NULL;
    for (struct list *pos = d->watches.next; pos != &d->watches; pos = pos->next) {
        struct dns_watch *x = list_entry(pos, struct dns_watch, link);
        if (x->w.fd == fd) {
            dw = x;
            break;
        }
    }
    unsigned ev = (readable ? POLLIN : 0) | (writable ? POLLOUT : 0);
    if (!ev) {
        if (dw) {
            list_remove(&dw->link);
            dw->w.on_stopped = watch_stopped;
            fd_watch_stop(&dw->w);
        }
        return;
    }
    if (dw) {
        fd_watch_set(&dw->w, ev);
        return;
    }
    dw = xcalloc(1, sizeof(*dw));
    dw->d = d;
    list_append(&d->watches, &dw->link);
    fd_watch_start(&dw->w, d->loop, fd, ev, on_ready);
}

int dns_init(struct dns *d, struct loop *l)
{
    memset(d, 0, sizeof(*d));
    d->loop = l;
    d->timer.fn = on_timer;
    list_init(&d->watches);
    pthread_once(&ares_once, ares_global_init);
    if (ares_init_result != ARES_SUCCESS)
        return -ENOMEM;
    struct ares_options o = {
        .sock_state_cb = sock_state,
        .sock_state_cb_data = d,
        .timeout = DNS_TIMEOUT_MS,
        .tries = DNS_TRIES,
    };
    int r =
        ares_init_options(&d->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (r != ARES_SUCCESS) {
        LOG(LOG_ERROR, "dns: cannot start the resolver", L_STR("error", ares_strerror(r)));
        return r == ARES_ENOMEM ? -ENOMEM : -EINVAL;
    }
    d->entries = xcalloc(DNS_CACHE_MAX, sizeof(*d->entries));
    return 0;
}

int dns_set_servers(struct dns *d, const char *csv)
{
    return ares_set_servers_ports_csv(d->ch, csv) == ARES_SUCCESS ? 0 : -EINVAL;
}

static void finish_entry(struct dns_entry *e, int err)
{
    /* Waiters may start new lookups (of this name too): detach them first. */
    struct list w;
    list_init(&w);
    while (!list_empty(&e->waiters)) {
        struct list *x = e->waiters.next;
        list_remove(x);
        list_append(&w, x);
    }
    struct dns_addrs copy = e->addrs;
    while (!list_empty(&w)) {
        struct dns_lookup *lk = list_entry(w.next, struct dns_lookup, link);
        list_remove(&lk->link);
        list_init(&lk->link);
        lk->fn(lk, err, err ? NULL : &copy);
    }
}

static int ares_errno(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
    case ARES_EBADNAME:
        return -EHOSTUNREACH;
    case ARES_ETIMEOUT:
        return -ETIMEDOUT;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct dns_entry *e = arg;
    (void)timeouts;
    e->resolving = false;
    e->expires_ns = 0;
    int err = status == ARES_SUCCESS ? 0 : ares_errno(status);
    if (!err) {
        int ttl = -1;
        e->addrs.n = 0;
        for (struct ares_addrinfo_node *n = ai->nodes; n && e->addrs.n < DNS_MAX_ADDRS;
             n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                n->ai_addrlen > sizeof(struct sockaddr_storage))
                continue;
            memcpy(&e->addrs.addr[e->addrs.n], n->ai_addr, n->ai_addrlen);
            e->addrs.len[e->addrs.n++] = n->ai_addrlen;
            if (ttl < 0 || n->ai_ttl < ttl)
                ttl = n->ai_ttl;
        }
        if (!e->addrs.n) {
            err = -EHOSTUNREACH;
        } else {
            uint64_t ms = ttl > 0 ? (uint64_t)ttl * 1000u : 0;
            if (ms < DNS_MIN_TTL_MS)
                ms = DNS_MIN_TTL_MS;
            if (ms > DNS_MAX_TTL_MS)
                ms = DNS_MAX_TTL_MS;
            e->expires_ns = e->d->loop->now_ns + ms * 1000000ull;
        }
    }
    if (ai)
        ares_freeaddrinfo(ai);
    finish_entry(e, err);
}

static struct dns_entry *find_entry(struct dns *d, const char *name)
{
    struct dns_entry *victim = NULL;
    for (unsigned i = 0; i < d->nentries; i++) {
        struct dns_entry *e = &d->entries[i];
        if (!strcmp(e->name, name))
            return e;
        if (!e->resolving && (!victim || e->expires_ns < victim->expires_ns))
            victim = e;
    }
    struct dns_entry *e;
    if (d->nentries < DNS_CACHE_MAX)
        e = &d->entries[d->nentries++];
    else if (victim)
        e = victim;
    else
        return NULL;
    memset(e, 0, sizeof(*e));
    e->d = d;
    snprintf(e->name, sizeof(e->name), "%s", name);
    list_init(&e->waiters);
    return e;
}

static bool numeric(const char *name, struct dns_addrs *a)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr[0];
    memset(a, 0, sizeof(a->addr[0]));
    if (inet_pton(AF_INET, name, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        a->len[0] = sizeof(*s4);
    } else if (inet_pton(AF_INET6, name, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        a->len[0] = sizeof(*s6);
    } else {
        return false;
    }
    a->n = 1;
    return true;
}

void dns_resolve(struct dns *d, const char *name, struct dns_lookup *lk)
{
    list_init(&lk->link);
    struct dns_addrs num;
    if (numeric(name, &num)) {
        lk->fn(lk, 0, &num);
        return;
    }
    if (d->closing || strlen(name) >= sizeof(d->entries[0].name)) {
        lk->fn(lk, d->closing ? -ECANCELED : -EHOSTUNREACH, NULL);
        return;
    }
    d->lookups++;
    struct dns_entry *e = find_entry(d, name);
    if (!e) {
        lk->fn(lk, -EAGAIN, NULL); /* every entry is being resolved */
        return;
    }
    uint64_t now = d->loop->now_ns;
    if (!e->resolving && e->expires_ns > now) {
        d->cache_hits++;
        struct dns_addrs copy = e->addrs;
        lk->fn(lk, 0, &copy);
        return;
    }
    list_append(&e->waiters, &lk->link);
    if (e->resolving)
        return;
    e->resolving = true;
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ares_getaddrinfo(d->ch, name, NULL, &hints, on_answer, e);
    if (!d->closing)
        arm_timer(d);
}

void dns_cancel(struct dns_lookup *lk)
{
    if (lk->link.next && lk->link.next != &lk->link)
        list_remove(&lk->link);
    list_init(&lk->link);
}

void dns_close(struct dns *d)
{
    if (!d->ch)
        return;
    d->closing = true;
    loop_timer_cancel(d->loop, &d->timer);
    ares_destroy(d->ch); /* runs on_answer with ARES_EDESTRUCTION for each query */
    d->ch = NULL;
    while (!list_empty(&d->watches)) {
        struct dns_watch *dw = list_entry(d->watches.next, struct dns_watch, link);
        list_remove(&dw->link);
        dw->w.on_stopped = watch_stopped;
        fd_watch_stop(&dw->w);
    }
    free(d->entries);
    d->entries = NULL;
    d->nentries = 0;
}
