/*
 * kind_exec.c - running exec kinds in one-shot mode; see kind_exec.h.
 *
 * One exec_proc per attempt, reused per kind and loop (its buffers are
 * sized by the kind's limits and kept). Every descriptor is watched on the
 * ring: the pidfd says the leader exited, the pipes are read as data
 * arrives, stdin is written as the pipe takes it. A proc is released only
 * when its watches have all stopped, so no completion ever reaches freed
 * memory; the loop stays alive meanwhile (each watch counts as live).
 *
 * Order at the leader's exit: kill what is left of its group while the
 * leader is still a zombie (its pid, hence the group id, cannot be reused
 * before we reap it), reap it, read what the pipes still hold, then end
 * the attempt.
 */
#include "modules/kinds/kind_exec.h"

#include <errno.h>
#include <limits.h>
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
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/kinds/job.h"
#include "modules/kinds/kind_exec_files.h"
#include "modules/kinds/kind_exec_pipes.h"
#include "modules/kinds/kind_exec_stderr.h"
#include "modules/kinds/kind_exec_pool.h"
#include "modules/kinds/kind_exec_spawn.h"
#include "modules/kinds/kinds_file.h"
#include "modules/registry.h"

#define EXEC_JOB_ENV                                                                               \
    6 /* TRIREME_PROGRESS_FD, _JOB_ID, _JOB_KIND, _JOB_QUEUE, _JOB_ATTEMPT,                        \
       * _FILES_DIR (only when the job has files) */
#define EXEC_MSG_EXTRA    400             /* an error's words around the stderr tail */
#define JOB_ENV_VALUE_MAX (PATH_MAX + 32) /* NAME=value of one of them */
/* Progress reports of one job reach the queue at most this often; the
 * latest one wins. Bounds the writes a chatty program causes, and keeps two
 * reports from racing each other to the store. */
#define EXEC_PROGRESS_EVERY_MS 100

enum { W_PID, W_IN, W_OUT, W_ERR, W_PROG, NW };
_Static_assert(NW <= EXEC_PIPES_MAX, "exec_pipes holds every descriptor");

struct exec_slot {
    struct exec_pool *pool; /* mode pool; NULL: one-shot */
    unsigned running, limit;
    struct list waiting; /* procs whose run waits for a free program slot */
    struct list spare;   /* released procs of this kind, for reuse */
};

struct exec_loop {
    struct loop *loop;
    struct list live; /* procs with a process or a watch */
    unsigned nslots;
    struct exec_slot slot[];
};

struct exec_proc {
    struct list node; /* exec_slot.waiting, exec_loop.live or exec_slot.spare */
    struct exec_loop *el;
    const struct declared_kind *dk;
    struct job_run *run; /* NULL once the attempt ended */
    struct exec_child c;
    struct exec_pipes pipes;                            /* W_PID..W_PROG */
    bool waiting, counted, stop_sent, reaped, finished; /* counted: holds a program slot */
    bool fetching;           /* the job's files are being written out (before the spawn) */
    struct exec_files files; /* the job's uploaded files, in their directory */
    int status;
    struct timer kill_timer;
    struct timer progress_timer;
    uint64_t progress_at_ns; /* when the last report was sent */
    int progress_pct;        /* the latest report not yet sent, when progress_pending */
    bool progress_pending;
    char progress_step[256];
    /* kept across reuse */
    char *in;
    size_t in_cap, in_len, in_off;
    char *out;
    size_t out_cap, out_len;
    bool out_over;
    struct exec_stderr err;
    char *msg;       /* the outcome's error: stderr_tail + EXEC_MSG_EXTRA */
    char *tail_text; /* the tail in order: stderr_tail + 1 */
    char *prog;      /* max_progress_line */
    size_t prog_len;
    bool prog_skip;
    char **envp;
    char envbuf[EXEC_JOB_ENV][JOB_ENV_VALUE_MAX];
};

static void on_watch(struct fd_watch *w, unsigned revents);
static void on_pipes_idle(struct exec_pipes *ps);
static void on_kill_timer(struct loop *l, struct timer *t);
static void on_progress_timer(struct loop *l, struct timer *t);

/* --- the proc pool ------------------------------------------------------- */

