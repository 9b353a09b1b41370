/*
 * test_csv_list.c - proto/csv_list: items in order with blanks trimmed,
 * empty items kept, and where a list ends.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/csv_list.h"

/* The items of list joined by '|', for one comparison per case. */
static const char *walk(const char *list, char *out, size_t cap)
{
    const char *p = list, *item;
    size_t len, o = 0;
    bool first = true;
    out[0] = '\0';
    while (csv_next(&p, &item, &len)) {
        assert_true(o + len + 2 < cap);
        if (!first)
            out[o++] = '|';
        first = false;
        memcpy(out + o, item, len);
        o += len;
        out[o] = '\0';
    }
    return out;
}

static void items_come_in_order_with_blanks_trimmed(void **state)
{
    char out[128];
    assert_string_equal(walk("a,b,c", out, sizeof(out)), "a|b|c");
    assert_string_equal(walk("  key1:read , key2 ,key3", out, sizeof(out)), "key1:read|key2|key3");
    assert_string_equal(walk("one", out, sizeof(out)), "one");
}

static void empty_items_are_kept_and_a_trailing_comma_ends_the_list(void **state)
{
    char out[128];
    assert_string_equal(walk("a,,b", out, sizeof(out)), "a||b");
    assert_string_equal(walk("a, ,b", out, sizeof(out)), "a||b");
    assert_string_equal(walk("a,", out, sizeof(out)), "a");
    assert_string_equal(walk(",a", out, sizeof(out)), "|a");
}

static void an_empty_list_has_no_items(void **state)
{
    const char *p = "", *item = NULL;
    size_t len = 99;
    assert_false(csv_next(&p, &item, &len));
    assert_null(item);
    assert_int_equal(len, 99);
    char out[16];
    assert_string_equal(walk("   ", out, sizeof(out)), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(items_come_in_order_with_blanks_trimmed),
        cmocka_unit_test(empty_items_are_kept_and_a_trailing_comma_ends_the_list),
        cmocka_unit_test(an_empty_list_has_no_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
