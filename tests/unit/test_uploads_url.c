/*
 * test_uploads_url.c - modules/jobs/upload_url: names allowed in file
 * URLs, a signed path checked back, and expired, tampered, re-targeted and
 * malformed signatures refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/jobs/upload_url.h"

#define SECRET "s3cret"

static void names(void **state)
{
    (void)state;
    assert_true(multipart_name_ok("doc", 3));
    assert_true(multipart_name_ok("a.b-c_D9", 8));
    assert_false(multipart_name_ok("", 0));
    assert_false(multipart_name_ok(".", 1));
    assert_false(multipart_name_ok("..", 2));
    assert_false(multipart_name_ok("a/b", 3));
    assert_false(multipart_name_ok("a b", 3));
    assert_false(multipart_name_ok("a%2f", 4));
    assert_false(multipart_name_ok("a?b", 3));
}

/* Splits out "...?expires=E&sig=S" and checks it. */
static int check(const char *url, const char *secret, const char *id, const char *name, int64_t now)
{
    const char *e = strstr(url, "?expires="), *s = strstr(url, "&sig=");

    assert_non_null(e);
    assert_non_null(s);
    e += 9;
    return upload_check_signature(secret, strlen(secret), id, name, e, (size_t)(s - e), s + 5,
                                  strlen(s + 5), now);
}

static void sign_and_check(void **state)
{
    char url[UPLOAD_URL_MAX], bad[UPLOAD_URL_MAX];
    size_t n;

    (void)state;
    n = upload_signed_path(SECRET, 6, "42", "doc", 1000, url, sizeof(url));
    assert_true(n > 0 && n == strlen(url));
    assert_memory_equal(url, "/v1/jobs/42/files/doc?expires=1000&sig=", 39);
    assert_int_equal(strlen(url + 39), UPLOAD_SIG_HEX);

    assert_int_equal(check(url, SECRET, "42", "doc", 999), 0);
    assert_int_equal(check(url, SECRET, "42", "doc", 1000), 0);
    assert_int_equal(check(url, SECRET, "42", "doc", 1001), -2); /* expired */
    assert_int_equal(check(url, "other", "42", "doc", 999), -1); /* other secret */
    assert_int_equal(check(url, SECRET, "43", "doc", 999), -1);  /* other job */
    assert_int_equal(check(url, SECRET, "42", "doc2", 999), -1); /* other file */

    strcpy(bad, url); /* a stretched expiry */
    memcpy(strstr(bad, "expires=") + 8, "9000", 4);
    assert_int_equal(check(bad, SECRET, "42", "doc", 999), -1);
    strcpy(bad, url); /* one signature digit changed */
    bad[n - 1] = bad[n - 1] == '0' ? '1' : '0';
    assert_int_equal(check(bad, SECRET, "42", "doc", 999), -1);
    strcpy(bad, url); /* truncated signature */
    bad[n - 1] = '\0';
    assert_int_equal(check(bad, SECRET, "42", "doc", 999), -1);
    assert_int_equal(
        upload_check_signature(SECRET, 6, "42", "doc", "1x00", 4, url + 39, UPLOAD_SIG_HEX, 0), -1);
    assert_int_equal(
        upload_check_signature(SECRET, 6, "42", "doc", "", 0, url + 39, UPLOAD_SIG_HEX, 0), -1);
}

static void refused(void **state)
{
    char url[UPLOAD_URL_MAX];

    (void)state;
    assert_int_equal(upload_signed_path("", 0, "42", "doc", 1000, url, sizeof(url)), 0);
    assert_int_equal(upload_signed_path(SECRET, 6, "42", "../x", 1000, url, sizeof(url)), 0);
    assert_int_equal(upload_signed_path(SECRET, 6, "4 2", "doc", 1000, url, sizeof(url)), 0);
    assert_int_equal(upload_signed_path(SECRET, 6, "42", "doc", -1, url, sizeof(url)), 0);
    assert_int_equal(upload_signed_path(SECRET, 6, "42", "doc", 1000, url, 20), 0);
    assert_int_equal(upload_check_signature("", 0, "42", "doc", "1", 1, url, 0, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(sign_and_check),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
