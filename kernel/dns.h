/*
 * dns.h - asynchronous name resolution on the ring with c-ares, and a
 * cache that keeps each answer as long as its TTL says (clamped to
 * [DNS_MIN_TTL_MS, DNS_MAX_TTL_MS]).
 *
 * One resolver per loop (not shared between threads). c-ares' sockets are
 * watched with fd_watch and its retransmission deadline is one loop timer,
 * so nothing blocks. Lookups of a name already being resolved wait for the
 * same answer. IPv4 and IPv6 addresses are both asked for (AF_UNSPEC) and
 * kept in c-ares' order (RFC 6724 sorted). A numeric host skips all this.
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_DNS_H
#define TRIREME_KERNEL_DNS_H

#include <ares.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kernel/list.h"
#include "kernel/loop.h"
#include "kernel/timer.h"

/* Addresses kept per name. */
#define DNS_MAX_ADDRS 8
/* Names cached per resolver; beyond it the entry expiring first goes. */
#define DNS_CACHE_MAX 256
/* Answers are cached at least this long (a 0 TTL or /etc/hosts) and at most this long. */
#define DNS_MIN_TTL_MS 1000u
#define DNS_MAX_TTL_MS (300u * 1000u)
/* c-ares' per-try timeout and tries per server. */
#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES      2

struct dns_addrs {
    int n;
    struct sockaddr_storage addr[DNS_MAX_ADDRS];
    socklen_t len[DNS_MAX_ADDRS];
};

struct dns_lookup;
/* err: 0, -EHOSTUNREACH (no such name or no address), -ETIMEDOUT, -EAGAIN,
 * -ECANCELED (resolver closed). addrs valid only during the call; ports are 0. */
typedef void (*dns_fn)(struct dns_lookup *lk, int err, const struct dns_addrs *addrs);

struct dns_lookup {
    dns_fn fn;
    void *data;
    /* internal */
    struct list link; /* on its entry's waiters */
};

struct dns_entry;

struct dns {
    struct loop *loop;
    ares_channel ch;
    struct timer timer;
    struct list watches; /* struct dns_watch, one per c-ares socket */
    struct dns_entry *entries;
    unsigned nentries;
    bool closing;
    uint64_t lookups, cache_hits; /* for metrics */
};

int dns_init(struct dns *d, struct loop *l);
/* Ask these servers ("ip[:port],...") instead of /etc/resolv.conf's.
 * 0 or -EINVAL. */
int dns_set_servers(struct dns *d, const char *csv);
/* Resolve name: lk->fn runs once, maybe before this returns (cached or
 * numeric). lk must stay valid until then, or until dns_cancel(). */
void dns_resolve(struct dns *d, const char *name, struct dns_lookup *lk);
/* lk->fn will not run. */
void dns_cancel(struct dns_lookup *lk);
/* Fail pending lookups with -ECANCELED, stop watching, free. */
void dns_close(struct dns *d);

#endif
