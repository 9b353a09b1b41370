/*
 * kind_exec.h - `exec` kinds: a program the operator declared in the
 * --kinds file, started once per attempt (one-shot mode).
 *
 * Each attempt: the program starts in its own process group without
 * blocking the loop; it reads the job as JSON on stdin
 * ({"id","kind","queue","attempt","max_attempts","payload"}); its stdout
 * (up to max_stdout bytes) is the result, JSON when it parses and text
 * otherwise; each stderr line is logged with the job id, and the last
 * stderr_tail bytes go into the error; lines written to the descriptor
 * named by TRIREME_PROGRESS_FD report progress. Exit 0 succeeds, 75
 * (EX_TEMPFAIL) retries, other exits and signals fail without retry. The
 * leader's exit ends the attempt: what is left of its process group is
 * killed and every process of it is reaped by someone (the leader by us).
 * stop() (soft time limit, cancellation, drain) sends SIGTERM to the group,
 * then SIGKILL after kill_after. At most `concurrency` programs of one kind
 * run at once, split across the worker's loops (at least one per loop);
 * jobs beyond it wait, holding their lease, and their time limit runs.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_KILL_AFTER_MS   5000      /* SIGTERM to SIGKILL of the process group */
#define EXEC_MAX_STDOUT      (1 << 20) /* the result */
#define EXEC_STDERR_TAIL     2048      /* stderr bytes kept for the error */
#define EXEC_MAX_PROGRESS    1024      /* one progress line */
#define EXEC_STDERR_LINE_MAX 4096      /* a longer stderr line is logged in pieces */
#define EXEC_MAX_ARGS        256
#define EXEC_MAX_ENV         256
#define EXEC_CONCURRENCY_MAX 10000
#define EXEC_PROGRESS_FD     3 /* the child's progress descriptor */

#define EXEC_POOL_MAX_PROCS 256
#define EXEC_POOL_MAX_JOBS  1000 /* jobs_per_process */

struct loop;
struct server;

struct exec_spec {
    char **argv; /* NULL-terminated; argv[0] an absolute path (PATH searched at load) */
    char **env;  /* NULL-terminated NAME=VALUE: inherited at load, then declared */
    unsigned nenv;
    char *cwd; /* NULL: trireme's own */
    unsigned concurrency;
    uint64_t timeout_ms, kill_after_ms;
    uint64_t memory_limit; /* RLIMIT_AS bytes; 0: none */
    /* mode "pool": long-lived processes, one job per line (kind_exec_pool.h) */
    bool pool;
    unsigned processes, jobs_per_process, max_jobs_per_process; /* max 0: never recycle */
    size_t max_stdout, stderr_tail, max_progress_line;
};

/* Fill *s from a kinds-file entry. 0, or -1 with *field and msg naming the
 * problem (field: static, or a key of entry). */
int exec_spec_parse(json_t *entry, struct exec_spec *s, const char **field, char *msg, size_t cap);
void exec_spec_free(struct exec_spec *s);
/* A kinds-file field as a duration ("30s", or seconds) or a size ("64k", or
 * bytes) within [lo, hi]; absent leaves *out. 0, or -1 with *field and msg
 * set. Shared by every type's parser. */
int kinds_field_duration(json_t *e, const char *key, uint64_t *out, uint64_t lo, uint64_t hi,
                         const char **field, char *msg, size_t cap);
int kinds_field_size(json_t *e, const char *key, uint64_t *out, uint64_t lo, uint64_t hi,
                     const char **field, char *msg, size_t cap);

/* One progress line (without its newline): "45", "45 step text", "45%
 * step", or {"percent": 45, "step": "..."}. 0 with *percent (0..100) and
 * step (NUL-terminated, "" when none) filled, or -1. */
int exec_progress_parse(const char *line, size_t len, int *percent, char *step, size_t cap);

/* In place: invalid UTF-8 and NUL become '?', so the text is a valid
 * JSON string and PostgreSQL text. */
void exec_utf8_clean(char *s, size_t n);

/* The loop's state for running exec kinds (the kinds module's start and
 * cleanup hooks). exec_loop_free kills and reaps what still runs. */
struct kinds_file;
void *exec_loop_new(struct loop *l, const struct kinds_file *f);
void exec_loop_free(void *el);
/* The worker drains: pool processes get end of file once idle. */
void exec_loop_drain(void *el);

/* The job_kind start/stop of every exec kind. */
struct job_run;
void exec_start(struct job_run *r);
void exec_stop(struct job_run *r);

#endif