static struct exec_slot *slot_of(struct exec_proc *p)
{
    return &p->el->slot[p->dk->index];
}

static struct exec_proc *proc_get(struct exec_loop *el, const struct declared_kind *dk)
{
    struct exec_slot *s = &el->slot[dk->index];
    struct exec_proc *p;
    if (!list_empty(&s->spare)) {
        p = list_entry(s->spare.next, struct exec_proc, node);
        list_remove(&p->node);
    } else {
        const struct exec_spec *e = &dk->exec;
        p = xcalloc(1, sizeof(*p));
        list_init(&p->node);
        exec_stderr_init(&p->err, e->stderr_tail);
        p->prog = xmalloc(e->max_progress_line);
        p->msg = xmalloc(e->stderr_tail + EXEC_MSG_EXTRA);
        p->tail_text = xmalloc(e->stderr_tail + 1);
        p->envp = xcalloc(e->nenv + EXEC_JOB_ENV + 1, sizeof(char *));
        for (unsigned i = 0; i < e->nenv; i++)
            p->envp[i] = e->env[i];
        for (unsigned i = 0; i < EXEC_JOB_ENV; i++)
            p->envp[e->nenv + i] = p->envbuf[i];
    }
    p->el = el;
    p->dk = dk;
    p->run = NULL;
    exec_pipes_init(&p->pipes, el->loop, on_watch, on_pipes_idle);
    p->waiting = p->counted = p->stop_sent = p->reaped = p->finished = false;
    p->fetching = false;
    p->files.list = NULL;
    p->files.dir[0] = '\0';
    p->files.fd = -1;
    p->out_over = p->prog_skip = false;
    p->c = (struct exec_child){.pidfd = -1, .in = -1, .out = -1, .err = -1, .prog = -1};
    p->status = 0;
    p->in_len = p->in_off = p->out_len = p->prog_len = 0;
    exec_stderr_reset(&p->err);
    p->kill_timer = (struct timer){.fn = on_kill_timer};
    p->progress_timer = (struct timer){.fn = on_progress_timer};
    p->progress_at_ns = 0;
    p->progress_pending = false;
    return p;
}

static void proc_free(struct exec_proc *p)
{
    free(p->in);
    free(p->out);
    exec_stderr_free(&p->err);
    free(p->prog);
    free(p->msg);
    free(p->tail_text);
    free(p->envp);
    free(p);
}

/* Back to the spare list once the attempt ended and every watch stopped. */
static void maybe_release(struct exec_proc *p)
{
    if (!p->finished || p->pipes.watching)
        return;
    for (int i = 0; i < NW; i++)
        if (p->pipes.fd[i] >= 0) {
            close(p->pipes.fd[i]);
            p->pipes.fd[i] = -1;
        }
    list_remove(&p->node);
    list_append(&slot_of(p)->spare, &p->node);
}

static void on_pipes_idle(struct exec_pipes *ps)
{
    maybe_release(container_of(ps, struct exec_proc, pipes));
}

/* --- reading and writing ------------------------------------------------- */

static void stdin_write(struct exec_proc *p)
{
    if (exec_pipes_write(&p->pipes, W_IN, p->in, p->in_len, &p->in_off))
        exec_pipes_unwatch(&p->pipes, W_IN); /* all written: EOF for the program */
}

static void log_stderr(void *ctx, const char *line, size_t len)
{
    struct exec_proc *p = ctx;
    LOG(LOG_INFO, "job stderr", L_INT("job_id", p->run ? p->run->id : 0),
        L_STR("kind", p->dk->name), L_INT("pid", p->c.pid), L_STRN("line", line, len));
}

static void send_progress(struct exec_proc *p)
{
    p->progress_pending = false;
    p->progress_at_ns = p->el->loop->now_ns;
    if (p->run)
        job_progress(p->run, p->progress_pct, p->progress_step[0] ? p->progress_step : NULL);
}

static void on_progress_timer(struct loop *l, struct timer *t)
{
    struct exec_proc *p = container_of(t, struct exec_proc, progress_timer);
    if (p->progress_pending)
        send_progress(p);
}

