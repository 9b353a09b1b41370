/*
 * main.c - the trireme command: subcommands and their usage.
 *
 *   trireme run [flags]      start the selected roles (see trireme run --help)
 *   trireme health [flags]   probe /healthz; exit 0 when it answers 200
 *   trireme version          print the version
 */
#include <stdio.h>
#include <string.h>

#include "kernel/cli.h"
#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/version.h"

/* Subcommands Trireme defines; those no module provides yet are refused by name. */
static const char *const planned[] = {"migrate", "enqueue", "jobs", "schedules"};

static void module_commands_usage(FILE *out)
{
    for (unsigned i = 0; i < modules_builtin_count; i++)
        for (const struct module_command *c = modules_builtin[i]->commands; c && c->name; c++)
            fprintf(out, "  %-10s %s\n", c->name, c->summary);
}

static void usage(FILE *out)
{
    char built[128];
    modules_builtin_roles(built, sizeof(built));
    fprintf(out,
            "trireme %s - web, worker and beat roles in one io_uring process\n"
            "\n"
            "usage: trireme <command> [flags]\n"
            "\n"
            "commands:\n"
            "  run        start the roles chosen by --roles (built in: %s)\n"
            "  health     probe a running trireme's /healthz (exit 0 healthy, 1 not)\n"
            "  version    print the version\n"
            "  help       this text; `trireme run --help` lists every setting\n",
            TRIREME_VERSION, built);
    module_commands_usage(out);
    fprintf(out, "\nflags of `trireme run` (flag, environment variable, default):\n");
    config_help(out);
    fprintf(out, "\ncompiled-in limits (name, value, what it bounds; a rebuild changes them):\n");
    module_limits_help(out);
    fprintf(out, "\nflags of `trireme health`:\n");
    cli_health_help(out);
}

static bool wants_help(int argc, char **argv, int from)
{
    for (int i = from; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("trireme %s\n", TRIREME_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "health"))
        return cli_health(argc, argv, 2);
    if (!strcmp(cmd, "run")) {
        if (wants_help(argc, argv, 2)) {
            usage(stdout);
            return 0;
        }
        static struct config cfg; /* read-only once loaded; outlives every thread */
        int rc = config_load(&cfg, argc, argv, 2, stderr);
        if (rc)
            return rc;
        /* Before modules_resolve(): the notices it logs use the format. */
        log_setup((enum log_level)cfg.log_level, cfg.log_json);
        rc = modules_resolve(&cfg, stderr);
        if (rc)
            return rc;
        return server_run(&cfg);
    }
    const struct module_command *mc = modules_command(cmd);
    if (mc)
        return mc->run(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++)
        if (!strcmp(cmd, planned[i])) {
            fprintf(stderr, "trireme: '%s' is not built into this version of trireme\n", cmd);
            return 2;
        }
    fprintf(stderr, "trireme: unknown command '%s' (see trireme help)\n", cmd);
    return 2;
}
