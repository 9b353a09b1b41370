/*
 * kind_exec_pool.c - pool mode of exec kinds; see kind_exec_pool.h.
 *
 * A process' descriptors are watched on the ring like a one-shot
 * program's: the pidfd for its end, stdout and stderr read as data
 * arrives, stdin written as the pipe takes it (the stdin watch asks for
 * POLLOUT only while output is pending). A process is started again only
 * once every watch of the previous one has stopped, since the watches are
 * reused. Outcome lines still in the pipe when a process ends are applied
 * before its remaining jobs are failed.
 */
#include "modules/kinds/kind_exec_pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/fdwatch.h"
#include "kernel/list.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind_exec_files.h"
#include "modules/kinds/kind_exec_pipes.h"
#include "modules/kinds/kind_exec_stderr.h"
#include "modules/kinds/kind_exec_spawn.h"
#include "modules/kinds/kinds_file.h"

enum { PW_PID, PW_IN, PW_OUT, PW_ERR, PNW };
_Static_assert(PNW <= EXEC_PIPES_MAX, "exec_pipes holds every descriptor");

struct pool_ticket {  /* one job handed to the pool */
    struct list node; /* exec_pool.fetching, .waiting, pool_proc.jobs or exec_pool.spare */
    struct job_run *run;
    struct pool_proc *proc; /* NULL while waiting */
    struct exec_pool *pool;
    bool fetching;           /* its files are being written out (exec_pool.fetching) */
    struct exec_files files; /* the job's uploaded files, removed when it ends */
};

struct pool_proc {
    struct exec_pool *pool;
    struct exec_child c;
    struct exec_pipes pipes; /* PW_PID..PW_ERR */
    bool up, reaped, closing, stop_sent, restart_pending;
    unsigned inflight, taken;
    struct list jobs;
    struct timer restart_timer, kill_timer;
    uint64_t backoff_ms, restart_in_ms;
    char *in;
    size_t in_len, in_off, in_cap;
    char *line; /* an stdout line, up to max_stdout */
    size_t line_len, line_cap;
    bool line_skip;
    struct exec_stderr err;
};

struct exec_pool {
    struct loop *loop;
    const struct declared_kind *dk;
    bool draining;
    struct list fetching, waiting, spare;
    char **envp;
    char kind_env[KINDS_NAME_MAX + 32];
    unsigned nprocs;
    struct pool_proc proc[];
};

static void proc_start(struct pool_proc *pp);
static void dispatch(struct exec_pool *p);
static void on_watch(struct fd_watch *w, unsigned revents);

/* --- descriptors --------------------------------------------------------- */

static void maybe_restart(struct pool_proc *pp)
{
    if (pp->restart_pending && !pp->pipes.watching) {
        pp->restart_pending = false;
        loop_timer_in(pp->pool->loop, &pp->restart_timer, pp->restart_in_ms);
    }
}

static void on_pipes_idle(struct exec_pipes *ps)
{
    maybe_restart(container_of(ps, struct pool_proc, pipes));
}

static void flush_in(struct pool_proc *pp)
{
    /* EPIPE: the process is going; its pidfd says so */
    if (!exec_pipes_write(&pp->pipes, PW_IN, pp->in, pp->in_len, &pp->in_off))
        return;
    pp->in_off = pp->in_len = 0;
    if (pp->pipes.watched[PW_IN])
        fd_watch_set(&pp->pipes.w[PW_IN], 0);
}

/* End of file for the process (recycling, drain): it exits once idle. */
static void close_stdin(struct pool_proc *pp)
{
    if (pp->closing)
        return;
    pp->closing = true;
    exec_pipes_unwatch(&pp->pipes, PW_IN);
    if (pp->pool->draining) /* a process that ignores end of file does not hold the exit */
        loop_timer_in(pp->pool->loop, &pp->kill_timer, pp->pool->dk->exec.kill_after_ms);
}

/* --- jobs ---------------------------------------------------------------- */

static void finish_ticket(struct pool_ticket *t, json_t *result, const char *error, bool permanent)
{
    struct pool_proc *pp = t->proc;
    struct exec_pool *p = pp->pool;
    struct job_run *r = t->run;
    list_remove(&t->node);
    list_append(&p->spare, &t->node);
    t->run = NULL;
    t->proc = NULL;
    r->ctx = NULL;
    exec_files_remove(&t->files);
    pp->inflight--;
    if (!error)
        pp->backoff_ms = EXEC_POOL_BACKOFF_MIN_MS; /* it works: a later crash restarts fast */
    unsigned max = p->dk->exec.max_jobs_per_process;
    if (pp->up && !pp->inflight && (p->draining || (max && pp->taken >= max)))
        close_stdin(pp);
    job_finish(r, result, error, permanent);
}