static void progress_line(struct exec_proc *p)
{
    int pct;
    if (exec_progress_parse(p->prog, p->prog_len, &pct, p->progress_step,
                            sizeof(p->progress_step))) {
        LOG(LOG_WARN,
            "exec: progress line not understood (want \"45 step\" or "
            "{\"percent\":45,\"step\":\"...\"})",
            L_INT("job_id", p->run ? p->run->id : 0), L_STR("kind", p->dk->name));
        return;
    }
    exec_utf8_clean(p->progress_step, strlen(p->progress_step));
    p->progress_pct = pct;
    p->progress_pending = true;
    uint64_t next = p->progress_at_ns + EXEC_PROGRESS_EVERY_MS * 1000000ull;
    if (!p->progress_at_ns || p->el->loop->now_ns >= next)
        send_progress(p);
    else if (!timer_armed(&p->progress_timer))
        loop_timer_in(p->el->loop, &p->progress_timer, (next - p->el->loop->now_ns) / 1000000 + 1);
}

static void took_progress(struct exec_proc *p, const char *b, size_t n)
{
    size_t max = p->dk->exec.max_progress_line;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n') {
            if (!p->prog_skip)
                progress_line(p);
            p->prog_len = 0;
            p->prog_skip = false;
        } else if (p->prog_skip) {
            continue;
        } else if (p->prog_len == max) {
            LOG(LOG_WARN, "exec: progress line longer than max_progress_line, ignored",
                L_INT("job_id", p->run ? p->run->id : 0), L_INT("max_progress_line", max));
            p->prog_skip = true;
        } else {
            p->prog[p->prog_len++] = b[i];
        }
    }
}

static void took_stdout(struct exec_proc *p, const char *b, size_t n)
{
    size_t max = p->dk->exec.max_stdout;
    if (p->out_over || p->out_len + n > max) {
        p->out_over = true;
        return;
    }
    if (p->out_len + n > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : 4096;
        while (cap < p->out_len + n)
            cap *= 2;
        p->out = xrealloc(p->out, cap);
        p->out_cap = cap;
    }
    memcpy(p->out + p->out_len, b, n);
    p->out_len += n;
}

static void took(struct exec_pipes *ps, int i, const char *b, size_t n)
{
    struct exec_proc *p = container_of(ps, struct exec_proc, pipes);
    if (i == W_OUT)
        took_stdout(p, b, n);
    else if (i == W_ERR)
        exec_stderr_take(&p->err, b, n, log_stderr, p);
    else
        took_progress(p, b, n);
}

/* --- the end of an attempt ----------------------------------------------- */

static void start_waiting(struct exec_slot *s);

static void finish(struct exec_proc *p, json_t *result, const char *error, bool permanent)
{
    struct job_run *r = p->run;
    p->run = NULL;
    p->finished = true;
    exec_files_remove(&p->files); /* the program has ended (or never started) */
    loop_timer_cancel(p->el->loop, &p->progress_timer);
    r->ctx = NULL;
    if (p->counted) {
        p->counted = false;
        slot_of(p)->running--;
        start_waiting(slot_of(p));
    }
    p->waiting = false;
    job_finish(r, result, error, permanent);
    maybe_release(p);
}

/* Exit 0: stdout is the result, JSON when it parses, else text. */
static void ok(struct exec_proc *p, char *error, size_t ecap)
{
    if (p->out_over) {
        snprintf(error, ecap, "stdout exceeded max_stdout (%zu bytes)", p->dk->exec.max_stdout);
        finish(p, NULL, error, true);
        return;
    }
    json_t *res = NULL;
    if (p->out_len) {
        json_error_t je;
        res = json_loadb(p->out, p->out_len, JSON_DECODE_ANY, &je);
        if (!res) {
            size_t n = p->out_len;
            while (n && (p->out[n - 1] == '\n' || p->out[n - 1] == '\r'))
                n--;
            exec_utf8_clean(p->out, n);
            res = json_stringn(p->out, n);
        }
    }
    finish(p, res, NULL, false);
}

