/*
 * test_jwt.c - proto/jwt and base64url: the RFC 7515 appendix A.1 token
 * split and its HS256 signature checked with kernel/hmac, malformed tokens
 * refused with a reason, algorithm names case-sensitive, exp/nbf with
 * leeway at the boundaries, and scope lists matched by whole words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/hmac.h"
#include "proto/base64.h"
#include "proto/jwt.h"

/* RFC 7515 appendix A.1: the JWK "k" and the resulting compact JWS. */
static const char rfc_k[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
static const char rfc_tok[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                              ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGx"
                              "lLmNvbS9pc19yb290Ijp0cnVlfQ"
                              ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static struct jwt_parts parts;

static void rfc7515_a1(void **state)
{
    (void)state;
    assert_null(jwt_split(rfc_tok, strlen(rfc_tok), &parts));
    assert_string_equal(parts.header, "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
    assert_string_equal(parts.payload, "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                                       "\"http://example.com/is_root\":true}");
    assert_int_equal(parts.sig_len, 32);
    uint8_t key[64], mac[HMAC_MAX_OUT];
    long kl = base64url_decode(rfc_k, strlen(rfc_k), key, sizeof(key));
    assert_int_equal(kl, 64);
    struct hmac_piece pc = {parts.signing_input, parts.signing_input_len};
    assert_int_equal(hmac(HMAC_SHA256, key, (size_t)kl, &pc, 1, mac), 32);
    assert_memory_equal(mac, parts.sig, 32);
    /* One flipped signature byte no longer matches. */
    key[0] ^= 1;
    hmac(HMAC_SHA256, key, (size_t)kl, &pc, 1, mac);
    assert_memory_not_equal(mac, parts.sig, 32);
}

static void base64url_vectors(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(base64url_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(base64url_decode("Zg", 2, out, sizeof(out)), 1);
    assert_int_equal(out[0], 'f');
    assert_int_equal(base64url_decode("Zm8", 3, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(base64url_decode("Zm9vYmFy", 8, out, sizeof(out)), 6);
    assert_memory_equal(out, "foobar", 6);
    /* '-' and '_' are 62 and 63: 0xfb 0xff from "-_8". */
    assert_int_equal(base64url_decode("-_8", 3, out, sizeof(out)), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    /* Refused: padding, the standard alphabet's '+' '/', length 1 mod 4,
     * non-zero trailing bits, too little room. */
    assert_int_equal(base64url_decode("Zg==", 4, out, sizeof(out)), -1);
    assert_int_equal(base64url_decode("+/8", 3, out, sizeof(out)), -1);
    assert_int_equal(base64url_decode("Zm9vY", 5, out, sizeof(out)), -1);
    assert_int_equal(base64url_decode("Zh", 2, out, sizeof(out)), -1);
    assert_int_equal(base64url_decode("Zm9vYmFy", 8, out, 5), -1);
}

static void malformed_tokens(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "abc",
        "abc.def",
        "a.b.c.d",
        ".eyJ9.sig",
        "eyJ9..sig",
        "eyJ0eXAiOiJKV1Qi.ey+J9.abc", /* '+' is not base64url */
        "eyJ0eXAiOiJKV1Qi.eyJ9.a=",   /* padding */
        "AA.eyJ9.abc",                /* header decodes to a NUL byte */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(jwt_split(bad[i], strlen(bad[i]), &parts));
    static char big[JWT_MAX_TOKEN + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[10] = '.';
    big[20] = '.';
    assert_string_equal(jwt_split(big, strlen(big), &parts), "token too long");
    /* An unsigned token still splits (empty signature); refusing alg none
     * is the verifier's job, tested end to end. */
    const char *unsigned_tok = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    assert_null(jwt_split(unsigned_tok, strlen(unsigned_tok), &parts));
    assert_string_equal(parts.header, "{\"alg\":\"none\"}");
    assert_int_equal(parts.sig_len, 0);
}

static void alg_names(void **state)
{
    (void)state;
    assert_int_equal(jwt_alg_from_name("HS256"), JWT_HS256);
    assert_int_equal(jwt_alg_from_name("HS384"), JWT_HS384);
    assert_int_equal(jwt_alg_from_name("HS512"), JWT_HS512);
    assert_int_equal(jwt_alg_from_name("RS256"), JWT_RS256);
    assert_int_equal(jwt_alg_from_name("ES256"), JWT_ES256);
    assert_int_equal(jwt_alg_from_name("none"), JWT_ALG_NONE);
    assert_int_equal(jwt_alg_from_name("None"), JWT_ALG_UNKNOWN);
    assert_int_equal(jwt_alg_from_name("hs256"), JWT_ALG_UNKNOWN);
    assert_int_equal(jwt_alg_from_name("PS256"), JWT_ALG_UNKNOWN);
    assert_int_equal(jwt_alg_from_name(""), JWT_ALG_UNKNOWN);
}

static void time_checks(void **state)
{
    (void)state;
    /* exp: valid strictly before exp + leeway. */
    assert_int_equal(jwt_check_time(true, 1000, false, 0, 999, 0), JWT_TIME_OK);
    assert_int_equal(jwt_check_time(true, 1000, false, 0, 1000, 0), JWT_TIME_EXPIRED);
    assert_int_equal(jwt_check_time(true, 1000, false, 0, 1059, 60), JWT_TIME_OK);
    assert_int_equal(jwt_check_time(true, 1000, false, 0, 1060, 60), JWT_TIME_EXPIRED);
    /* nbf: valid at nbf - leeway and after. */
    assert_int_equal(jwt_check_time(false, 0, true, 1000, 1000, 0), JWT_TIME_OK);
    assert_int_equal(jwt_check_time(false, 0, true, 1000, 999, 0), JWT_TIME_NOT_YET);
    assert_int_equal(jwt_check_time(false, 0, true, 1000, 940, 60), JWT_TIME_OK);
    assert_int_equal(jwt_check_time(false, 0, true, 1000, 939, 60), JWT_TIME_NOT_YET);
    /* Absent claims are not checked. */
    assert_int_equal(jwt_check_time(false, 0, false, 0, 1, 0), JWT_TIME_OK);
    /* Extremes neither overflow nor wrap (UBSan traps on both). */
    assert_int_equal(jwt_check_time(true, INT64_MAX, false, 0, 1700000000, 3600), JWT_TIME_OK);
    assert_int_equal(jwt_check_time(true, INT64_MIN, false, 0, 1700000000, 3600), JWT_TIME_EXPIRED);
    assert_int_equal(jwt_check_time(false, 0, true, INT64_MAX, 1700000000, 3600), JWT_TIME_NOT_YET);
    /* RFC 7515 A.1's exp is in 2011. */
    assert_int_equal(jwt_check_time(true, 1300819380, false, 0, 1700000000, 60), JWT_TIME_EXPIRED);
}

static void scopes(void **state)
{
    (void)state;
    assert_true(jwt_scope_has("jobs:read jobs:write", "jobs:write"));
    assert_true(jwt_scope_has("  admin ", "admin"));
    assert_false(jwt_scope_has("jobs:readx", "jobs:read"));
    assert_false(jwt_scope_has("xjobs:read", "jobs:read"));
    assert_false(jwt_scope_has("", "admin"));
    assert_false(jwt_scope_has("admin", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7515_a1),       cmocka_unit_test(base64url_vectors),
        cmocka_unit_test(malformed_tokens), cmocka_unit_test(alg_names),
        cmocka_unit_test(time_checks),      cmocka_unit_test(scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
