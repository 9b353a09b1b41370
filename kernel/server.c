/*
 * server.c - threads, start-up, signals and the graceful drain.
 */
#include "kernel/server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/tls.h"
#include "kernel/version.h"
#include "kernel/xalloc.h"
#include "proto/rfc3339.h"

#define POOL_CHUNK (16u * 1024u)

static void begin_drain(struct loop *l)
{
    const struct config *cfg = l->srv->cfg;
    l->stopping = true;
    for (unsigned i = 0; i < modules_builtin_count; i++)
        if ((cfg->role_mask & (1u << i)) && modules_builtin[i]->stop)
            modules_builtin[i]->stop(l);
}

static void on_wake(struct loop *l)
{
    struct server *s = l->srv;
    if (atomic_load(&s->force)) {
        l->stop_now = true;
        return;
    }
    if (atomic_load(&s->draining) && !l->stopping)
        begin_drain(l);
    for (unsigned i = 0; i < modules_builtin_count; i++)
        if ((s->cfg->role_mask & (1u << i)) && modules_builtin[i]->wake)
            modules_builtin[i]->wake(l);
    if (l->id == 0) {
        /* Loop 0 outlives the others: each finished thread was one "live"
         * unit on it, so a second signal is still heard while they drain. */
        int done = atomic_load(&s->loops_done);
        while (s->threads_joined_live < done) {
            s->threads_joined_live++;
            l->live--;
        }
    }
}

static void wake_all(struct server *s)
{
    for (int i = 0; i < s->nloops; i++)
        loop_wake(&s->loops[i]);
}

static void on_grace(struct loop *l, struct timer *t)
{
    struct server *s = l->srv;
    unsigned open = atomic_load(&s->clients);
    LOG(LOG_WARN, "grace period over, exiting with work in flight",
        L_INT("grace_ms", s->cfg->grace_ms), L_INT("open_connections", open));
    atomic_store(&s->force, true);
    wake_all(s);
}

static void arm_signal(struct server *s)
{
    struct io_uring_sqe *sqe = loop_sqe(&s->loops[0], &s->signal_op);
    io_uring_prep_read(sqe, s->signal_fd, s->siginfo, sizeof(struct signalfd_siginfo), 0);
}

/* Which certificate is served and until when; a warning when it expires
 * within TLS_EXPIRY_WARN_DAYS (or has), so a renewal that did not happen
 * shows in the log before clients see it. */
static void log_identity(struct server *s, const char *msg)
{
    const struct tls_identity *id = tls_store_identity(s->tls);
    if (!id)
        return;
    char until[40];
    rfc3339_format_s(id->not_after, until, sizeof(until));
    int64_t left = id->not_after - (int64_t)time(NULL);
    LOG(LOG_INFO, msg, L_STR("cert", s->tls->cert_file), L_STR("not_after", until));
    if (left < (int64_t)TLS_EXPIRY_WARN_DAYS * 86400)
        LOG(LOG_WARN, "TLS certificate expires soon (or has): renew it, then send SIGHUP",
            L_STR("cert", s->tls->cert_file), L_STR("not_after", until),
            L_INT("days_left", left / 86400));
}

/* SIGHUP: present the certificate and key files' current contents to new
 * TLS clients (a renewed certificate), without dropping a connection.
 * The files are read here, on loop 0, once per signal: a few kilobytes. */
static void reload_tls(struct server *s)
{
    if (!tls_store_serves(s->tls)) {
        LOG(LOG_INFO, "SIGHUP: no --tls-cert, nothing to reload");
        return;
    }
    char why[768];
    if (tls_store_reload(s->tls, why, sizeof(why)) < 0) {
        LOG(LOG_ERROR, "TLS certificate reload failed, still serving the previous one",
            L_STR("error", why));
        return;
    }
    log_identity(s, "TLS certificate reloaded");
}

static void on_signal(struct loop *l, struct op *op, struct io_uring_cqe *cqe)
{
    struct server *s = l->srv;
    if (cqe->res != (int)sizeof(struct signalfd_siginfo)) {
        arm_signal(s);
        return;
    }
    struct signalfd_siginfo si;
    memcpy(&si, s->siginfo, sizeof(si));
    if (si.ssi_signo == SIGHUP) {
        reload_tls(s);
        arm_signal(s);
        return;
    }
    const char *name = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (++s->signals_seen > 1) {
        LOG(LOG_WARN, "second signal, exiting now", L_STR("signal", name));
        log_flush();
        _exit(1);
    }
    LOG(LOG_INFO, "shutting down: draining in-flight work", L_STR("signal", name),
        L_INT("grace_ms", s->cfg->grace_ms));
    atomic_store(&s->draining, true);
    s->grace_timer.fn = on_grace;
    loop_timer_in(l, &s->grace_timer, s->cfg->grace_ms);
    wake_all(s);
    arm_signal(s);
}

