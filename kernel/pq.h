/*
 * pq.h - libpq, loaded on first use.
 *
 * Linking libpq pulls some twenty shared libraries (OpenSSL, GnuTLS,
 * Kerberos, LDAP) into every process, which alone triples the resident
 * memory of a web role that never talks to PostgreSQL and slows every
 * `trireme health` probe. So libpq is dlopen()ed by pq_load() the first
 * time something needs it, and every PQ* call goes through one table of
 * function pointers. Code includes this header instead of <libpq-fe.h> and
 * calls PQ* functions as usual; the macros below route them. A new PQ*
 * function used anywhere must be added to both lists (the link fails
 * otherwise, so it cannot be forgotten silently).
 *
 * Functions that can fail return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_PQ_H
#define TRIREME_KERNEL_PQ_H

#include <libpq-fe.h>

#define PQ_FUNCTIONS(X)                                                                            \
    X(PQclear)                                                                                     \
    X(PQconnectPoll)                                                                               \
    X(PQconnectStart)                                                                              \
    X(PQconnectStartParams)                                                                        \
    X(PQconnectdb)                                                                                 \
    X(PQconsumeInput)                                                                              \
    X(PQenterPipelineMode)                                                                         \
    X(PQerrorMessage)                                                                              \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQfinish)                                                                                    \
    X(PQflush)                                                                                     \
    X(PQfname)                                                                                     \
    X(PQfreemem)                                                                                   \
    X(PQftype)                                                                                     \
    X(PQgetResult)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQisBusy)                                                                                    \
    X(PQnfields)                                                                                   \
    X(PQnotifies)                                                                                  \
    X(PQntuples)                                                                                   \
    X(PQparameterStatus)                                                                           \
    X(PQpipelineSync)                                                                              \
    X(PQresStatus)                                                                                 \
    X(PQresultErrorField)                                                                          \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsendQuery)                                                                                 \
    X(PQsendQueryParams)                                                                           \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQsetnonblocking)                                                                            \
    X(PQsslAttribute)                                                                              \
    X(PQsslInUse)                                                                                  \
    X(PQsocket)                                                                                    \
    X(PQstatus)

struct pq_api {
#define PQ_FIELD(name) __typeof__(&name) name;
    PQ_FUNCTIONS(PQ_FIELD)
#undef PQ_FIELD
};

/* Filled once by pq_load(), read-only afterwards. */
extern struct pq_api pq_api;

/* Load libpq (thread-safe, once). 0, or a negative errno with the reason
 * in *err: -ELIBACC when libpq.so.5 is not found, -ELIBBAD when it lacks a
 * function we need (older than PostgreSQL 14). */
int pq_load(const char **err);

#ifndef TRIREME_PQ_IMPLEMENTATION
#define PQclear              pq_api.PQclear
#define PQconnectPoll        pq_api.PQconnectPoll
#define PQconnectStart       pq_api.PQconnectStart
#define PQconnectStartParams pq_api.PQconnectStartParams
#define PQconnectdb          pq_api.PQconnectdb
#define PQconsumeInput       pq_api.PQconsumeInput
#define PQenterPipelineMode  pq_api.PQenterPipelineMode
#define PQerrorMessage       pq_api.PQerrorMessage
#define PQexec               pq_api.PQexec
#define PQexecParams         pq_api.PQexecParams
#define PQfinish             pq_api.PQfinish
#define PQflush              pq_api.PQflush
#define PQfname              pq_api.PQfname
#define PQfreemem            pq_api.PQfreemem
#define PQftype              pq_api.PQftype
#define PQgetResult          pq_api.PQgetResult
#define PQgetisnull          pq_api.PQgetisnull
#define PQgetlength          pq_api.PQgetlength
#define PQgetvalue           pq_api.PQgetvalue
#define PQisBusy             pq_api.PQisBusy
#define PQnfields            pq_api.PQnfields
#define PQnotifies           pq_api.PQnotifies
#define PQntuples            pq_api.PQntuples
#define PQparameterStatus    pq_api.PQparameterStatus
#define PQpipelineSync       pq_api.PQpipelineSync
#define PQresStatus          pq_api.PQresStatus
#define PQresultErrorField   pq_api.PQresultErrorField
#define PQresultErrorMessage pq_api.PQresultErrorMessage
#define PQresultStatus       pq_api.PQresultStatus
#define PQsendQuery          pq_api.PQsendQuery
#define PQsendQueryParams    pq_api.PQsendQueryParams
#define PQsetNoticeProcessor pq_api.PQsetNoticeProcessor
#define PQsetnonblocking     pq_api.PQsetnonblocking
#define PQsslAttribute       pq_api.PQsslAttribute
#define PQsslInUse           pq_api.PQsslInUse
#define PQsocket             pq_api.PQsocket
#define PQstatus             pq_api.PQstatus
#endif

#endif