static struct pool_ticket *find(struct pool_proc *pp, int64_t id)
{
    struct list *n, *tmp;
    list_for_each_safe(n, tmp, &pp->jobs)
    {
        struct pool_ticket *t = list_entry(n, struct pool_ticket, node);
        if (t->run->id == id)
            return t;
    }
    return NULL;
}

static void bad_line(struct pool_proc *pp, const char *why)
{
    LOG(LOG_WARN, "exec pool: a line on stdout was not understood",
        L_STR("kind", pp->pool->dk->name), L_INT("pid", pp->c.pid), L_STR("error", why));
}

static void handle_line(struct pool_proc *pp, const char *s, size_t n)
{
    json_error_t je;
    json_t *o = json_loadb(s, n, 0, &je);
    json_t *id = json_object_get(o, "id");
    if (!json_is_object(o) || !json_is_integer(id)) {
        bad_line(pp, "want {\"id\": N, \"ok\": ...} or {\"id\": N, \"progress\": P}");
        json_decref(o);
        return;
    }
    struct pool_ticket *t = find(pp, json_integer_value(id));
    json_t *prog = json_object_get(o, "progress"), *ok = json_object_get(o, "ok");
    if (!t) {
        LOG(LOG_DEBUG, "exec pool: a line for a job the process no longer holds",
            L_INT("job_id", json_integer_value(id)), L_INT("pid", pp->c.pid));
    } else if (json_is_number(prog)) {
        json_t *st = json_object_get(o, "step");
        char step[256] = "";
        if (json_is_string(st)) {
            snprintf(step, sizeof(step), "%s", json_string_value(st));
            exec_utf8_clean(step, strlen(step));
        }
        job_progress(t->run, (int)json_number_value(prog), step[0] ? step : NULL);
    } else if (json_is_true(ok)) {
        json_t *res = json_object_get(o, "result");
        finish_ticket(t, res ? json_incref(res) : NULL, NULL, false);
        dispatch(pp->pool);
    } else if (json_is_false(ok)) {
        json_t *err = json_object_get(o, "error"), *retry = json_object_get(o, "retry");
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", json_is_string(err) ? json_string_value(err) : "failed");
        exec_utf8_clean(msg, strlen(msg));
        finish_ticket(t, NULL, msg, json_is_false(retry));
        dispatch(pp->pool);
    } else {
        bad_line(pp, "a line needs \"ok\": true|false or \"progress\": P");
    }
    json_decref(o);
}

static void took_stdout(struct pool_proc *pp, const char *b, size_t n)
{
    size_t max = pp->pool->dk->exec.max_stdout;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n') {
            if (!pp->line_skip && pp->line_len)
                handle_line(pp, pp->line, pp->line_len);
            pp->line_len = 0;
            pp->line_skip = false;
            continue;
        }
        if (pp->line_skip)
            continue;
        if (pp->line_len == max) {
            bad_line(pp, "line longer than max_stdout, ignored");
            pp->line_skip = true;
            continue;
        }
        if (pp->line_len == pp->line_cap) {
            pp->line_cap = pp->line_cap ? pp->line_cap * 2 : 4096;
            pp->line = xrealloc(pp->line, pp->line_cap);
        }
        pp->line[pp->line_len++] = b[i];
    }
}

static void log_stderr(void *ctx, const char *line, size_t len)
{
    struct pool_proc *pp = ctx;
    LOG(LOG_INFO, "pool process stderr", L_STR("kind", pp->pool->dk->name), L_INT("pid", pp->c.pid),
        L_STRN("line", line, len));
}

static void took(struct exec_pipes *ps, int i, const char *b, size_t n)
{
    struct pool_proc *pp = container_of(ps, struct pool_proc, pipes);
    if (i == PW_OUT)
        took_stdout(pp, b, n);
    else
        exec_stderr_take(&pp->err, b, n, log_stderr, pp);
}

/* --- a process' end ------------------------------------------------------ */

