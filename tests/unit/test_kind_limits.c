/*
 * test_kind_limits.c - --kind-limits parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/kinds/kind_limits.h"

static void parses_and_finds(void **state)
{
    struct kind_limits l;
    char msg[200];
    assert_int_equal(kind_limits_parse(" sleep 10/1s; sql 100/1m ;", &l, msg, sizeof(msg)), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(kind_limit_find(&l, "sleep")->limit, 10);
    assert_int_equal(kind_limit_find(&l, "sql")->window_ms, 60000);
    assert_null(kind_limit_find(&l, "noop"));
    assert_int_equal(kind_limits_parse("", &l, msg, sizeof(msg)), 0);
    assert_int_equal(l.n, 0);
}

static void rejects(void **state)
{
    const char *bad[] = {"sleep", "sleep 10", "sleep ten/1s", "sleep 10/soon", "nosuchkind 1/1s",
                         "sleep 0/1s", "sleep 1/1s extra"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kind_limits l;
        char msg[200] = "";
        assert_int_equal(kind_limits_parse(bad[i], &l, msg, sizeof(msg)), -1);
        assert_non_null(strstr(msg, "kind limit"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(parses_and_finds), cmocka_unit_test(rejects)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