static void outcome(struct exec_proc *p)
{
    size_t tcap = p->dk->exec.stderr_tail + 1, ecap = p->dk->exec.stderr_tail + EXEC_MSG_EXTRA;
    char head[160], *tail = p->tail_text, *error = p->msg;
    size_t tn = exec_stderr_tail(&p->err, tail, tcap);
    int st = p->status;
    bool permanent = true;
    if (WIFSIGNALED(st)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        snprintf(head, sizeof(head), "killed by signal SIG%s", abbrev ? abbrev : "?");
    } else {
        snprintf(head, sizeof(head), "exit status %d%s", WEXITSTATUS(st),
                 WEXITSTATUS(st) == 75 ? " (EX_TEMPFAIL: retry)" : "");
        permanent = WEXITSTATUS(st) != 75;
    }
    if (p->stop_sent) {
        snprintf(error, ecap,
                 "stopped (time limit, cancellation or shutdown): SIGTERM sent, then %s%s%s", head,
                 tn ? "; stderr: " : "", tail);
        finish(p, NULL, error, false);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        ok(p, error, ecap);
    } else {
        snprintf(error, ecap, "%s%s%s", head, tn ? "; stderr: " : "", tail);
        finish(p, NULL, error, permanent);
    }
}

static void on_leader_exit(struct exec_proc *p)
{
    kill(-p->c.pid, SIGKILL); /* what the leader left behind in its group */
    int st;
    pid_t got;
    while ((got = waitpid(p->c.pid, &st, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (got == 0)
        return; /* not yet: the pidfd stays readable, we come back */
    p->reaped = true;
    p->status = got > 0 ? st : 255 << 8; /* ECHILD: not ours to know; a failure */
    loop_timer_cancel(p->el->loop, &p->kill_timer);
    for (int i = W_OUT; i <= W_PROG; i++)
        if (p->pipes.fd[i] >= 0)
            exec_pipes_read(&p->pipes, i, took);
    exec_stderr_flush(&p->err, log_stderr, p);
    for (int i = 0; i < NW; i++)
        exec_pipes_unwatch(&p->pipes, i);
    LOG(LOG_DEBUG, "exec: program ended", L_INT("job_id", p->run->id), L_INT("pid", p->c.pid),
        L_INT("status", p->status));
    outcome(p);
}

static void on_watch(struct fd_watch *w, unsigned revents)
{
    struct exec_pipes *ps = w->data;
    struct exec_proc *p = container_of(ps, struct exec_proc, pipes);
    int i = (int)(w - ps->w);
    if (i == W_PID) {
        on_leader_exit(p);
    } else if (i == W_IN) {
        if (revents & (POLLERR | POLLHUP))
            exec_pipes_unwatch(&p->pipes, W_IN);
        else
            stdin_write(p);
    } else if (!exec_pipes_read(&p->pipes, i, took)) {
        exec_pipes_unwatch(&p->pipes, i);
    }
}

static void on_kill_timer(struct loop *l, struct timer *t)
{
    struct exec_proc *p = container_of(t, struct exec_proc, kill_timer);
    if (p->reaped)
        return;
    LOG(LOG_WARN, "exec: program still running after SIGTERM, killing its process group",
        L_INT("job_id", p->run ? p->run->id : 0), L_INT("pid", p->c.pid),
        L_INT("kill_after_ms", p->dk->exec.kill_after_ms));
    kill(-p->c.pid, SIGKILL);
}

/* --- starting ------------------------------------------------------------ */

static bool job_json(struct exec_proc *p)
{
    struct job_run *r = p->run;
    json_t *j = json_pack("{sI ss ss si si sO}", "id", (json_int_t)r->id, "kind", p->dk->name,
                          "queue", r->queue ? r->queue : "", "attempt", r->attempt, "max_attempts",
                          r->max_attempts, "payload", r->payload);
    if (!j)
        return false;
    if (p->files.list)
        json_object_set(j, "files", p->files.list);
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n + 1 > p->in_cap) {
        p->in_cap = n + 1;
        p->in = xrealloc(p->in, p->in_cap);
    }
    json_dumpb(j, p->in, n, JSON_COMPACT);
    p->in[n] = '\n';
    p->in_len = n + 1;
    p->in_off = 0;
    json_decref(j);
    return true;
}

static void spawn_program(struct exec_proc *p)
{
    struct job_run *r = p->run;
    const struct exec_spec *e = &p->dk->exec;
    snprintf(p->envbuf[0], JOB_ENV_VALUE_MAX, "TRIREME_PROGRESS_FD=%d", EXEC_PROGRESS_FD);
    snprintf(p->envbuf[1], JOB_ENV_VALUE_MAX, "TRIREME_JOB_ID=%lld", (long long)r->id);
    snprintf(p->envbuf[2], JOB_ENV_VALUE_MAX, "TRIREME_JOB_KIND=%s", p->dk->name);
    snprintf(p->envbuf[3], JOB_ENV_VALUE_MAX, "TRIREME_JOB_QUEUE=%s", r->queue ? r->queue : "");
    snprintf(p->envbuf[4], JOB_ENV_VALUE_MAX, "TRIREME_JOB_ATTEMPT=%d", r->attempt);
    snprintf(p->envbuf[5], JOB_ENV_VALUE_MAX, "TRIREME_FILES_DIR=%s", p->files.dir);
    p->envp[e->nenv + 5] = p->files.list ? p->envbuf[5] : NULL;
    int rc = job_json(p) ? exec_spawn(e, p->envp, &p->c) : -EINVAL;
    if (rc < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "cannot start %s: %s", e->argv[0], strerror(-rc));
        LOG(LOG_ERROR, "exec: cannot start the program", L_INT("job_id", r->id),
            L_STR("kind", p->dk->name), L_STR("program", e->argv[0]),
            L_STR("error", strerror(-rc)));
        finish(p, NULL, msg, false);
        return;
    }
    p->pipes.fd[W_PID] = p->c.pidfd;
    p->pipes.fd[W_IN] = p->c.in;
    p->pipes.fd[W_OUT] = p->c.out;
    p->pipes.fd[W_ERR] = p->c.err;
    p->pipes.fd[W_PROG] = p->c.prog;
    LOG(LOG_DEBUG, "exec: program started", L_INT("job_id", r->id), L_STR("kind", p->dk->name),
        L_INT("pid", p->c.pid));
    exec_pipes_watch(&p->pipes, W_PID, POLLIN);
    exec_pipes_watch(&p->pipes, W_OUT, POLLIN);
    exec_pipes_watch(&p->pipes, W_ERR, POLLIN);
    exec_pipes_watch(&p->pipes, W_PROG, POLLIN);
    stdin_write(p);
}

static void on_files(struct exec_files *f, const char *err)
{
    struct exec_proc *p = f->data;
    p->fetching = false;
    if (err) {
        LOG(LOG_WARN, "exec: cannot write out the job's files", L_INT("job_id", p->run->id),
            L_STR("kind", p->dk->name), L_STR("error", err));
        finish(p, NULL, err, false);
        return;
    }
    spawn_program(p);
}

static void spawn(struct exec_proc *p)
{
    slot_of(p)->running++;
    p->counted = true;
    list_append(&p->el->live, &p->node);
    if (!exec_files_possible(p->run)) {
        spawn_program(p);
        return;
    }
    p->fetching = true;
    p->files.fn = on_files;
    p->files.data = p;
    exec_files_fetch(&p->files, p->run->pg, exec_files_root(p->el->loop), p->run->id);
}

static void start_waiting(struct exec_slot *s)
{
    while (s->running < s->limit && !list_empty(&s->waiting)) {
        struct exec_proc *p = list_entry(s->waiting.next, struct exec_proc, node);
        list_remove(&p->node);
        p->waiting = false;
        spawn(p);
    }
}

void exec_start(struct job_run *r)
{
    struct kinds_loop *kl = r->loop->modules[MODULE_KINDS];
    struct exec_loop *el = kl ? kl->exec : NULL;
    const struct declared_kind *dk = declared_kind_of(r->kind);
    if (!el || dk->index >= el->nslots) {
        job_finish(r, NULL, "exec kinds are not set up on this loop", false);
        return;
    }
    if (el->slot[dk->index].pool) {
        exec_pool_start(el->slot[dk->index].pool, r);
        return;
    }
    struct exec_proc *p = proc_get(el, dk);
    p->run = r;
    r->ctx = p;
    struct exec_slot *s = &el->slot[dk->index];
    if (s->running >= s->limit) {
        p->waiting = true;
        list_append(&s->waiting, &p->node);
        return;
    }
    spawn(p);
}

void exec_stop(struct job_run *r)
{
    struct kinds_loop *kl = r->loop->modules[MODULE_KINDS];
    struct exec_loop *el = kl ? kl->exec : NULL;
    const struct declared_kind *dk = declared_kind_of(r->kind);
    if (el && dk->index < el->nslots && el->slot[dk->index].pool) {
        exec_pool_stop(el->slot[dk->index].pool, r);
        return;
    }
    struct exec_proc *p = r->ctx;
    if (!p)
        return;
    if (p->waiting) {
        list_remove(&p->node);
        list_append(&p->el->live, &p->node);
        finish(p, NULL, "stopped before its program started (time limit, cancellation or shutdown)",
               false);
        return;
    }
    if (p->fetching) {
        p->fetching = false;
        exec_files_cancel(&p->files);
        finish(p, NULL,
               "stopped while its files were being written out (time limit, cancellation or "
               "shutdown)",
               false);
        return;
    }
    if (p->stop_sent || p->reaped)
        return;
    p->stop_sent = true;
    LOG(LOG_INFO, "exec: stopping the program (SIGTERM to its process group)",
        L_INT("job_id", r->id), L_INT("pid", p->c.pid),
        L_INT("kill_after_ms", p->dk->exec.kill_after_ms));
    kill(-p->c.pid, SIGTERM);
    loop_timer_in(p->el->loop, &p->kill_timer, p->dk->exec.kill_after_ms);
}

/* --- per loop ------------------------------------------------------------ */

void *exec_loop_new(struct loop *l, const struct kinds_file *f)
{
    struct exec_loop *el = xcalloc(1, sizeof(*el) + f->n * sizeof(struct exec_slot));
    el->loop = l;
    el->nslots = f->n;
    list_init(&el->live);
    unsigned loops = l->srv ? (unsigned)l->srv->nloops : 1;
    for (unsigned i = 0; i < f->n; i++) {
        struct exec_slot *s = &el->slot[i];
        unsigned c = f->v[i].exec.concurrency;
        s->limit = c / loops + (c % loops > (unsigned)l->id);
        if (!s->limit)
            s->limit = 1;
        list_init(&s->waiting);
        list_init(&s->spare);
        if (f->v[i].exec.pool) {
            unsigned n = f->v[i].exec.processes;
            n = n / loops + (n % loops > (unsigned)l->id);
            s->pool = exec_pool_new(l, &f->v[i], n ? n : 1);
        }
    }
    return el;
}

void exec_loop_drain(void *arg)
{
    struct exec_loop *el = arg;
    for (unsigned i = 0; el && i < el->nslots; i++)
        if (el->slot[i].pool)
            exec_pool_drain(el->slot[i].pool);
}

/* At exit, after the loop ended (forced by --grace, say): whatever still
 * runs is killed with its group and reaped here; no run is touched (the
 * worker frees its runs itself). */
void exec_loop_free(void *arg)
{
    struct exec_loop *el = arg;
    if (!el)
        return;
    struct list *n, *t;
    list_for_each_safe(n, t, &el->live)
    {
        struct exec_proc *p = list_entry(n, struct exec_proc, node);
        if (p->c.pid > 1 && !p->reaped) {
            LOG(LOG_WARN, "exec: program still running at exit, killing its process group",
                L_INT("job_id", p->run ? p->run->id : 0), L_INT("pid", p->c.pid));
            kill(-p->c.pid, SIGKILL);
            while (waitpid(p->c.pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        for (int i = 0; i < NW; i++)
            if (p->pipes.fd[i] >= 0)
                close(p->pipes.fd[i]);
        if (p->fetching)
            exec_files_cancel(&p->files);
        exec_files_remove(&p->files);
        list_remove(n);
        proc_free(p);
    }
    for (unsigned i = 0; i < el->nslots; i++) {
        exec_pool_free(el->slot[i].pool);
        struct list *heads[2] = {&el->slot[i].waiting, &el->slot[i].spare};
        for (int h = 0; h < 2; h++)
            list_for_each_safe(n, t, heads[h])
            {
                list_remove(n);
                proc_free(list_entry(n, struct exec_proc, node));
            }
    }
    free(el);
}