static void on_exit_of(struct pool_proc *pp)
{
    struct exec_pool *p = pp->pool;
    kill(-pp->c.pid, SIGKILL); /* the rest of its group */
    int st = 0;
    pid_t got;
    while ((got = waitpid(pp->c.pid, &st, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (got == 0)
        return;
    if (got < 0)
        st = 255 << 8;
    pp->reaped = true;
    loop_timer_cancel(p->loop, &pp->kill_timer);
    for (int i = PW_OUT; i <= PW_ERR; i++)
        if (pp->pipes.fd[i] >= 0)
            exec_pipes_read(&pp->pipes, i, took);
    exec_stderr_flush(&pp->err, log_stderr, pp);
    pp->up = false;
    for (int i = 0; i < PNW; i++)
        exec_pipes_unwatch(&pp->pipes, i);
    char how[64], tail[EXEC_STDERR_TAIL + 1] = "";
    if (WIFSIGNALED(st)) {
        const char *a = sigabbrev_np(WTERMSIG(st));
        snprintf(how, sizeof(how), "killed by signal SIG%s", a ? a : "?");
    } else {
        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(st));
    }
    size_t n = exec_stderr_tail(&pp->err, tail, sizeof(tail));
    bool expected = pp->closing && !pp->inflight;
    LOG(expected ? LOG_INFO : LOG_WARN, "pool process ended", L_STR("kind", p->dk->name),
        L_INT("pid", pp->c.pid), L_STR("how", how), L_INT("jobs_in_flight", pp->inflight),
        L_INT("jobs_taken", pp->taken));
    char msg[EXEC_STDERR_TAIL + 300];
    snprintf(msg, sizeof(msg), "%spool process %d ended (%s) with the job in flight%s%s",
             pp->stop_sent ? "stopped (time limit, cancellation or shutdown): " : "", pp->c.pid,
             how, n ? "; stderr: " : "", tail);
    while (!list_empty(&pp->jobs))
        finish_ticket(list_entry(pp->jobs.next, struct pool_ticket, node), NULL, msg, false);
    if (p->draining)
        return;
    pp->restart_pending = true;
    if (expected) {
        pp->restart_in_ms = 0; /* recycled after max_jobs_per_process */
    } else {
        pp->restart_in_ms = pp->backoff_ms;
        pp->backoff_ms = pp->backoff_ms * 2 > EXEC_POOL_BACKOFF_MAX_MS ? EXEC_POOL_BACKOFF_MAX_MS
                                                                       : pp->backoff_ms * 2;
    }
    maybe_restart(pp);
    dispatch(p); /* the other processes may take what waits */
}

static void on_watch(struct fd_watch *w, unsigned revents)
{
    struct exec_pipes *ps = w->data;
    struct pool_proc *pp = container_of(ps, struct pool_proc, pipes);
    int i = (int)(w - ps->w);
    if (i == PW_PID)
        on_exit_of(pp);
    else if (i == PW_IN)
        flush_in(pp);
    else if (!exec_pipes_read(&pp->pipes, i, took))
        exec_pipes_unwatch(&pp->pipes, i);
}

static void on_kill_timer(struct loop *l, struct timer *t)
{
    struct pool_proc *pp = container_of(t, struct pool_proc, kill_timer);
    if (pp->up && !pp->reaped) {
        LOG(LOG_WARN, "exec pool: process did not exit in time, killing its process group",
            L_STR("kind", pp->pool->dk->name), L_INT("pid", pp->c.pid));
        kill(-pp->c.pid, SIGKILL);
    }
}

static void on_restart_timer(struct loop *l, struct timer *t)
{
    proc_start(container_of(t, struct pool_proc, restart_timer));
}

/* --- starting ------------------------------------------------------------ */

static void proc_start(struct pool_proc *pp)
{
    struct exec_pool *p = pp->pool;
    if (p->draining)
        return;
    int rc = exec_spawn(&p->dk->exec, p->envp, &pp->c);
    if (rc < 0) {
        LOG(LOG_ERROR, "exec pool: cannot start a process", L_STR("kind", p->dk->name),
            L_STR("program", p->dk->exec.argv[0]), L_STR("error", strerror(-rc)),
            L_INT("retry_in_ms", pp->backoff_ms));
        loop_timer_in(p->loop, &pp->restart_timer, pp->backoff_ms);
        pp->backoff_ms = pp->backoff_ms * 2 > EXEC_POOL_BACKOFF_MAX_MS ? EXEC_POOL_BACKOFF_MAX_MS
                                                                       : pp->backoff_ms * 2;
        return;
    }
    close(pp->c.prog); /* pool processes report progress on stdout */
    pp->pipes.fd[PW_PID] = pp->c.pidfd;
    pp->pipes.fd[PW_IN] = pp->c.in;
    pp->pipes.fd[PW_OUT] = pp->c.out;
    pp->pipes.fd[PW_ERR] = pp->c.err;
    pp->up = true;
    pp->reaped = pp->closing = pp->stop_sent = pp->line_skip = false;
    pp->inflight = pp->taken = 0;
    pp->in_len = pp->in_off = pp->line_len = 0;
    exec_stderr_reset(&pp->err);
    exec_pipes_watch(&pp->pipes, PW_PID, POLLIN);
    exec_pipes_watch(&pp->pipes, PW_IN, 0);
    exec_pipes_watch(&pp->pipes, PW_OUT, POLLIN);
    exec_pipes_watch(&pp->pipes, PW_ERR, POLLIN);
    LOG(LOG_INFO, "pool process started", L_STR("kind", p->dk->name), L_INT("pid", pp->c.pid));
    dispatch(p);
}

static void give(struct pool_proc *pp, struct pool_ticket *t)
{
    struct job_run *r = t->run;
    json_t *j = json_pack("{sI ss ss si si sO}", "id", (json_int_t)r->id, "kind",
                          pp->pool->dk->name, "queue", r->queue ? r->queue : "", "attempt",
                          r->attempt, "max_attempts", r->max_attempts, "payload", r->payload);
    if (t->files.list) {
        json_object_set(j, "files", t->files.list);
        json_object_set_new(j, "files_dir", json_string(t->files.dir));
    }
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (pp->in_len + n + 1 > pp->in_cap) {
        pp->in_cap = (pp->in_len + n + 1) * 2;
        pp->in = xrealloc(pp->in, pp->in_cap);
    }
    json_dumpb(j, pp->in + pp->in_len, n, JSON_COMPACT);
    json_decref(j);
    pp->in_len += n;
    pp->in[pp->in_len++] = '\n';
    t->proc = pp;
    list_remove(&t->node);
    list_append(&pp->jobs, &t->node);
    pp->inflight++;
    pp->taken++;
    flush_in(pp);
}

static struct pool_proc *free_proc(struct exec_pool *p)
{
    const struct exec_spec *e = &p->dk->exec;
    struct pool_proc *best = NULL;
    for (unsigned i = 0; i < p->nprocs; i++) {
        struct pool_proc *pp = &p->proc[i];
        if (!pp->up || pp->closing || pp->stop_sent || pp->inflight >= e->jobs_per_process ||
            (e->max_jobs_per_process && pp->taken >= e->max_jobs_per_process))
            continue;
        if (!best || pp->inflight < best->inflight)
            best = pp;
    }
    return best;
}

static void dispatch(struct exec_pool *p)
{
    struct pool_proc *pp;
    while (!list_empty(&p->waiting) && (pp = free_proc(p)))
        give(pp, list_entry(p->waiting.next, struct pool_ticket, node));
}

static void on_files(struct exec_files *f, const char *err)
{
    struct pool_ticket *t = f->data;
    struct exec_pool *p = t->pool;
    struct job_run *r = t->run;
    t->fetching = false;
    list_remove(&t->node);
    if (err) {
        LOG(LOG_WARN, "exec pool: cannot write out the job's files", L_INT("job_id", r->id),
            L_STR("kind", p->dk->name), L_STR("error", err));
        exec_files_remove(&t->files);
        list_append(&p->spare, &t->node);
        t->run = NULL;
        r->ctx = NULL;
        job_finish(r, NULL, err, false);
        return;
    }
    list_append(&p->waiting, &t->node);
    dispatch(p);
}

void exec_pool_start(struct exec_pool *p, struct job_run *r)
{
    struct pool_ticket *t;
    if (!list_empty(&p->spare)) {
        t = list_entry(p->spare.next, struct pool_ticket, node);
        list_remove(&t->node);
    } else {
        t = xcalloc(1, sizeof(*t));
        list_init(&t->node);
    }
    t->run = r;
    t->proc = NULL;
    t->pool = p;
    t->files.list = NULL;
    t->files.dir[0] = '\0';
    t->files.fd = -1;
    r->ctx = t;
    if (exec_files_possible(r)) {
        t->fetching = true;
        t->files.fn = on_files;
        t->files.data = t;
        list_append(&p->fetching, &t->node);
        exec_files_fetch(&t->files, r->pg, exec_files_root(p->loop), r->id);
        return;
    }
    list_append(&p->waiting, &t->node);
    dispatch(p);
}

void exec_pool_stop(struct exec_pool *p, struct job_run *r)
{
    struct pool_ticket *t = r->ctx;
    if (!t)
        return;
    if (!t->proc) {
        if (t->fetching) {
            t->fetching = false;
            exec_files_cancel(&t->files);
        }
        exec_files_remove(&t->files);
        list_remove(&t->node);
        list_append(&p->spare, &t->node);
        t->run = NULL;
        r->ctx = NULL;
        job_finish(r, NULL,
                   "stopped before a pool process took it (time limit, cancellation or "
                   "shutdown)",
                   false);
        return;
    }
    struct pool_proc *pp = t->proc;
    if (pp->stop_sent || pp->reaped)
        return;
    pp->stop_sent = true;
    LOG(LOG_INFO, "exec pool: stopping a process for a job (SIGTERM to its process group)",
        L_INT("job_id", r->id), L_INT("pid", pp->c.pid), L_INT("jobs_in_flight", pp->inflight));
    kill(-pp->c.pid, SIGTERM);
    loop_timer_in(p->loop, &pp->kill_timer, p->dk->exec.kill_after_ms);
}

void exec_pool_drain(struct exec_pool *p)
{
    p->draining = true;
    for (unsigned i = 0; i < p->nprocs; i++) {
        struct pool_proc *pp = &p->proc[i];
        loop_timer_cancel(p->loop, &pp->restart_timer);
        pp->restart_pending = false;
        if (pp->up && !pp->inflight)
            close_stdin(pp);
    }
}

struct exec_pool *exec_pool_new(struct loop *l, const struct declared_kind *dk, unsigned nprocs)
{
    struct exec_pool *p = xcalloc(1, sizeof(*p) + nprocs * sizeof(struct pool_proc));
    p->loop = l;
    p->dk = dk;
    p->nprocs = nprocs;
    list_init(&p->fetching);
    list_init(&p->waiting);
    list_init(&p->spare);
    const struct exec_spec *e = &dk->exec;
    p->envp = xcalloc(e->nenv + 2, sizeof(char *));
    for (unsigned i = 0; i < e->nenv; i++)
        p->envp[i] = e->env[i];
    snprintf(p->kind_env, sizeof(p->kind_env), "TRIREME_JOB_KIND=%s", dk->name);
    p->envp[e->nenv] = p->kind_env;
    for (unsigned i = 0; i < nprocs; i++) {
        struct pool_proc *pp = &p->proc[i];
        pp->pool = p;
        list_init(&pp->jobs);
        exec_pipes_init(&pp->pipes, l, on_watch, on_pipes_idle);
        pp->restart_timer.fn = on_restart_timer;
        pp->kill_timer.fn = on_kill_timer;
        pp->backoff_ms = EXEC_POOL_BACKOFF_MIN_MS;
        exec_stderr_init(&pp->err, e->stderr_tail);
        proc_start(pp);
    }
    return p;
}

void exec_pool_free(struct exec_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->nprocs; i++) {
        struct pool_proc *pp = &p->proc[i];
        if (pp->up && !pp->reaped) {
            LOG(LOG_WARN, "exec pool: process still running at exit, killing its process group",
                L_STR("kind", p->dk->name), L_INT("pid", pp->c.pid));
            kill(-pp->c.pid, SIGKILL);
            while (waitpid(pp->c.pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        for (int k = 0; k < PNW; k++)
            if (pp->pipes.fd[k] >= 0)
                close(pp->pipes.fd[k]);
        struct list *n, *t;
        list_for_each_safe(n, t, &pp->jobs)
        {
            list_remove(n);
            exec_files_remove(&list_entry(n, struct pool_ticket, node)->files);
            free(list_entry(n, struct pool_ticket, node));
        }
        free(pp->in);
        free(pp->line);
        exec_stderr_free(&pp->err);
    }
    struct list *heads[3] = {&p->fetching, &p->waiting, &p->spare}, *n, *t;
    for (int h = 0; h < 3; h++)
        list_for_each_safe(n, t, heads[h])
        {
            struct pool_ticket *tk = list_entry(n, struct pool_ticket, node);
            list_remove(n);
            if (tk->fetching)
                exec_files_cancel(&tk->files);
            exec_files_remove(&tk->files);
            free(tk);
        }
    free(p->envp);
    free(p);
}
