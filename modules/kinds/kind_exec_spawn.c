/*
 * kind_exec_spawn.c - vfork + execve into a new process group; see
 * kind_exec_spawn.h.
 *
 * Between vfork and execve the child shares our memory, so it only makes
 * system calls: it resets what trireme changed for itself (every signal is
 * blocked in its threads, SIGPIPE is ignored: both survive execve), joins a
 * group of its own (so limits signal the program and what it started),
 * asks to be killed if trireme dies (the thread that started it: a loop,
 * which outlives its programs), applies the memory limit, moves its pipe ends to 0-3 and closes
 * every other descriptor. A failure before execve is reported through errno_out in the shared
 * memory; the parent reaps that child at once.
 */
#include "modules/kinds/kind_exec_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* A pipe whose parent end is non-blocking; both ends close-on-exec and
 * above EXEC_PROGRESS_FD, so moving the child's ends to 0-3 never
 * overwrites another of them. */
static int make_pipe(int *parent, int *child, int parent_is_read)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    for (int i = 0; i < 2; i++)
        if (p[i] <= EXEC_PROGRESS_FD) {
            int d = fcntl(p[i], F_DUPFD_CLOEXEC, EXEC_PROGRESS_FD + 1);
            close(p[i]);
            p[i] = d;
        }
    if (p[0] < 0 || p[1] < 0) {
        int e = errno;
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -e;
    }
    *parent = parent_is_read ? p[0] : p[1];
    *child = parent_is_read ? p[1] : p[0];
    fcntl(*parent, F_SETFL, O_NONBLOCK);
    return 0;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int exec_spawn(const struct exec_spec *s, char *const envp[], struct exec_child *c)
{
    int parent[4] = {-1, -1, -1, -1}, child[4] = {-1, -1, -1, -1}, rc = 0;
    for (int i = 0; i < 4 && !rc; i++)
        rc = make_pipe(&parent[i], &child[i], i != 0);
    if (rc) {
        close_all(parent, 4);
        close_all(child, 4);
        return rc;
    }
    struct rlimit mem = {.rlim_cur = s->memory_limit, .rlim_max = s->memory_limit};
    volatile int errno_out = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        if (sigaction(SIGPIPE, &dfl, NULL) || sigprocmask(SIG_SETMASK, &none, NULL) ||
            setpgid(0, 0) || prctl(PR_SET_PDEATHSIG, SIGKILL) ||
            (s->memory_limit && setrlimit(RLIMIT_AS, &mem)) || (s->cwd && chdir(s->cwd)))
            goto fail;
        for (int i = 0; i < 4; i++)
            if (dup2(child[i], i) < 0)
                goto fail;
        syscall(SYS_close_range, EXEC_PROGRESS_FD + 1, ~0U, 0);
        execve(s->argv[0], s->argv, envp);
    fail:
        errno_out = errno ? errno : EINVAL;
        _exit(127);
    }
    int e = pid < 0 ? errno : errno_out;
    close_all(child, 4);
    if (pid > 0 && e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    int pidfd = -1;
    if (!e) {
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
            e = errno;
            kill(-pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    if (e) {
        close_all(parent, 4);
        return -e;
    }
    *c = (struct exec_child){.pid = pid,
                             .pidfd = pidfd,
                             .in = parent[0],
                             .out = parent[1],
                             .err = parent[2],
                             .prog = parent[3]};
    return 0;
}
