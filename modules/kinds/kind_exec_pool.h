/*
 * kind_exec_pool.h - `exec` kinds in pool mode: long-lived processes that
 * take one job per line, without a program start per job.
 *
 * Each worker loop runs its share of `processes` (at least one) per pool
 * kind, started with the loop. Trireme writes a job as one JSON line on a
 * process' stdin ({"id","kind","queue","attempt","max_attempts","payload"});
 * the process answers with one line per outcome or progress report on its
 * stdout:
 *   {"id": N, "ok": true, "result": ...}
 *   {"id": N, "ok": false, "error": "...", "retry": false}   (retry: default true)
 *   {"id": N, "progress": 45, "step": "..."}
 * A process holds at most jobs_per_process jobs at once. Its stderr lines are
 * logged with its pid. A process that exits or crashes fails its in-flight
 * jobs with a retryable error and is started again with a backoff (100 ms,
 * doubled up to 10 s, back to 100 ms once it completes a job); one that has
 * taken max_jobs_per_process jobs gets end of file once idle and is replaced
 * at once. Stopping a job in flight (time limit, cancellation, lease loss)
 * stops its process (SIGTERM, SIGKILL after kill_after): the other jobs it
 * held are retried. On drain, idle processes get end of file and must exit.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_POOL_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_POOL_H

#define EXEC_POOL_BACKOFF_MIN_MS 100
#define EXEC_POOL_BACKOFF_MAX_MS 10000

struct loop;
struct job_run;
struct declared_kind;
struct exec_pool;

struct exec_pool *exec_pool_new(struct loop *l, const struct declared_kind *dk, unsigned nprocs);
void exec_pool_start(struct exec_pool *p, struct job_run *r);
void exec_pool_stop(struct exec_pool *p, struct job_run *r);
void exec_pool_drain(struct exec_pool *p);
/* At exit: kill and reap every process; no run is touched. */
void exec_pool_free(struct exec_pool *p);

#endif
