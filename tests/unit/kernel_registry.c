/*
 * kernel_registry.c - the module table kernel-layer unit tests link.
 *
 * The kernel knows modules only through modules_builtin[] and roles_known[]
 * (kernel/module.h). The binary gets them from modules/registry.c, which
 * pulls in every module; a kernel test gets this table instead: the three
 * roles as descriptors with no hooks, so kernel code that walks the table
 * (role selection, start/stop) has one to walk and no module code is
 * linked. build.zig and tools/build-asan.sh add it to every test whose
 * includes stop at kernel/ (see the top of build.zig).
 */
#include "kernel/module.h"

static const struct module web_role = {.name = "web", .summary = "web role", .is_role = true};
static const struct module worker_role = {
    .name = "worker", .summary = "worker role", .is_role = true};
static const struct module beat_role = {.name = "beat", .summary = "beat role", .is_role = true};

const struct module *const modules_builtin[] = {&web_role, &worker_role, &beat_role};
const unsigned modules_builtin_count = 3;

const char *const roles_known[] = {"web", "worker", "beat"};
const unsigned roles_known_count = 3;
