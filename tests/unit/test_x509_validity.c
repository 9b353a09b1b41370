/*
 * test_x509_validity.c - proto/x509_validity on a real certificate (made by
 * `openssl req -x509 -days 36500`: notBefore a UTCTime, notAfter a
 * GeneralizedTime past 2050), and on truncated or foreign input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/x509_validity.h"

/* notBefore=Dec  6 14:11:29 2026 GMT, notAfter=Nov 12 14:11:29 2126 GMT */
static const uint8_t cert[] = "\x30\x82\x01\x87\x30\x82\x01\x2d\xa0\x03\x02\x01\x02\x02\x14\x77\xbc"
                              "\x38\x83\xe7\x92\xa9\x8a\x6f"
                              "\x5d\xfe\xc9\x7a\x08\x02\x34\x55\xab\x91\x32\x30\x0a\x06\x08\x2a\x86"
                              "\x48\xce\x3d\x04\x03\x02\x30"
                              "\x18\x31\x16\x30\x14\x06\x03\x55\x04\x03\x0c\x0d\x76\x61\x6c\x69\x64"
                              "\x69\x74\x79\x2d\x74\x65\x73"
                              "\x74\x30\x20\x17\x0d\x32\x36\x31\x32\x30\x36\x31\x34\x31\x31\x32\x39"
                              "\x5a\x18\x0f\x32\x31\x32\x36"
                              "\x31\x31\x31\x32\x31\x34\x31\x31\x32\x39\x5a\x30\x18\x31\x16\x30\x14"
                              "\x06\x03\x55\x04\x03\x0c\x0d"
                              "\x76\x61\x6c\x69\x64\x69\x74\x79\x2d\x74\x65\x73\x74\x30\x59\x30\x13"
                              "\x06\x07\x2a\x86\x48\xce\x3d"
                              "\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00\x04\x05"
                              "\xe9\x8f\x62\x08\x8c\x94\x2b"
                              "\x87\x5b\x7b\x33\x8d\xec\xf4\x7f\x46\x15\x32\x19\xef\x7a\xe7\x61\x2b"
                              "\x80\x2c\x13\x9e\x51\x9d\x11"
                              "\xcf\xeb\x32\x04\xf0\x63\x20\x38\xb4\xa6\x88\xe9\x2d\x64\x5f\x21\xb6"
                              "\xde\x9b\xef\x1d\x68\x9c\xe9"
                              "\x48\x9a\xe5\x20\x01\x2b\x27\x44\xa3\x53\x30\x51\x30\x1d\x06\x03\x55"
                              "\x1d\x0e\x04\x16\x04\x14\xe7"
                              "\x24\xe6\xbb\x3e\x87\xde\xea\x75\xcf\x3f\x4e\x43\x47\x7f\x47\xa9\x09"
                              "\x40\x63\x30\x1f\x06\x03\x55"
                              "\x1d\x23\x04\x18\x30\x16\x80\x14\xe7\x24\xe6\xbb\x3e\x87\xde\xea\x75"
                              "\xcf\x3f\x4e\x43\x47\x7f\x47"
                              "\xa9\x09\x40\x63\x30\x0f\x06\x03\x55\x1d\x13\x01\x01\xff\x04\x05\x30"
                              "\x03\x01\x01\xff\x30\x0a\x06"
                              "\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x03\x48\x00\x30\x45\x02\x20\x48"
                              "\x76\x31\xed\xbe\x70\xf3\x59"
                              "\x3e\x2c\xd5\xde\x46\xc3\x55\x53\x22\x32\x6a\xfb\x35\xf4\x79\x65\x17"
                              "\x5f\x78\x28\x47\x82\x77\xe9"
                              "\x02\x21\x00\x9c\x07\xcb\x6a\xbe\x71\xa9\x11\x99\xeb\xd5\x03\x17\x0b"
                              "\xe7\x94\x8d\x02\x58\x10\xea"
                              "\x0d\xb1\xf0\x0d\x91\x13\xc9\xd0\x3f\x64\xfc";

static void reads_both_time_forms(void **state)
{
    (void)state;
    int64_t nb = 0, na = 0;
    assert_int_equal(x509_validity(cert, sizeof(cert), &nb, &na), 0);
    assert_int_equal(nb, 1796566289);
    assert_int_equal(na, 4950166289);
}

static void refuses_what_it_cannot_walk(void **state)
{
    (void)state;
    int64_t nb, na;
    for (size_t len = 0; len < 140; len++)
        assert_int_equal(x509_validity(cert, len, &nb, &na), -1);
    static const uint8_t not_cert[] = {0x04, 0x03, 'a', 'b', 'c'};
    assert_int_equal(x509_validity(not_cert, sizeof(not_cert), &nb, &na), -1);
    uint8_t bad[sizeof(cert)];
    memcpy(bad, cert, sizeof(cert));
    for (size_t i = 0; i + 13 < sizeof(bad); i++)
        if (bad[i] == 0x17 && bad[i + 1] == 13) {
            bad[i + 2 + 2] = '1'; /* month 1x: 13 and above do not exist */
            bad[i + 2 + 3] = '9';
            break;
        }
    assert_int_equal(x509_validity(bad, sizeof(bad), &nb, &na), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_both_time_forms),
        cmocka_unit_test(refuses_what_it_cannot_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
