/*
 * test_multipart.c - proto/multipart: the boundary from Content-Type, parts
 * and their headers, bodies fed whole and in every piece size (so a
 * delimiter split anywhere is found, and a near-delimiter is body), and
 * malformed bodies rejected with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/multipart.h"

/* Parses body in pieces of step bytes; writes "name|filename|ctype=data;"
 * per part into out. Returns 0 when DONE and finished, -1 on error
 * (m->error in *err). */
static int run(const char *boundary, const char *body, size_t len, size_t step, char *out,
               size_t cap, const char **err)
{
    struct multipart m;
    size_t pos = 0, o = 0;
    int done = 0;

    multipart_init(&m, boundary, strlen(boundary));
    out[0] = '\0';
    *err = NULL;
    while (pos < len || !done) {
        size_t k = len - pos < step ? len - pos : step, off = 0;
        for (;;) {
            size_t c = 0;
            enum multipart_event ev = multipart_feed(&m, body + pos + off, k - off, &c);
            assert_true(c <= k - off);
            off += c;
            if (ev == MULTIPART_ERROR) {
                *err = m.error;
                assert_non_null(m.error);
                return -1;
            }
            if (ev == MULTIPART_AGAIN) {
                assert_int_equal(off, k);
                break;
            }
            if (ev == MULTIPART_DONE) {
                done = 1;
                assert_int_equal(off, k); /* the epilogue is swallowed */
                break;
            }
            if (ev == MULTIPART_PART)
                o += (size_t)snprintf(out + o, cap - o, "%s|%s%s|%s=", m.part.name,
                                      m.part.has_filename ? "f:" : "", m.part.filename,
                                      m.part.content_type);
            if (ev == MULTIPART_DATA) {
                assert_true(m.ev_len > 0);
                assert_true(o + m.ev_len < cap);
                memcpy(out + o, m.ev_data, m.ev_len);
                o += m.ev_len;
                out[o] = '\0';
            }
            if (ev == MULTIPART_PART_END)
                o += (size_t)snprintf(out + o, cap - o, ";");
        }
        pos += k;
        if (k == 0)
            break;
    }
    if (multipart_finish(&m) < 0) {
        *err = m.error;
        return -1;
    }
    return 0;
}

static void all_steps(const char *boundary, const char *body, const char *want)
{
    char out[4096];
    const char *err;
    size_t len = strlen(body);

    for (size_t step = 1; step <= len; step++) {
        assert_int_equal(run(boundary, body, len, step, out, sizeof(out), &err), 0);
        assert_string_equal(out, want);
    }
}

static void bad(const char *boundary, const char *body, const char *want_err)
{
    char out[4096];
    const char *err;
    size_t len = strlen(body);

    for (size_t step = 1; step <= len; step++) {
        assert_int_equal(run(boundary, body, len, step, out, sizeof(out), &err), -1);
        assert_non_null(err);
        if (strstr(err, want_err) == NULL)
            fail_msg("step %zu: error \"%s\", want \"%s\"", step, err, want_err);
    }
}

