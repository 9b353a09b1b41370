/*
 * test_jwt_keys.c - modules/web/jwt_keys: loading PEM and JWKS files and
 * choosing the key by kid, with P-256 keys made here by BearSSL from a
 * fixed seed (so every run signs the same) and files in a temporary
 * directory. RSA paths are covered end to end in tests/e2e/test_jwt.py.
 */
#include <bearssl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "modules/web/jwt_keys.h"
#include "proto/base64.h"

struct eckey {
    br_ec_private_key sk;
    uint8_t kbuf[BR_EC_KBUF_PRIV_MAX_SIZE];
    uint8_t q[65];
};

static char dir[] = "/tmp/test_jwt_keys.XXXXXX";
static struct eckey keys[3]; /* a, b, c */

static void keygen(br_hmac_drbg_context *rng, struct eckey *k)
{
    const br_ec_impl *ec = br_ec_get_default();
    assert_int_not_equal(br_ec_keygen(&rng->vtable, ec, &k->sk, k->kbuf, BR_EC_secp256r1), 0);
    br_ec_public_key pk;
    assert_int_equal(br_ec_compute_pub(ec, &pk, k->q, &k->sk), 65);
}

/* JWS ES256 of msg with k: r||s. */
static void sign(const struct eckey *k, const char *msg, uint8_t sig[64])
{
    uint8_t hash[32];
    br_sha256_context sc;
    br_sha256_init(&sc);
    br_sha256_update(&sc, msg, strlen(msg));
    br_sha256_out(&sc, hash);
    assert_int_equal(
        br_ecdsa_i31_sign_raw(br_ec_get_default(), &br_sha256_vtable, hash, &k->sk, sig), 64);
}

static void b64u(const uint8_t *in, size_t n, char *out)
{
    base64_encode(in, n, out);
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    char *eq = strchr(out, '=');
    if (eq)
        *eq = '\0';
}

