/*
 * kind.h - job kinds: what a worker can run, registered like modules.
 *
 * A kind is one static descriptor listed in modules/kinds/kinds.c. Handlers are
 * asynchronous: start() begins the job and returns; the job ends when the
 * handler calls job_finish() (now or from any later completion, minutes
 * later if need be). stop() asks a running job to end early (soft time
 * limit, cancellation, shutdown); the hard limit frees the slot without it.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_H
#define TRIREME_MODULES_KINDS_KIND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct job_run;

struct job_kind {
    const char *name;
    const char *summary;
    /* Check a payload at enqueue time; 0 or -1 with msg set. Optional. */
    int (*validate)(json_t *payload, char *msg, size_t cap);
    void (*start)(struct job_run *run);
    void (*stop)(struct job_run *run); /* optional */
};

extern const struct job_kind *const job_kinds[];
extern const unsigned job_kinds_count;

const struct job_kind *job_kind_find(const char *name, size_t len);

#endif
