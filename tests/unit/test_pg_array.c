/*
 * test_pg_array.c - PostgreSQL array literals: integers, NULLs, quoting
 * and escaping of text, reuse of the buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/pg_array.h"

static void empty_and_integers(void **state)
{
    struct pg_array a = {0};
    pg_array_begin(&a);
    assert_string_equal(pg_array_end(&a), "{}");
    pg_array_begin(&a);
    pg_array_int(&a, 1);
    pg_array_int(&a, -9223372036854775807LL - 1);
    pg_array_null(&a);
    pg_array_int(&a, 42);
    assert_string_equal(pg_array_end(&a), "{1,-9223372036854775808,NULL,42}");
    pg_array_free(&a);
}

static void text_is_quoted_and_escaped(void **state)
{
    struct pg_array a = {0};
    pg_array_begin(&a);
    pg_array_text(&a, "default", 7);
    pg_array_text(&a, "", 0);
    pg_array_text(&a, "NULL", 4);
    pg_array_text(&a, "a \"b\", {c}\\", 11);
    assert_string_equal(pg_array_end(&a), "{\"default\",\"\",\"NULL\",\"a \\\"b\\\", {c}\\\\\"}");
    pg_array_free(&a);
}

static void the_buffer_grows_and_is_reused(void **state)
{
    struct pg_array a = {0};
    pg_array_begin(&a);
    for (int i = 0; i < 10000; i++)
        pg_array_int(&a, i);
    const char *s = pg_array_end(&a);
    assert_int_equal(strncmp(s, "{0,1,2,", 7), 0);
    assert_string_equal(s + strlen(s) - 6, ",9999}");
    size_t cap = a.cap;
    pg_array_begin(&a);
    pg_array_int(&a, 7);
    assert_string_equal(pg_array_end(&a), "{7}");
    assert_int_equal(a.cap, cap);
    pg_array_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_and_integers),
        cmocka_unit_test(text_is_quoted_and_escaped),
        cmocka_unit_test(the_buffer_grows_and_is_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
