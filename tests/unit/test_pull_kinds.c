/*
 * test_pull_kinds.c - pull kinds (modules/kinds/kinds_pull.c): --pull-kinds
 * lists and {"type": "pull"} in a kinds file become kinds of the registry
 * that job_kind_is_pull recognizes; bad names, built-in names and
 * duplicates are refused with a message naming the kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "modules/kinds/kind.h"
#include "modules/kinds/kinds_file.h"

static void test_pull_list(void **state)
{
    struct kinds_file f;
    char msg[700];
    assert_int_equal(kinds_file_load("", &f, msg, sizeof(msg)), 0);
    assert_int_equal(kinds_file_add_pull(&f, "", msg, sizeof(msg)), 0);
    assert_int_equal(f.n, 0);
    assert_int_equal(kinds_file_add_pull(&f, "render_pdf, orchestrate ,a.b:c-d", msg, sizeof(msg)),
                     0);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.v[0].name, "render_pdf");
    assert_string_equal(f.v[1].name, "orchestrate");
    assert_string_equal(f.v[2].name, "a.b:c-d");
    job_kinds_declare(&f);
    const struct job_kind *k = job_kind_find("orchestrate", 11);
    assert_non_null(k);
    assert_true(job_kind_is_pull(k));
    assert_false(job_kind_is_pull(job_kind_find("noop", 4)));
    assert_false(job_kind_is_pull(NULL));
    assert_int_equal(job_kinds_count(), 6);
    job_kinds_declare(NULL);
    kinds_file_free(&f);
}

static void test_pull_list_errors(void **state)
{
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"a,,b", "--pull-kinds: kind '': the name must be 1 to"},
        {"a b", "kind 'a b': the name must be"},
        {"noop", "'noop': the name of a built-in kind"},
        {"x,y,x", "'x': declared twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kinds_file f;
        char msg[700];
        assert_int_equal(kinds_file_load("", &f, msg, sizeof(msg)), 0);
        assert_int_equal(kinds_file_add_pull(&f, cases[i].list, msg, sizeof(msg)), -1);
        if (!strstr(msg, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, msg, cases[i].want);
        kinds_file_free(&f);
    }
}

static int load(const char *text, struct kinds_file *f, char *msg)
{
    char path[] = "/tmp/trireme-pull-kinds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = kinds_file_load(path, f, msg, 700);
    unlink(path);
    return rc;
}

static void test_pull_in_the_kinds_file(void **state)
{
    struct kinds_file f;
    char msg[700];
    assert_int_equal(load("{\"kinds\": {\"render\": {\"type\": \"pull\"}}}", &f, msg), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.v[0].type, KIND_TYPE_PULL);
    assert_true(job_kind_is_pull(&f.v[0].kind));
    /* the same name again from --pull-kinds */
    assert_int_equal(kinds_file_add_pull(&f, "render", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "declared twice"));
    kinds_file_free(&f);
    assert_int_equal(load("{\"kinds\": {\"r\": {\"type\": \"pull\", \"argv\": [\"x\"]}}}", &f, msg),
                     -1);
    assert_non_null(strstr(msg, "kind 'r': field 'argv': is not a field of a pull kind"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_list),
        cmocka_unit_test(test_pull_list_errors),
        cmocka_unit_test(test_pull_in_the_kinds_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