static void boundary_from_content_type(void **state)
{
    char b[MULTIPART_MAX_BOUNDARY + 1];
    const char *ct;

    (void)state;
#define B(s) multipart_boundary((s), strlen(s), b, sizeof(b))
    assert_int_equal(B("multipart/form-data; boundary=abc"), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(B("Multipart/Form-Data;BOUNDARY=\"a b:c\""), 5);
    assert_string_equal(b, "a b:c");
    assert_int_equal(B("multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundaryX1"),
                     24);
    assert_string_equal(b, "----WebKitFormBoundaryX1");
    assert_int_equal(B("application/json"), 0);
    assert_int_equal(B("multipart/form-dataX; boundary=a"), 0);
    assert_int_equal(B("multipart/mixed; boundary=a"), 0);
    assert_int_equal(B("multipart/form-data"), -1);                        /* missing */
    assert_int_equal(B("multipart/form-data; boundary="), -1);             /* empty */
    assert_int_equal(B("multipart/form-data; boundary=\"\""), -1);         /* empty */
    assert_int_equal(B("multipart/form-data; boundary=\"a \""), -1);       /* ends in space */
    assert_int_equal(B("multipart/form-data; boundary=\"a\rb\""), -1);     /* CR */
    assert_int_equal(B("multipart/form-data; boundary=a;boundary=b"), -1); /* twice */
    assert_int_equal(B("multipart/form-data; boundary=\"abc"), -1);        /* unterminated */
    assert_int_equal(B("multipart/form-data boundary=abc"), -1);           /* no ';' */
    ct = "multipart/form-data; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901";
    assert_int_equal(B(ct), -1); /* 71 characters */
    ct = "multipart/form-data; boundary="
         "1234567890123456789012345678901234567890123456789012345678901234567890";
    assert_int_equal(B(ct), 70);
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=abcdef", 36, b, 4), -1);
#undef B
}

static void job_and_file_parts(void **state)
{
    (void)state;
    all_steps("XyZ",
              "--XyZ\r\n"
              "Content-Disposition: form-data; name=\"job\"\r\n"
              "Content-Type: application/json\r\n"
              "\r\n"
              "{\"kind\":\"pdf\"}\r\n"
              "--XyZ\r\n"
              "content-disposition: form-data; name=doc; filename=\"a \\\"b\\\".pdf\"\r\n"
              "Content-Type: application/pdf\r\n"
              "X-Other: ignored\r\n"
              "\r\n"
              "%PDF-1.4\r\n\r\n--XyY-not\r--X\r\n-\r\n--XyZ\r\n"
              "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
              "\r\n"
              "\r\n"
              "--XyZ--\r\n",
              "job||application/json={\"kind\":\"pdf\"};"
              "doc|f:a \"b\".pdf|application/pdf=%PDF-1.4\r\n\r\n--XyY-not\r--X\r\n-;"
              "empty|f:|=;");
}

static void preamble_epilogue_padding(void **state)
{
    (void)state;
    all_steps("b",
              "preamble\r\n--b \t\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--"
              " epilogue --b\r\n garbage",
              "x||=1;");
    /* no parts at all: the caller decides that a job part is missing */
    all_steps("b", "--b--", "");
    /* binary data, NULs and CRs included */
    {
        char body[] =
            "--b\r\nContent-Disposition: form-data; name=f\r\n\r\n\r\r\n\r\n-\0x\r\n--b--";
        char out[256];
        const char *err;
        for (size_t step = 1; step < sizeof(body); step++) {
            assert_int_equal(run("b", body, sizeof(body) - 1, step, out, sizeof(out), &err), 0);
            assert_memory_equal(out, "f||=\r\r\n\r\n-", 11);
        }
    }
}

static void malformed(void **state)
{
    (void)state;
    bad("b", "--b\r\nContent-Disposition: form-data; name=x\r\n\r\nabc", "closing delimiter");
    bad("b", "--b\r\n\r\nabc\r\n--b--", "without Content-Disposition");
    bad("b", "--b\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--", "without Content-Disposition");
    bad("b", "--b\r\nContent-Disposition: attachment; name=x\r\n\r\na\r\n--b--", "form-data");
    bad("b", "--b\r\nContent-Disposition: form-data\r\n\r\na\r\n--b--", "form-data with a name");
    bad("b", "--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\na\r\n--b--", "name");
    bad("b", "--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\na\r\n--b--", "name");
    bad("b", "--b\r\nContent-Disposition: form-data; name=x; name=y\r\n\r\na\r\n--b--", "name");
    bad("b", "--b\r\nContent-Disposition: form-data; name=x\r\n folded\r\n\r\na\r\n--b--",
        "folded");
    bad("b", "--b\r\nno colon here\r\n\r\na\r\n--b--", "without a name");
    bad("b", "--b\r\nContent-Disposition: form-data; name=x\nX: y\r\n\r\na\r\n--b--",
        "control character");
    bad("b", "--bx\r\nContent-Disposition: form-data; name=x\r\n\r\na\r\n--b--",
        "after a delimiter");
    bad("b", "--b\nContent-Disposition: form-data; name=x\r\n\r\na\r\n--b--", "bytes after");
    bad("b", "--b\r\nContent-Disposition: form-data; name=x\r\n\r\na\r\n--b-x", "closing");
    bad("b",
        "--b\r\nContent-Disposition: form-data; name=x\r\n"
        "Content-Disposition: form-data; name=y\r\n\r\na\r\n--b--",
        "two Content-Disposition");
    bad("b", "", "closing delimiter");
    bad("b", "no delimiter at all", "closing delimiter");
}

static void header_block_limit(void **state)
{
    static char body[MULTIPART_MAX_HEAD + 256];
    size_t n;

    (void)state;
    n = (size_t)snprintf(body, sizeof(body),
                         "--b\r\nContent-Disposition: form-data; name=x\r\nX: ");
    while (n < MULTIPART_MAX_HEAD + 10)
        body[n++] = 'a';
    memcpy(body + n, "\r\n\r\nq\r\n--b--", 13);
    bad("b", body, "too large");
    /* a name one byte too long, and exactly as long as allowed */
    n = (size_t)snprintf(body, sizeof(body), "--b\r\nContent-Disposition: form-data; name=");
    for (int i = 0; i < MULTIPART_MAX_NAME; i++)
        body[n++] = 'n';
    memcpy(body + n, "\r\n\r\nq\r\n--b--", 13);
    {
        char out[1024];
        const char *err;
        assert_int_equal(run("b", body, strlen(body), 7, out, sizeof(out), &err), 0);
        body[n] = 'n';
        memcpy(body + n + 1, "\r\n\r\nq\r\n--b--", 13);
        assert_int_equal(run("b", body, strlen(body), 7, out, sizeof(out), &err), -1);
    }
}

/* A body far larger than the parser: memory is the struct, pieces come out
 * as large as the input allows. */
static void large_body_streams(void **state)
{
    static char chunk[65536];
    struct multipart m;
    const char *head = "--q\r\nContent-Disposition: form-data; name=f; filename=big\r\n\r\n";
    size_t total = 0, c, off;
    enum multipart_event ev;
    static const char tail[] = "\r\n--q--";

    (void)state;
    memset(chunk, '\r', sizeof(chunk)); /* worst case: every byte starts a match */
    for (size_t i = 1; i < sizeof(chunk); i += 2)
        chunk[i] = '\n';
    multipart_init(&m, "q", 1);
    assert_int_equal(multipart_feed(&m, head, strlen(head), &c), MULTIPART_PART);
    assert_int_equal(c, strlen(head));
    assert_string_equal(m.part.filename, "big");
    for (int r = 0; r < 64; r++) {
        off = 0;
        while ((ev = multipart_feed(&m, chunk + off, sizeof(chunk) - off, &c)) == MULTIPART_DATA) {
            total += m.ev_len;
            off += c;
        }
        assert_int_equal(ev, MULTIPART_AGAIN);
    }
    off = 0;
    ev = multipart_feed(&m, tail, 7, &c);
    while (ev == MULTIPART_DATA) {
        total += m.ev_len;
        off += c;
        ev = multipart_feed(&m, tail + off, 7 - off, &c);
    }
    assert_int_equal(ev, MULTIPART_PART_END);
    assert_int_equal(total, 64 * sizeof(chunk));
    off += c;
    assert_int_equal(multipart_feed(&m, tail + off, 7 - off, &c), MULTIPART_DONE);
    assert_int_equal(multipart_finish(&m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(boundary_from_content_type), cmocka_unit_test(job_and_file_parts),
        cmocka_unit_test(preamble_epilogue_padding),  cmocka_unit_test(malformed),
        cmocka_unit_test(header_block_limit),         cmocka_unit_test(large_body_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
