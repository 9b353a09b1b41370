/*
 * registry.h - slots of the built-in modules, in modules_builtin[] order.
 * A module's per-loop state lives in loop->modules[its slot].
 */
#ifndef TRIREME_MODULES_REGISTRY_H
#define TRIREME_MODULES_REGISTRY_H

enum module_slot {
    MODULE_KINDS = 0, /* first: roles check kinds at init (--kind-limits, --schedules) */
    MODULE_JOBS,      /* its init applies the schema the roles use */
    MODULE_LEADER,
    MODULE_WEB,
    MODULE_WORKER,
    MODULE_BEAT,
    MODULE_DOCTOR, /* commands only */
    MODULE_COUNT,
};

#endif
