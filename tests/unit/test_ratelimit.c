/*
 * test_ratelimit.c - --rate-limits rules: parsing, rejections, matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/web/ratelimit.h"

static void parses_rules(void **state)
{
    struct ratelimit_rules rs;
    char msg[200];
    assert_int_equal(
        ratelimit_parse(" POST /v1/jobs ip 100/1m ; * /v1/* key 10/1s;GET /x header:X-Tenant 5/500ms",
                        &rs, msg, sizeof(msg)),
        0);
    assert_int_equal(rs.n, 3);
    assert_string_equal(rs.v[0].method, "POST");
    assert_int_equal(rs.v[0].key, RL_IP);
    assert_int_equal(rs.v[0].limit, 100);
    assert_int_equal(rs.v[0].window_ms, 60000);
    assert_int_equal(rs.v[1].key, RL_API_KEY);
    assert_int_equal(rs.v[2].key, RL_HEADER);
    assert_string_equal(rs.v[2].header, "X-Tenant");
    assert_int_equal(rs.v[2].window_ms, 500);
}

static void rejects_bad_rules(void **state)
{
    const char *bad[] = {"POST /v1/jobs ip", "POST v1 ip 1/1s", "POST /x nobody 1/1s",
                         "POST /x ip 0/1s", "POST /x ip 5/soon", "POST /x ip 5", "POST /x ip 5/1s extra"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ratelimit_rules rs;
        char msg[200] = "";
        assert_int_equal(ratelimit_parse(bad[i], &rs, msg, sizeof(msg)), -1);
        assert_non_null(strstr(msg, "rate limit rule"));
    }
}

static void matches_first_rule(void **state)
{
    struct ratelimit_rules rs;
    char msg[200];
    ratelimit_parse("POST /v1/jobs ip 1/1s; * /v1/* key 2/1s", &rs, msg, sizeof(msg));
    assert_ptr_equal(ratelimit_match(&rs, "POST", 4, "/v1/jobs", 8), &rs.v[0]);
    assert_ptr_equal(ratelimit_match(&rs, "GET", 3, "/v1/jobs", 8), &rs.v[1]);
    assert_ptr_equal(ratelimit_match(&rs, "POST", 4, "/v1/jobs/1/cancel", 17), &rs.v[1]);
    assert_null(ratelimit_match(&rs, "GET", 3, "/healthz", 8));
    assert_null(ratelimit_match(&rs, "GET", 3, "/v2", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_rules),
        cmocka_unit_test(rejects_bad_rules),
        cmocka_unit_test(matches_first_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
