/*
 * test_job_input.c - job validation: every field, every rejection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "modules/jobs/job_input.h"

static char field_copy[64];

static json_t *norm(const char *text, const char **field, char *msg)
{
    json_error_t e;
    json_t *in = json_loads(text, 0, &e);
    assert_non_null(in);
    json_t *out = job_input_normalize(in, field, msg, 300);
    /* field may point into `in` (an unknown key's name): copy it first. */
    if (!out) {
        snprintf(field_copy, sizeof(field_copy), "%s", *field);
        *field = field_copy;
    }
    json_decref(in);
    return out;
}

static void minimal_and_full(void **state)
{
    const char *field = NULL;
    char msg[300];
    json_t *o = norm("{\"kind\":\"noop\"}", &field, msg);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "noop");
    json_decref(o);
    o = norm("{\"kind\":\"sleep\",\"queue\":\"emails\",\"payload\":{\"ms\":5},"
             "\"run_at\":\"2026-11-22T07:00:00Z\",\"priority\":-3,\"max_attempts\":7,"
             "\"timeout\":\"90s\",\"unique_key\":\"order-1\"}",
             &field, msg);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "run_at_ms")), 1795330800000LL);
    assert_int_equal(json_integer_value(json_object_get(o, "timeout_ms")), 90000);
    assert_int_equal(json_integer_value(json_object_get(o, "priority")), -3);
    assert_null(json_object_get(o, "run_at"));
    json_decref(o);
    o = norm("{\"kind\":\"noop\",\"delay\":315360000}", &field, msg); /* 10 years of 365 days */
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "delay_ms")), 315360000000LL);
    json_decref(o);
    o = norm("{\"kind\":\"noop\",\"delay\":2.5}", &field, msg);
    assert_int_equal(json_integer_value(json_object_get(o, "delay_ms")), 2500);
    json_decref(o);
}

static void rejections_name_the_field(void **state)
{
    struct {
        const char *in, *field;
    } cases[] = {
        {"{}", "kind"},
        {"{\"kind\":\"\"}", "kind"},
        {"{\"kind\":7}", "kind"},
        {"{\"kind\":\"nope\"}", "kind"},
        {"{\"kind\":\"noop\",\"queue\":[]}", "queue"},
        {"{\"kind\":\"noop\",\"priority\":1.5}", "priority"},
        {"{\"kind\":\"noop\",\"max_attempts\":0}", "max_attempts"},
        {"{\"kind\":\"noop\",\"run_at\":\"tomorrow\"}", "run_at"},
        {"{\"kind\":\"noop\",\"run_at\":\"2026-11-22T07:00:00Z\",\"delay\":1}", "run_at"},
        {"{\"kind\":\"noop\",\"delay\":-1}", "delay"},
        {"{\"kind\":\"noop\",\"timeout\":0}", "timeout"},
        /* Past the named maximum, and past what milliseconds can hold
         * (an overflow here once aborted the whole process). */
        {"{\"kind\":\"noop\",\"delay\":315619201}", "delay"},
        {"{\"kind\":\"noop\",\"delay\":9000000000000000}", "delay"},
        {"{\"kind\":\"noop\",\"delay\":10000000000000000}", "delay"},
        {"{\"kind\":\"noop\",\"delay\":\"99999999999h\"}", "delay"},
        {"{\"kind\":\"noop\",\"timeout\":10000000000000000}", "timeout"},
        {"{\"kind\":\"noop\",\"timeout\":9223372036854775807}", "timeout"},
        {"{\"kind\":\"noop\",\"colour\":\"red\"}", "colour"},
        {"{\"kind\":\"sleep\",\"payload\":{\"ms\":\"x\"}}", "payload"},
        {"{\"kind\":\"sql\",\"payload\":{}}", "payload"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *field = NULL;
        char msg[300] = "";
        json_t *o = norm(cases[i].in, &field, msg);
        if (o)
            fail_msg("accepted %s", cases[i].in);
        assert_non_null(field);
        assert_string_equal(field, cases[i].field);
        assert_true(strlen(msg) > 0);
    }
    const char *field = NULL;
    char msg[300];
    json_t *arr = json_array();
    assert_null(job_input_normalize(arr, &field, msg, sizeof(msg)));
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_and_full),
        cmocka_unit_test(rejections_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
