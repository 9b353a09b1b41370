/*
 * test_base64.c - proto/base64: RFC 4648 test vectors both ways, bad input
 * refused, hex, and the constant-time compare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/base64.h"

static const char *vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char enc[64];
        uint8_t dec[64];
        base64_encode(vectors[i][0], strlen(vectors[i][0]), enc);
        assert_string_equal(enc, vectors[i][1]);
        assert_int_equal(strlen(enc), BASE64_LEN(strlen(vectors[i][0])));
        long n = base64_decode(vectors[i][1], strlen(vectors[i][1]), dec, sizeof(dec));
        assert_int_equal(n, strlen(vectors[i][0]));
        assert_memory_equal(dec, vectors[i][0], (size_t)n);
    }
}

static void all_bytes_round_trip(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char enc[BASE64_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    base64_encode(in, sizeof(in), enc);
    assert_int_equal(base64_decode(enc, strlen(enc), back, sizeof(back)), 256);
    assert_memory_equal(in, back, 256);
}

static void bad_input_refused(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(base64_decode("Zm9", 3, out, sizeof(out)), -1);      /* not a multiple of 4 */
    assert_int_equal(base64_decode("Zm 9", 4, out, sizeof(out)), -1);     /* whitespace */
    assert_int_equal(base64_decode("Z===", 4, out, sizeof(out)), -1);     /* too much padding */
    assert_int_equal(base64_decode("Zg==Zg==", 8, out, sizeof(out)), -1); /* padding inside */
    assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);           /* no room */
    assert_int_equal(base64_decode("Zm-v", 4, out, sizeof(out)), -1);     /* url alphabet */
}

static void hex_and_compare(void **state)
{
    (void)state;
    char hex[9];
    hex_encode("\x00\x7f\xab\xff", 4, hex);
    assert_string_equal(hex, "007fabff");
    assert_true(ct_equal("abcd", "abcd", 4));
    assert_false(ct_equal("abcd", "abce", 4));
    assert_true(ct_equal("x", "y", 0));
    /* ct_equal_len: lengths differ, or one is a prefix of the other. */
    assert_true(ct_equal_len("key", 3, "key", 3));
    assert_false(ct_equal_len("ke", 2, "key", 3));
    assert_false(ct_equal_len("keys", 4, "key", 3));
    assert_false(ct_equal_len("kex", 3, "key", 3));
    assert_false(ct_equal_len("", 0, "key", 3));
    assert_true(ct_equal_len("", 0, "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors),
        cmocka_unit_test(all_bytes_round_trip),
        cmocka_unit_test(bad_input_refused),
        cmocka_unit_test(hex_and_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
