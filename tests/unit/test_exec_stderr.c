/*
 * test_exec_stderr.c - an exec program's stderr as both modes keep it:
 * lines to the log (long ones in pieces, the unfinished one on flush), the
 * last bytes for the error (oldest first, from a character boundary, no
 * trailing newline, cleaned), nothing kept when the tail size is 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/kinds/kind_exec_stderr.h"

struct logged {
    char lines[8][EXEC_STDERR_LINE_MAX + 1];
    unsigned n;
};

static void log_line(void *ctx, const char *line, size_t len)
{
    struct logged *g = ctx;
    assert_true(g->n < 8);
    memcpy(g->lines[g->n], line, len);
    g->lines[g->n++][len] = '\0';
}

static void test_lines_go_to_the_log_one_by_one(void **state)
{
    (void)state;
    struct exec_stderr e;
    struct logged g = {0};
    exec_stderr_init(&e, 64);
    exec_stderr_take(&e, "first\nsec", 9, log_line, &g);
    exec_stderr_take(&e, "ond\nthird", 9, log_line, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[0], "first");
    assert_string_equal(g.lines[1], "second");
    exec_stderr_flush(&e, log_line, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.lines[2], "third");
    exec_stderr_flush(&e, log_line, &g); /* nothing begun: nothing logged */
    assert_int_equal(g.n, 3);
    exec_stderr_free(&e);
}

static void test_a_long_line_is_logged_in_pieces(void **state)
{
    (void)state;
    static char big[EXEC_STDERR_LINE_MAX + 10];
    memset(big, 'x', sizeof(big));
    struct exec_stderr e;
    struct logged g = {0};
    exec_stderr_init(&e, 16);
    exec_stderr_take(&e, big, sizeof(big), log_line, &g);
    exec_stderr_take(&e, "\n", 1, log_line, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(strlen(g.lines[0]), EXEC_STDERR_LINE_MAX);
    assert_string_equal(g.lines[1], "xxxxxxxxxx");
    exec_stderr_free(&e);
}

static void test_the_tail_is_the_last_bytes_oldest_first(void **state)
{
    (void)state;
    struct exec_stderr e;
    struct logged g = {0};
    char out[64];
    exec_stderr_init(&e, 8);
    exec_stderr_take(&e, "abcdefghij", 10, log_line, &g); /* the ring wrapped */
    exec_stderr_take(&e, "kl\n", 3, log_line, &g);
    assert_int_equal(exec_stderr_tail(&e, out, sizeof(out)), 7);
    assert_string_equal(out, "fghijkl");               /* 8 kept, the newline dropped */
    assert_int_equal(exec_stderr_tail(&e, out, 4), 2); /* room for 3: "kl\n", then trimmed */
    assert_string_equal(out, "kl");
    exec_stderr_reset(&e);
    assert_int_equal(exec_stderr_tail(&e, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    exec_stderr_free(&e);
}

static void test_the_tail_starts_on_a_character(void **state)
{
    (void)state;
    struct exec_stderr e;
    struct logged g = {0};
    char out[64];
    exec_stderr_init(&e, 5);
    exec_stderr_take(&e, "a\xc3\xa9\xc3\xa9z", 6, log_line, &g); /* "aééz": 6 bytes, 5 kept */
    assert_int_equal(exec_stderr_tail(&e, out, sizeof(out)), 5);
    assert_string_equal(out, "\xc3\xa9\xc3\xa9z");
    exec_stderr_take(&e, "!", 1, log_line, &g); /* now the ring begins mid-character */
    assert_int_equal(exec_stderr_tail(&e, out, sizeof(out)), 4);
    assert_string_equal(out, "\xc3\xa9z!");
    exec_stderr_free(&e);
}

static void test_a_zero_tail_keeps_nothing_but_still_logs(void **state)
{
    (void)state;
    struct exec_stderr e;
    struct logged g = {0};
    char out[16];
    exec_stderr_init(&e, 0);
    exec_stderr_take(&e, "gone\n", 5, log_line, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(exec_stderr_tail(&e, out, sizeof(out)), 0);
    exec_stderr_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_go_to_the_log_one_by_one),
        cmocka_unit_test(test_a_long_line_is_logged_in_pieces),
        cmocka_unit_test(test_the_tail_is_the_last_bytes_oldest_first),
        cmocka_unit_test(test_the_tail_starts_on_a_character),
        cmocka_unit_test(test_a_zero_tail_keeps_nothing_but_still_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
