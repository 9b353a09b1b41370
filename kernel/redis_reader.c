/*
 * redis_reader.c - hiredis' reader with a per-reply array budget (see
 * redis_reader.h for why).
 *
 * hiredis keeps its reply constructors static; redisReaderCreate() points
 * the reader at them, so the guard takes that table as its fallback and
 * installs its own in front. hiredis hands the reader's privdata to every
 * constructor through the read task, which is how they find the guard.
 */
#include "kernel/redis_reader.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernel/xalloc.h"

struct reader_guard {
    const redisReplyObjectFunctions *dflt;
    size_t budget; /* array slots left for the reply being read */
    int refused;   /* the count that went over, for the error */
};

static struct reader_guard *guard_of(const redisReadTask *t)
{
    return t->privdata;
}

static void *guarded_string(const redisReadTask *t, char *s, size_t n)
{
    return guard_of(t)->dflt->createString(t, s, n);
}

static void *guarded_array(const redisReadTask *t, int n)
{
    struct reader_guard *g = guard_of(t);
    if (!t->parent)
        g->budget = REDIS_REPLY_MAX_ELEMENTS; /* a new reply */
    if (n > 0 && (size_t)n > g->budget) {
        g->refused = n;
        return NULL; /* hiredis reports it as out of memory */
    }
    if (n > 0)
        g->budget -= (size_t)n;
    return g->dflt->createArray(t, n);
}

static void *guarded_integer(const redisReadTask *t, long long v)
{
    return guard_of(t)->dflt->createInteger(t, v);
}

static void *guarded_nil(const redisReadTask *t)
{
    return guard_of(t)->dflt->createNil(t);
}

static const redisReplyObjectFunctions guarded = {
    .createString = guarded_string,
    .createArray = guarded_array,
    .createInteger = guarded_integer,
    .createNil = guarded_nil,
    .freeObject = freeReplyObject,
};

static void oom(void)
{
    static const char msg[] = "trireme: out of memory creating a Redis reader\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        abort();
    abort();
}

redisReader *redis_reader_new(void)
{
    redisReader *r = redisReaderCreate();
    if (!r)
        oom();
    struct reader_guard *g = xcalloc(1, sizeof(*g));
    g->dflt = r->fn;
    g->budget = REDIS_REPLY_MAX_ELEMENTS;
    r->fn = (redisReplyObjectFunctions *)&guarded; /* hiredis only reads it */
    r->privdata = g;
    r->maxbuf = REDIS_READER_MAXBUF;
    return r;
}

void redis_reader_free(redisReader *r)
{
    if (!r)
        return;
    free(r->privdata);
    redisReaderFree(r);
}

const char *redis_reader_error(redisReader *r)
{
    const struct reader_guard *g = r->privdata;
    if (g->refused) /* hiredis wrote "Out of memory" */
        snprintf(r->errstr, sizeof(r->errstr),
                 "reply asks for an array of %d elements (limit %d per reply)", g->refused,
                 REDIS_REPLY_MAX_ELEMENTS);
    return r->errstr;
}
