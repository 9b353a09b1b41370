/*
 * faults.h - how a store's failure is put to an API client (queue_api.h's
 * enum queue_fault), the same for every call on a backend: the job API's
 * and the pull API's.
 */
#ifndef TRIREME_MODULES_QUEUE_FAULTS_H
#define TRIREME_MODULES_QUEUE_FAULTS_H

#include <string.h>

#include "kernel/pg.h"
#include "kernel/redis.h"
#include "modules/queue/queue_api.h"

static inline enum queue_fault queue_fault_pg(PGresult *res)
{
    switch (pg_fault_of(res)) {
    case PG_FAULT_REJECTED:
        return QUEUE_REJECTED;
    case PG_FAULT_INTERNAL:
        return QUEUE_INTERNAL;
    default:
        return QUEUE_UNAVAILABLE;
    }
}

/* Server replies that mean "not now" (loading its data, busy with a
 * script, out of memory, a replica): the same call may succeed later. */
static inline enum queue_fault queue_fault_redis(const redisReply *reply, const char *err)
{
    if (!reply || reply->type != REDIS_REPLY_ERROR || !err)
        return QUEUE_UNAVAILABLE; /* no reply: timeout, connection lost */
    static const char *const later[] = {"LOADING",    "BUSY",     "OOM",       "READONLY",
                                        "MASTERDOWN", "TRYAGAIN", "NOREPLICAS"};
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        if (!strncmp(err, later[i], strlen(later[i])))
            return QUEUE_UNAVAILABLE;
    return QUEUE_INTERNAL;
}

#endif