/* A JWK of key k; kid NULL: none. */
static void jwk(const struct eckey *k, const char *kid, const char *extra, char *out, size_t cap)
{
    char x[64], y[64], kids[80] = "";
    b64u(k->q + 1, 32, x);
    b64u(k->q + 33, 32, y);
    if (kid)
        snprintf(kids, sizeof(kids), "\"kid\": \"%s\", ", kid);
    snprintf(out, cap, "{%s\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"%s\", \"y\": \"%s\"%s}",
             kids, x, y, extra);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[4][128];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    br_hmac_drbg_context rng;
    br_hmac_drbg_init(&rng, &br_sha256_vtable, "test_jwt_keys seed", 18);
    for (int i = 0; i < 3; i++)
        keygen(&rng, &keys[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *verify(const struct jwt_keys *ks, const char *kid, const struct eckey *signer)
{
    const char *msg = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
    uint8_t sig[64];
    sign(signer, msg, sig);
    return jwt_keys_verify(ks, JWT_ES256, kid, msg, strlen(msg), sig, sizeof(sig));
}

static void jwks_kid_selection(void **state)
{
    (void)state;
    char a[400], b[400], c[400], enc[400], es384[400], doc[2400];
    jwk(&keys[0], "a", ", \"use\": \"sig\", \"alg\": \"ES256\"", a, sizeof(a));
    jwk(&keys[1], "b", "", b, sizeof(b));
    jwk(&keys[2], NULL, "", c, sizeof(c));
    jwk(&keys[2], "e", ", \"use\": \"enc\"", enc, sizeof(enc));
    jwk(&keys[2], "f", ", \"alg\": \"ES384\"", es384, sizeof(es384));
    snprintf(doc, sizeof(doc), "{\"keys\": [%s, %s, %s, %s, %s]}", a, b, c, enc, es384);
    struct jwt_keys *ks = malloc(sizeof(*ks));
    char why[300];
    assert_int_equal(jwt_keys_load(ks, "", write_file("jwks.json", doc), why, sizeof(why)), 0);
    assert_int_equal(ks->n, 3);
    assert_int_equal(ks->skipped, 2);
    assert_true(jwt_keys_serve(ks, JWT_ES256));
    assert_false(jwt_keys_serve(ks, JWT_RS256));
    assert_false(jwt_keys_serve(ks, JWT_HS256));

    assert_null(verify(ks, "a", &keys[0]));
    assert_null(verify(ks, "b", &keys[1]));
    /* The kid names one key: another key's signature does not verify. */
    assert_string_equal(verify(ks, "a", &keys[1]), "JWT signature does not verify");
    /* No kid: every key is tried. */
    assert_null(verify(ks, "", &keys[1]));
    assert_null(verify(ks, "", &keys[2]));
    /* A kid no key has falls to the keys without one, only. */
    assert_null(verify(ks, "zzz", &keys[2]));
    assert_string_equal(verify(ks, "zzz", &keys[0]), "JWT signature does not verify");
    /* The skipped encryption key's kid is not a key. */
    assert_null(verify(ks, "e", &keys[2])); /* by the keyless copy of it */
    /* Wrong type and length. */
    uint8_t sig[64] = {0};
    assert_non_null(strstr(jwt_keys_verify(ks, JWT_RS256, "", "x", 1, sig, 64), "does not match"));
    assert_non_null(strstr(jwt_keys_verify(ks, JWT_ES256, "", "x", 1, sig, 63), "64 bytes"));
    assert_string_equal(jwt_keys_verify(ks, JWT_ES256, "a", "x", 1, sig, 64),
                        "JWT signature does not verify");
    free(ks);
}

static void kid_without_keyless_keys(void **state)
{
    (void)state;
    char a[400], doc[600];
    jwk(&keys[0], "a", "", a, sizeof(a));
    snprintf(doc, sizeof(doc), "{\"keys\": [%s]}", a);
    struct jwt_keys *ks = malloc(sizeof(*ks));
    char why[300];
    assert_int_equal(jwt_keys_load(ks, "", write_file("one.json", doc), why, sizeof(why)), 0);
    assert_string_equal(verify(ks, "other", &keys[0]), "JWT kid matches no configured key");
    assert_null(verify(ks, "a", &keys[0]));
    free(ks);
}

static void pem_and_jwks_together(void **state)
{
    (void)state;
    /* SubjectPublicKeyInfo of a P-256 key: a fixed prefix, then the point. */
    static const uint8_t prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                     0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                     0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
    uint8_t der[sizeof(prefix) + 65];
    memcpy(der, prefix, sizeof(prefix));
    memcpy(der + sizeof(prefix), keys[1].q, 65);
    char pem[400], b[400], doc[600];
    assert_true(br_pem_encode(pem, der, sizeof(der), "PUBLIC KEY", BR_PEM_LINE64) < sizeof(pem));
    jwk(&keys[0], "a", "", b, sizeof(b));
    snprintf(doc, sizeof(doc), "{\"keys\": [%s]}", b);
    struct jwt_keys *ks = malloc(sizeof(*ks));
    char why[300];
    assert_int_equal(
        jwt_keys_load(ks, write_file("k.pem", pem), write_file("j.json", doc), why, sizeof(why)),
        0);
    assert_int_equal(ks->n, 2);
    assert_null(verify(ks, "", &keys[1]));    /* the PEM key */
    assert_null(verify(ks, "a", &keys[0]));   /* the JWK by kid */
    assert_null(verify(ks, "pem", &keys[1])); /* an unknown kid: the keyless PEM key */
    assert_string_equal(verify(ks, "a", &keys[1]), "JWT signature does not verify");
    free(ks);
}

static void load_errors_name_the_file(void **state)
{
    (void)state;
    struct {
        const char *flag, *name, *text, *why;
    } cases[] = {
        {"--jwt-jwks-file", "bad.json", "{", "not a readable JSON file"},
        {"--jwt-jwks-file", "arr.json", "[1]", "expected a JWK Set"},
        {"--jwt-jwks-file", "none.json", "{\"keys\": []}", "no RS256 or ES256"},
        {"--jwt-jwks-file", "notobj.json", "{\"keys\": [1]}", "key 0: a key is not a JSON object"},
        {"--jwt-jwks-file", "kid.json", "{\"keys\": [{\"kty\": \"EC\", \"kid\": 5}]}",
         "is not a string"},
        {"--jwt-jwks-file", "d.json", "{\"keys\": [{\"kty\": \"EC\", \"d\": \"AA\"}]}",
         "private part"},
        {"--jwt-jwks-file", "x.json",
         "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AAAA\", \"y\": \"AAAA\"}]}",
         "32 bytes"},
        {"--jwt-public-key-file", "empty.pem", "", "no PEM object"},
        {"--jwt-public-key-file", "cut.pem", "-----BEGIN PUBLIC KEY-----\nMFkw\n", "not PEM"},
        {"--jwt-public-key-file", "other.pem",
         "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
         "not a PUBLIC KEY"},
    };
    struct jwt_keys *ks = malloc(sizeof(*ks));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[400] = "";
        const char *path = write_file(cases[i].name, cases[i].text);
        bool pem = cases[i].flag[6] == 'p';
        assert_int_equal(jwt_keys_load(ks, pem ? path : "", pem ? "" : path, why, sizeof(why)), -1);
        if (!strstr(why, cases[i].why) || !strstr(why, path) || !strstr(why, cases[i].flag))
            fail_msg("%s: %s", cases[i].name, why);
    }
    char why[400];
    assert_int_equal(jwt_keys_load(ks, "/nonexistent/k.pem", "", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "No such file"));
    free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jwks_kid_selection),
        cmocka_unit_test(kid_without_keyless_keys),
        cmocka_unit_test(pem_and_jwks_together),
        cmocka_unit_test(load_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
