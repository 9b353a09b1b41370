/*
 * module.h - a module is one static descriptor of hooks (nginx-style).
 *
 * The kernel knows modules only through this struct and the table in
 * modules/registry.c. Roles (web, worker, beat) are modules that --roles
 * can select; services that roles share (leader election, say) are modules
 * that roles start. Hooks:
 *   init   once per process, before any loop, with the final config;
 *   start  once per loop, on the loop's own thread;
 *   stop   once per loop when draining begins (stop taking new work);
 *   wake   when another thread woke the loop (shared state changed);
 *   health fills readiness details; returns 0 when healthy.
 * Hooks that can fail (init, start) return 0 or a negative errno.
 */
#ifndef TRIREME_KERNEL_MODULE_H
#define TRIREME_KERNEL_MODULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct config;
struct loop;
struct server;

/* A subcommand a module adds to the CLI (`trireme migrate`, ...). */
struct module_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command; exit code */
};

/* A compiled-in limit a module enforces: `trireme --help` lists them all,
 * so an operator learns every bound without reading the source. */
struct module_limit {
    const char *name; /* the macro's name */
    long long value;
    const char *unit; /* "", "ms", "s", "bytes" */
    const char *what;
};

struct module {
    const char *name;
    const char *summary;
    bool is_role;
    /* Can this role run with this config? NULL or a static reason why not.
     * A module that is not a role and answers stops the start (exit 2). */
    const char *(*unmet)(const struct config *cfg);
    /* Does this module verify TLS servers with this config? The trust
     * anchors are then loaded once at start (kernel/tls_store). */
    bool (*verifies_servers)(const struct config *cfg);
    int (*init)(struct server *s);
    int (*start)(struct loop *l);
    void (*stop)(struct loop *l);
    /* Another thread woke this loop (loop_wake): re-read shared state. */
    void (*wake)(struct loop *l);
    int (*health)(struct server *s, json_t *details);
    void (*cleanup)(struct server *s);
    const struct module_command *commands; /* NULL-name terminated, or NULL */
    const struct module_limit *limits;     /* NULL-name terminated, or NULL */
};

/* `trireme --help`'s list of compiled-in limits: the kernel's, then each
 * built-in module's (kernel/limits.c). */
void module_limits_help(FILE *out);

/* Defined in modules/registry.c. */
extern const struct module *const modules_builtin[];
extern const unsigned modules_builtin_count;
/* Every role Trireme defines, built in this binary or not. */
extern const char *const roles_known[];
extern const unsigned roles_known_count;

/* Resolve cfg->roles (+ WORKER_ENABLED) into cfg->role_mask (bit = index in
 * modules_builtin; non-role modules are always set). Returns 0, or 2 after
 * one line to err naming the role. */
int modules_resolve(struct config *cfg, FILE *err);
/* "web,worker": the selected roles, for logs and /healthz. */
void modules_roles_string(const struct config *cfg, char *out, size_t cap);
void modules_builtin_roles(char *out, size_t cap);
/* The module command named `name`, or NULL. */
const struct module_command *modules_command(const char *name);

#endif
