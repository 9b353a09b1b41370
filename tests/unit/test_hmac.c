/*
 * test_hmac.c - kernel/hmac: RFC 4231 case 2 for SHA-256 and SHA-512, RFC
 * 2202 case 2 for SHA-1, and that pieces sign their concatenation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/hmac.h"
#include "proto/base64.h"

static void hex_of(enum hmac_alg alg, const struct hmac_piece *p, size_t n, char *out)
{
    uint8_t mac[HMAC_MAX_OUT];
    size_t len = hmac(alg, "Jefe", 4, p, n, mac);
    assert_int_equal(len, hmac_size(alg));
    hex_encode(mac, len, out);
}

static void rfc_vectors(void **state)
{
    (void)state;
    const char *msg = "what do ya want for nothing?";
    struct hmac_piece one = {msg, strlen(msg)};
    char hex[2 * HMAC_MAX_OUT + 1];
    hex_of(HMAC_SHA256, &one, 1, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    hex_of(HMAC_SHA512, &one, 1, hex);
    assert_string_equal(hex, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                             "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    hex_of(HMAC_SHA1, &one, 1, hex);
    assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

static void pieces_sign_the_concatenation(void **state)
{
    (void)state;
    struct hmac_piece parts[] = {{"what do ya", 10}, {"", 0}, {" want for nothing?", 18}};
    char hex[2 * HMAC_MAX_OUT + 1];
    hex_of(HMAC_SHA256, parts, 3, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_vectors),
        cmocka_unit_test(pieces_sign_the_concatenation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
