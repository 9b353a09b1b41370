/*
 * cli_flags.c - flags and settings of the short-lived commands (see
 * cli_flags.h).
 */
#include "modules/jobs/cli_flags.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_setting(int argc, char **argv, const char *flag, const char *env)
{
    size_t n = strlen(flag);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], flag, n))
            return argv[i] + n;
    const char *v = getenv(env);
    return v && *v ? v : NULL;
}

int cli_flag_json(const char *cmd, const char *example, const char *a, const char *const *fields,
                  size_t nfields, json_t *out)
{
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a - 2) : 0;
    char name[32];
    if (strncmp(a, "--", 2) || !eq || nl == 0 || nl >= sizeof(name)) {
        fprintf(stderr, "trireme %s: flags look like %s (got %s)\n", cmd, example, a);
        return 2;
    }
    memcpy(name, a + 2, nl);
    name[nl] = 0;
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    bool known = false;
    for (size_t k = 0; k < nfields; k++)
        known |= !strcmp(name, fields[k]);
    if (!known) {
        fprintf(stderr, "trireme %s: unknown flag %.*s\n", cmd, (int)(eq - a), a);
        return 2;
    }
    const char *v = eq + 1;
    json_t *val;
    if (!strcmp(name, "payload")) {
        json_error_t e;
        val = json_loads(v, JSON_DECODE_ANY, &e);
        if (!val) {
            fprintf(stderr, "trireme %s: --payload is not valid JSON: %s\n", cmd, e.text);
            return 2;
        }
    } else if (!strcmp(name, "priority") || !strcmp(name, "max_attempts")) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end) {
            fprintf(stderr, "trireme %s: --%s=%s is not an integer\n", cmd, name, v);
            return 2;
        }
        val = json_integer(n);
    } else if (!strcmp(name, "enabled")) {
        if (strcmp(v, "true") && strcmp(v, "false")) {
            fprintf(stderr, "trireme %s: --enabled must be true or false (got %s)\n", cmd, v);
            return 2;
        }
        val = json_boolean(!strcmp(v, "true"));
    } else {
        val = json_string(v);
    }
    json_object_set_new(out, name, val);
    return 0;
}
