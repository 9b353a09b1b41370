/*
 * test_config.c - settings: defaults, environment, flags, bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/config.h"
#include "kernel/module.h"

static char errbuf[4096];

static int load(struct config *c, int argc, char **argv)
{
    FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
    memset(errbuf, 0, sizeof(errbuf));
    int rc = config_load(c, argc, argv, 0, err);
    fclose(err);
    return rc;
}

static void clear_env(void)
{
    unsetenv("PORT");
    unsetenv("HOST");
    unsetenv("LOG_LEVEL");
    unsetenv("TRIREME_GRACE");
    unsetenv("WORKER_ENABLED");
    unsetenv("TRIREME_ROLES");
}

static void defaults(void **state)
{
    clear_env();
    struct config c;
    assert_int_equal(load(&c, 0, NULL), 0);
    assert_int_equal(c.port, 8000);
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.grace_ms, 30000);
    assert_int_equal(c.max_head, 16384);
    assert_int_equal(c.max_uri, 8192);
    assert_int_equal(c.max_headers, 100);
    assert_int_equal(c.max_body, 1048576);
    assert_int_equal(c.worker_enabled, -1);
    assert_true(c.access_log);
}

static void env_then_flags(void **state)
{
    clear_env();
    setenv("PORT", "9001", 1);
    setenv("TRIREME_GRACE", "500ms", 1);
    struct config c;
    assert_int_equal(load(&c, 0, NULL), 0);
    assert_int_equal(c.port, 9001);
    assert_int_equal(c.grace_ms, 500);
    char *argv[] = {"--port=9002", "--grace", "2m", "--access-log=false", "--log-format=json"};
    assert_int_equal(load(&c, 5, argv), 0);
    assert_int_equal(c.port, 9002);
    assert_int_equal(c.grace_ms, 120000);
    assert_false(c.access_log);
    assert_true(c.log_json);
    clear_env();
}

static void bad_values_name_the_input(void **state)
{
    clear_env();
    struct config c;
    char *a1[] = {"--port=70000"};
    assert_int_equal(load(&c, 1, a1), 2);
    assert_non_null(strstr(errbuf, "--port=70000"));
    assert_non_null(strstr(errbuf, "1..65535"));
    assert_non_null(strchr(errbuf, '\n'));
    assert_null(strchr(strchr(errbuf, '\n') + 1, '\n')); /* one line */
    char *a2[] = {"--nope=1"};
    assert_int_equal(load(&c, 1, a2), 2);
    assert_non_null(strstr(errbuf, "unknown flag --nope"));
    char *a3[] = {"--grace=soon"};
    assert_int_equal(load(&c, 1, a3), 2);
    assert_non_null(strstr(errbuf, "duration"));
    char *a4[] = {"--recv-buffers=1000"};
    assert_int_equal(load(&c, 1, a4), 2);
    assert_non_null(strstr(errbuf, "power of two"));
    setenv("PORT", "http", 1);
    assert_int_equal(load(&c, 0, NULL), 2);
    assert_non_null(strstr(errbuf, "PORT=http"));
    clear_env();
}

static void durations(void **state)
{
    assert_int_equal(config_parse_duration_ms("250ms"), 250);
    assert_int_equal(config_parse_duration_ms("10"), 10000);
    assert_int_equal(config_parse_duration_ms("1.5s"), 1500);
    assert_int_equal(config_parse_duration_ms("2m"), 120000);
    assert_int_equal(config_parse_duration_ms("1h"), 3600000);
    assert_int_equal(config_parse_duration_ms("-1s"), -1);
    assert_int_equal(config_parse_duration_ms("10x"), -1);
    assert_int_equal(config_parse_duration_ms(""), -1);
}

static void roles(void **state)
{
    clear_env();
    struct config c;
    FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
    assert_int_equal(load(&c, 0, NULL), 0);
    assert_int_equal(modules_resolve(&c, err), 0);
    assert_true(c.role_mask != 0);
    strcpy(c.roles, "web");
    assert_int_equal(modules_resolve(&c, err), 0);
    strcpy(c.roles, "web,nope");
    assert_int_equal(modules_resolve(&c, err), 2);
    fflush(err);
    assert_non_null(strstr(errbuf, "unknown role 'nope'"));
    fclose(err);
    /* Blanks around a role are trimmed; an empty one, trailing comma
     * included, is refused. */
    strcpy(c.roles, " web ");
    err = fmemopen(errbuf, sizeof(errbuf), "w");
    assert_int_equal(modules_resolve(&c, err), 0);
    const char *empty[] = {"web,", "web,,web", "web, ", ","};
    for (unsigned i = 0; i < sizeof(empty) / sizeof(*empty); i++) {
        strcpy(c.roles, empty[i]);
        assert_int_equal(modules_resolve(&c, err), 2);
    }
    fflush(err);
    assert_non_null(strstr(errbuf, "empty role in --roles=web,"));
    fclose(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(env_then_flags),
        cmocka_unit_test(bad_values_name_the_input),
        cmocka_unit_test(durations),
        cmocka_unit_test(roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
