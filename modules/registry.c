/*
 * registry.c - the one table of modules built into this binary.
 *
 * Adding a role or a shared service: write modules/<name>/, add its
 * descriptor here and its slot in registry.h. Roles listed in roles_known
 * but absent here are refused by name at start-up.
 */
#include "kernel/module.h"
#include "modules/registry.h"

extern const struct module kinds_module;
extern const struct module jobs_module;
extern const struct module leader_module;
extern const struct module web_module;
extern const struct module worker_module;
extern const struct module beat_module;
extern const struct module doctor_module;

const struct module *const modules_builtin[MODULE_COUNT] = {
    [MODULE_KINDS] = &kinds_module,
    [MODULE_JOBS] = &jobs_module,
    [MODULE_LEADER] = &leader_module,
    [MODULE_WEB] = &web_module,
    [MODULE_WORKER] = &worker_module,
    [MODULE_BEAT] = &beat_module,
    [MODULE_DOCTOR] = &doctor_module,
};
const unsigned modules_builtin_count = MODULE_COUNT;

const char *const roles_known[] = {"web", "worker", "beat"};
const unsigned roles_known_count = 3;
