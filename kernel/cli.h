/*
 * cli.h - client-side subcommands that talk to a running trireme.
 */
#ifndef TRIREME_KERNEL_CLI_H
#define TRIREME_KERNEL_CLI_H

#include <stdio.h>

/* trireme health [--host=H] [--port=P] [--path=/healthz] [--timeout=2s] */
int cli_health(int argc, char **argv, int first);
void cli_health_help(FILE *out);

#endif
