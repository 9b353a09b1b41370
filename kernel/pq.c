/*
 * pq.c - loading libpq on first use (see pq.h for why).
 */
#define TRIREME_PQ_IMPLEMENTATION
#include "kernel/pq.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

struct pq_api pq_api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error; /* written inside pthread_once only */
static int load_errno;         /* likewise: -ELIBACC or -ELIBBAD */
static char load_error_buf[256];

static void load(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error_buf, sizeof(load_error_buf),
                 "libpq not found (install the libpq5 package): %s", dlerror());
        load_error = load_error_buf;
        load_errno = -ELIBACC;
        return;
    }
#define PQ_SYM(name)                                                                               \
    if (!(*(void **)&pq_api.name = dlsym(h, #name))) {                                             \
        snprintf(load_error_buf, sizeof(load_error_buf), "libpq has no %s (need PostgreSQL 14+)",  \
                 #name);                                                                           \
        load_error = load_error_buf;                                                               \
        load_errno = -ELIBBAD;                                                                     \
        return;                                                                                    \
    }
    PQ_FUNCTIONS(PQ_SYM)
#undef PQ_SYM
}

int pq_load(const char **err)
{
    pthread_once(&once, load);
    if (load_error) {
        if (err)
            *err = load_error;
        return load_errno;
    }
    return 0;
}
