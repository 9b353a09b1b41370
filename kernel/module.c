/*
 * module.c - choosing which roles run (--roles, WORKER_ENABLED).
 */
#include "kernel/module.h"

#include <stdio.h>
#include <string.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "proto/csv_list.h"

static int builtin_index(const char *name, size_t len)
{
    for (unsigned i = 0; i < modules_builtin_count; i++)
        if (modules_builtin[i]->is_role && strlen(modules_builtin[i]->name) == len &&
            !strncmp(modules_builtin[i]->name, name, len))
            return (int)i;
    return -1;
}

static bool known_role(const char *name, size_t len)
{
    for (unsigned i = 0; i < roles_known_count; i++)
        if (strlen(roles_known[i]) == len && !strncmp(roles_known[i], name, len))
            return true;
    return false;
}

void modules_builtin_roles(char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        if (!modules_builtin[i]->is_role)
            continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "",
                              modules_builtin[i]->name);
    }
}

static int add_role(struct config *cfg, const char *name, size_t len, FILE *err)
{
    int idx = builtin_index(name, len);
    if (idx >= 0) {
        cfg->role_mask |= 1u << idx;
        return 0;
    }
    char built[128];
    modules_builtin_roles(built, sizeof(built));
    if (known_role(name, len))
        fprintf(err, "trireme: role '%.*s' is not built into this version of trireme (built: %s)\n",
                (int)len, name, built);
    else
        fprintf(err, "trireme: unknown role '%.*s' in --roles (roles: web, worker, beat)\n",
                (int)len, name);
    return 2;
}

int modules_resolve(struct config *cfg, FILE *err)
{
    cfg->role_mask = 0;
    const char *s = cfg->roles;
    if (!*s) {
        for (unsigned i = 0; i < modules_builtin_count; i++)
            if (modules_builtin[i]->is_role)
                cfg->role_mask |= 1u << i;
    }
    size_t len, all = strlen(s);
    for (const char *at = s; csv_next(&at, &s, &len);) {
        if (!len) {
            fprintf(err, "trireme: empty role in --roles=%s\n", cfg->roles);
            return 2;
        }
        if (add_role(cfg, s, len, err))
            return 2;
    }
    if (all && cfg->roles[all - 1] == ',') { /* csv_next ends the list there */
        fprintf(err, "trireme: empty role in --roles=%s\n", cfg->roles);
        return 2;
    }
    if (cfg->worker_enabled == 1) {
        if (add_role(cfg, "worker", 6, err))
            return 2;
    } else if (cfg->worker_enabled == 0) {
        int idx = builtin_index("worker", 6);
        if (idx >= 0)
            cfg->role_mask &= ~(1u << idx);
    }
    /* A shared service every role relies on must be able to run. */
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        const struct module *m = modules_builtin[i];
        const char *why = !m->is_role && m->unmet ? m->unmet(cfg) : NULL;
        if (why) {
            fprintf(err, "trireme: %s\n", why);
            return 2;
        }
    }
    /* A role asked for by name must be able to run; a role that is on only
     * because no role was named is left out, with a word, when it cannot. */
    bool named = *cfg->roles || cfg->worker_enabled == 1;
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        const struct module *m = modules_builtin[i];
        const char *why = (cfg->role_mask & (1u << i)) && m->unmet ? m->unmet(cfg) : NULL;
        if (!why)
            continue;
        if (named) {
            fprintf(err, "trireme: role '%s' cannot start: %s\n", m->name, why);
            return 2;
        }
        /* Not an error, and the server goes on to start: a log line in the
         * chosen format, since every line of stderr is one log event
         * (LOG_FORMAT=json: one JSON object per line). main() set the log up. */
        LOG(LOG_WARN, "role off", L_STR("role", m->name), L_STR("reason", why));
        cfg->role_mask &= ~(1u << i);
    }
    if (!cfg->role_mask) {
        fprintf(err, "trireme: no role selected (--roles=web,worker,beat)\n");
        return 2;
    }
    for (unsigned i = 0; i < modules_builtin_count; i++)
        if (!modules_builtin[i]->is_role)
            cfg->role_mask |= 1u << i;
    return 0;
}

const struct module_command *modules_command(const char *name)
{
    for (unsigned i = 0; i < modules_builtin_count; i++)
        for (const struct module_command *c = modules_builtin[i]->commands; c && c->name; c++)
            if (!strcmp(c->name, name))
                return c;
    return NULL;
}

void modules_roles_string(const struct config *cfg, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (unsigned i = 0; i < modules_builtin_count; i++) {
        if (!(cfg->role_mask & (1u << i)) || !modules_builtin[i]->is_role)
            continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "",
                              modules_builtin[i]->name);
    }
}
