/*
 * kind.h - job kinds: what a worker can run.
 *
 * The registry is the built-in kinds (static descriptors listed in
 * modules/kinds/kinds.c) followed by the kinds the operator declared in the
 * --kinds file (modules/kinds/kinds_file.h), which are loaded once before
 * any loop starts and read-only afterwards. Handlers are asynchronous:
 * start() begins the job and returns; the job ends when the handler calls
 * job_finish() (now or from any later completion, minutes later if need
 * be). stop() asks a running job to end early (soft time limit,
 * cancellation, shutdown); the hard limit frees the slot without it.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_H
#define TRIREME_MODULES_KINDS_KIND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct job_run;
struct kinds_file;

struct job_kind {
    const char *name;
    const char *summary;
    /* The time limit of this kind's jobs that set none; 0: --job-timeout. */
    uint64_t timeout_ms;
    /* Check a payload at enqueue time; 0 or -1 with msg set. Optional. */
    int (*validate)(json_t *payload, char *msg, size_t cap);
    void (*start)(struct job_run *run);
    void (*stop)(struct job_run *run); /* optional */
};

/* Every kind, built-ins first: i in [0, job_kinds_count()). */
unsigned job_kinds_count(void);
const struct job_kind *job_kind_at(unsigned i);
const struct job_kind *job_kind_find(const char *name, size_t len);
/* Built-in only (declared names must not shadow them). */
const struct job_kind *job_kind_builtin(const char *name, size_t len);

/* Make the declared kinds of f (or none: NULL) part of the registry. Called
 * once before any loop thread starts and once after they all ended. */
void job_kinds_declare(const struct kinds_file *f);

#endif