static int start_loop(struct server *s, int id)
{
    const struct config *cfg = s->cfg;
    struct loop *l = &s->loops[id];
    struct loop_config lc = {
        .entries = cfg->ring_entries,
        .recv_bufs = cfg->recv_bufs,
        .recv_buf_size = cfg->recv_buf_size,
        .pool_chunk = POOL_CHUNK,
        .pool_max_free = cfg->pool_max_free,
        .metrics_series = cfg->metrics_max_series,
    };
    int ret = loop_init(l, id, &lc);
    if (ret < 0) {
        LOG(LOG_ERROR, "cannot set up io_uring", L_INT("loop", id), L_STR("error", strerror(-ret)),
            L_STR("hint", ret == -EPERM || ret == -ENOSYS
                              ? "io_uring is blocked here (container seccomp profile or "
                                "kernel.io_uring_disabled); allow io_uring_setup/enter/register"
                              : "check memlock limits (ulimit -l) and --ring-entries"));
        return ret;
    }
    l->srv = s;
    l->on_wake = on_wake;
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        if (!(cfg->role_mask & (1u << i)) || !modules_builtin[i]->start)
            continue;
        ret = modules_builtin[i]->start(l);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static void *thread_main(void *arg)
{
    struct loop *l = arg;
    struct server *s = l->srv;
    int id = (int)(l - s->loops);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (start_loop(s, id) < 0)
        atomic_store(&s->start_failed, 1);
    pthread_barrier_wait(&s->barrier);
    if (!atomic_load(&s->start_failed))
        loop_run(l);
    log_flush();
    atomic_fetch_add(&s->loops_done, 1);
    loop_wake(&s->loops[0]);
    return NULL;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int server_run(const struct config *cfg)
{
    struct server *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->signal_fd = -1;
    s->signal_op.fn = on_signal;
    s->nloops = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nloops < 1)
        s->nloops = 1;
    s->loops = xcalloc((size_t)s->nloops, sizeof(*s->loops));
    s->threads = xcalloc((size_t)s->nloops, sizeof(*s->threads));
    for (int i = 0; i < s->nloops; i++) {
        s->loops[i].srv = s;
        s->loops[i].wake_fd = -1;
    }
    modules_roles_string(cfg, s->roles, sizeof(s->roles));
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->started_mono_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (s->signal_fd < 0) {
        LOG(LOG_ERROR, "signalfd failed", L_STR("error", strerror(errno)));
        return 1;
    }

    int code = 0;
    unsigned inited = 0;
    s->tls = xcalloc(1, sizeof(*s->tls));
    char why[768];
    /* Clients that verify servers: rediss://, and whatever a module says. */
    bool need_anchors = !strncmp(cfg->redis_url, "rediss://", 9);
    for (unsigned i = 0; !need_anchors && i < modules_builtin_count; i++)
        need_anchors = (cfg->role_mask & (1u << i)) && modules_builtin[i]->verifies_servers &&
                       modules_builtin[i]->verifies_servers(cfg);
    if (tls_store_load(s->tls, cfg->tls_cert, cfg->tls_key, cfg->tls_ca_file, need_anchors,
                       s->nloops, (size_t)cfg->tls_session_cache, why, sizeof(why)) < 0) {
        LOG(LOG_ERROR, "tls: cannot load", L_STR("error", why));
        code = 1;
        goto out;
    }
    log_identity(s, "TLS certificate loaded");
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        if (!(cfg->role_mask & (1u << i)))
            continue;
        if (modules_builtin[i]->init && modules_builtin[i]->init(s) < 0) {
            code = 1;
            goto out;
        }
        inited |= 1u << i;
    }

    pthread_barrier_init(&s->barrier, NULL, (unsigned)s->nloops);
    for (int i = 1; i < s->nloops; i++)
        if (pthread_create(&s->threads[i], NULL, thread_main, &s->loops[i])) {
            LOG(LOG_ERROR, "cannot start thread", L_INT("loop", i));
            _exit(1); /* the barrier would wait forever */
        }
    struct loop *l0 = &s->loops[0];
    if (start_loop(s, 0) < 0)
        atomic_store(&s->start_failed, 1);
    pthread_barrier_wait(&s->barrier);
    if (!atomic_load(&s->start_failed)) {
        l0->live += (unsigned)(s->nloops - 1);
        arm_signal(s);
        LOG(LOG_INFO, "trireme started", L_STR("version", TRIREME_VERSION),
            L_STR("roles", s->roles), L_INT("threads", s->nloops), L_STR("host", cfg->host),
            L_INT("port", cfg->port), L_BOOL("https", tls_store_serves(s->tls)),
            L_BOOL("defer_taskrun", (l0->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0),
            L_INT("pid", getpid()));
        loop_run(l0);
    } else {
        code = 1;
    }
    for (int i = 1; i < s->nloops; i++)
        pthread_join(s->threads[i], NULL);
    pthread_barrier_destroy(&s->barrier);
    if (!code)
        LOG(LOG_INFO, "trireme stopped", L_BOOL("forced", atomic_load(&s->force)));
out:
    for (unsigned i = 0; i < modules_builtin_count; i++)
        if ((inited & (1u << i)) && modules_builtin[i]->cleanup)
            modules_builtin[i]->cleanup(s);
    for (int i = 0; i < s->nloops; i++)
        loop_free(&s->loops[i]);
    close(s->signal_fd);
    tls_store_free(s->tls);
    free(s->tls);
    free(s->loops);
    free(s->threads);
    free(s);
    return code;
}
