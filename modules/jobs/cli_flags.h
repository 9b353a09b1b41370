/*
 * cli_flags.h - the command-line conventions the short-lived commands
 * (`trireme enqueue`, `trireme jobs`, `trireme schedules`) share: a
 * setting from its flag or its environment variable, and --name=value
 * flags read into a JSON object the API's validation then checks.
 */
#ifndef TRIREME_MODULES_JOBS_CLI_FLAGS_H
#define TRIREME_MODULES_JOBS_CLI_FLAGS_H

#include <jansson.h>
#include <stddef.h>

/* The value of flag ("--name=") in argv[1..argc), else env's when not
 * empty, else NULL. */
const char *cli_setting(int argc, char **argv, const char *flag, const char *env);

/* One argument a, "--name=value" with name one of fields (a dash in it
 * reads as '_'), into out[name]: payload parsed as JSON, priority and
 * max_attempts as integers, enabled as true or false, the rest as
 * strings. 0, or 2 after one line "trireme CMD: why" on stderr (example
 * shows what a flag looks like). */
int cli_flag_json(const char *cmd, const char *example, const char *a, const char *const *fields,
                  size_t nfields, json_t *out);

#endif
