/*
 * kind_exec_spawn.h - starting an exec kind's program: a new process
 * group, its descriptors, limits and environment, without blocking the
 * loop (vfork: the caller waits only until the child has called execve).
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_SPAWN_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_SPAWN_H

#include <sys/types.h>

#include "modules/kinds/kind_exec.h"

/* The parent's ends, non-blocking and close-on-exec: stdin (write),
 * stdout, stderr and progress (read); and the child's pid and pidfd. */
struct exec_child {
    pid_t pid;
    int pidfd, in, out, err, prog;
};

/* Start s->argv with envp. 0, or -errno (nothing left open or running). */
int exec_spawn(const struct exec_spec *s, char *const envp[], struct exec_child *c);

#endif
