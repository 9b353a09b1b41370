/*
 * test_exec_kinds.c - the pure parts of exec kinds: progress lines in both
 * forms, and --kinds files (types, fields, names, limits and defaults).
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
#include "modules/kinds/kind_exec.h"
#include "modules/kinds/kinds_file.h"

static int progress(const char *line, int *pct, char *step)
{
    return exec_progress_parse(line, strlen(line), pct, step, 64);
}

static void test_progress_text(void **state)
{
    int pct;
    char step[64];
    assert_int_equal(progress("45 Processing chunk 5/10", &pct, step), 0);
    assert_int_equal(pct, 45);
    assert_string_equal(step, "Processing chunk 5/10");
    assert_int_equal(progress("100", &pct, step), 0);
    assert_int_equal(pct, 100);
    assert_string_equal(step, "");
    assert_int_equal(progress("  7%  almost \r", &pct, step), 0);
    assert_int_equal(pct, 7);
    assert_string_equal(step, "almost");
    assert_int_equal(progress("12.5 half a step", &pct, step), 0);
    assert_int_equal(pct, 12);
    assert_string_equal(step, "half a step");
    const char *bad[] = {"", "abc", "101 too much", "45x", "-3 below", "99999 digits", "%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(progress(bad[i], &pct, step), -1);
}

static void test_progress_json(void **state)
{
    int pct;
    char step[64];
    assert_int_equal(progress("{\"percent\": 45, \"step\": \"Processing chunk 5/10\"}", &pct, step),
                     0);
    assert_int_equal(pct, 45);
    assert_string_equal(step, "Processing chunk 5/10");
    assert_int_equal(progress("{\"percent\": 99.9}", &pct, step), 0);
    assert_int_equal(pct, 99);
    assert_string_equal(step, "");
    assert_int_equal(progress("{\"percent\": 5, \"step\": null}", &pct, step), 0);
    const char *bad[] = {"{\"percent\": 101}",   "{\"step\": \"x\"}",
                         "{\"percent\": \"5\"}", "{\"percent\": 5, \"step\": 3}",
                         "{\"percent\": 5",      "[45]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(progress(bad[i], &pct, step), -1);
    /* A step longer than the buffer is cut, never overflowed. */
    char small[8];
    assert_int_equal(exec_progress_parse("{\"percent\":1,\"step\":\"abcdefghijkl\"}", 35, &pct,
                                         small, sizeof(small)),
                     0);
    assert_string_equal(small, "abcdefg");
}

static int load(const char *text, struct kinds_file *f, char *msg)
{
    char path[] = "/tmp/trireme-kinds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = kinds_file_load(path, f, msg, 700);
    unlink(path);
    return rc;
}

static void test_kinds_file_defaults_and_registry(void **state)
{
    struct kinds_file f;
    char msg[700];
    assert_int_equal(kinds_file_load("", &f, msg, sizeof(msg)), 0);
    assert_int_equal(f.n, 0);
    assert_int_equal(load("{\"kinds\": {\"pdf\": {\"type\": \"exec\", \"argv\": [\"sh\", \"-c\", "
                          "\"true\"], \"env\": {\"A\": \"1\"}, \"inherit_env\": [], "
                          "\"timeout\": \"2m\", \"memory_limit\": \"256m\"}}}",
                          &f, msg),
                     0);
    assert_int_equal(f.n, 1);
    const struct exec_spec *e = &f.v[0].exec;
    assert_true(e->argv[0][0] == '/'); /* found in PATH at load */
    assert_string_equal(e->argv[2], "true");
    assert_null(e->argv[3]);
    assert_int_equal(e->nenv, 1);
    assert_string_equal(e->env[0], "A=1");
    assert_int_equal(e->timeout_ms, 120000);
    assert_int_equal(f.v[0].kind.timeout_ms, 120000);
    assert_int_equal(e->memory_limit, 256u << 20);
    assert_int_equal(e->kill_after_ms, EXEC_KILL_AFTER_MS);
    assert_int_equal(e->max_stdout, EXEC_MAX_STDOUT);
    assert_int_equal(e->stderr_tail, EXEC_STDERR_TAIL);
    assert_true(e->concurrency >= 1);
    assert_false(e->pool);
    assert_null(job_kind_find("pdf", 3));
    job_kinds_declare(&f);
    assert_ptr_equal(job_kind_find("pdf", 3), &f.v[0].kind);
    assert_non_null(job_kind_find("noop", 4));
    assert_int_equal(job_kinds_count(), 4);
    assert_string_equal(job_kind_at(3)->name, "pdf");
    job_kinds_declare(NULL);
    assert_null(job_kind_find("pdf", 3));
    kinds_file_free(&f);
    assert_int_equal(load("{\"kinds\": {\"p\": {\"type\": \"exec\", \"argv\": [\"sh\"], "
                          "\"mode\": \"pool\", \"processes\": 3, \"max_jobs_per_process\": 7}}}",
                          &f, msg),
                     0);
    assert_true(f.v[0].exec.pool);
    assert_int_equal(f.v[0].exec.processes, 3);
    assert_int_equal(f.v[0].exec.jobs_per_process, 1);
    assert_int_equal(f.v[0].exec.max_jobs_per_process, 7);
    kinds_file_free(&f);
}

static void test_kinds_file_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"kinds\": {\"a\": {\"type\": \"smtp\"}}}",
         "kind 'a': field 'type': unknown type 'smtp'"},
        {"{\"kinds\": {\"a\": {}}}", "kind 'a': field 'type': is required"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\", 3]}}}",
         "kind 'a': field 'argv': must hold strings"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"max_stdout\": -1}}}",
         "kind 'a': field 'max_stdout': must be a size"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"kill_after\": \"2h\"}}}",
         "kind 'a': field 'kill_after': must be a duration"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"inherit_env\": "
         "[\"A=B\"]}}}",
         "kind 'a': field 'inherit_env': must hold variable names"},
        {"{\"kinds\": {\"noop\": {\"type\": \"exec\", \"argv\": [\"sh\"]}}}",
         "kind 'noop': the name of a built-in kind"},
        {"[1]", "expected {\"kinds\""},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"mode\": \"prefork\"}}}",
         "kind 'a': field 'mode': must be \"oneshot\""},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"processes\": 2}}}",
         "kind 'a': field 'processes': applies to \"mode\": \"pool\" only"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"mode\": \"pool\", "
         "\"jobs_per_process\": 0}}}",
         "kind 'a': field 'jobs_per_process': must be an integer from 1"},
        {"{\"kinds\": {\"a\": {\"type\": \"exec\", \"argv\": [\"sh\"], \"mode\": \"pool\", "
         "\"concurrency\": 3}}}",
         "kind 'a': field 'concurrency': a pool runs processes x jobs_per_process"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kinds_file f;
        char msg[700];
        assert_int_equal(load(cases[i].text, &f, msg), -1);
        if (!strstr(msg, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, msg, cases[i].want);
        assert_int_equal(f.n, 0);
        assert_null(f.v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_text),
        cmocka_unit_test(test_progress_json),
        cmocka_unit_test(test_kinds_file_defaults_and_registry),
        cmocka_unit_test(test_kinds_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
