/*
 * test_router.c - route matching: methods, parameters, 404 vs 405, the
 * dashboard's /ui routes; the handler-facing wrappers over the proto/
 * codecs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/web/web.h"

static void healthz_get_and_head(void **state)
{
    struct web_request r;
    memset(&r, 0, sizeof(r));
    int status = 0;
    char allow[64];
    assert_non_null(web_route_match("GET", 3, "/healthz", 8, &r, &status, allow, sizeof(allow)));
    assert_non_null(web_route_match("HEAD", 4, "/healthz", 8, &r, &status, allow, sizeof(allow)));
}

static void not_found_vs_not_allowed(void **state)
{
    struct web_request r;
    memset(&r, 0, sizeof(r));
    int status = 0;
    char allow[64] = "";
    assert_null(web_route_match("GET", 3, "/healthz/x", 10, &r, &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
    assert_null(web_route_match("GET", 3, "/health", 7, &r, &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
    assert_null(web_route_match("DELETE", 6, "/healthz", 8, &r, &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD");
}

/* The dashboard: the page at /ui and /ui/ (no parameter), one file name
 * per /ui/<file>, nothing deeper; GET and HEAD only. */
static void ui_routes(void **state)
{
    struct web_request r;
    memset(&r, 0, sizeof(r));
    int status = 0;
    char allow[64] = "";
    size_t n = 0;
    assert_non_null(web_route_match("GET", 3, "/ui", 3, &r, &status, allow, sizeof(allow)));
    assert_null(web_param(&r, "file", NULL));
    assert_non_null(web_route_match("GET", 3, "/ui/", 4, &r, &status, allow, sizeof(allow)));
    assert_null(web_param(&r, "file", NULL));
    assert_non_null(
        web_route_match("HEAD", 4, "/ui/app.js", 10, &r, &status, allow, sizeof(allow)));
    const char *file = web_param(&r, "file", &n);
    assert_non_null(file);
    assert_int_equal(n, 6);
    assert_memory_equal(file, "app.js", 6);
    assert_null(web_route_match("GET", 3, "/ui/a/b", 7, &r, &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
    assert_null(web_route_match("POST", 4, "/ui", 3, &r, &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD");
}

static void web_json_escape_wraps_the_codec(void **state)
{
    char out[64];
    web_json_escape(out, sizeof(out), "a\"b\\c\n\x01", 7);
    assert_string_equal(out, "a\\\"b\\\\c\\u000a\\u0001");
    /* Truncates whole escapes only. */
    web_json_escape(out, 4, "\"\"\"", 3);
    assert_string_equal(out, "\\\"");
}

static void web_query_reads_the_request_query(void **state)
{
    struct http1_request h = {.query = "limit=5&state=queued%2Crunning", .query_len = 30};
    struct web_request r = {.http = &h};
    char out[32];
    assert_int_equal(web_query(&r, "state", out, sizeof(out)), 1);
    assert_string_equal(out, "queued,running");
    assert_int_equal(web_query(&r, "cursor", out, sizeof(out)), 0);
    h.query = NULL;
    h.query_len = 0;
    assert_int_equal(web_query(&r, "limit", out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz_get_and_head),
        cmocka_unit_test(not_found_vs_not_allowed),
        cmocka_unit_test(ui_routes),
        cmocka_unit_test(web_json_escape_wraps_the_codec),
        cmocka_unit_test(web_query_reads_the_request_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
