/*
 * test_buf.c - pooled connection buffers: reuse, growth, release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/buf.h"

static void empty_buffer_holds_nothing(void **state)
{
    struct buf_pool p;
    buf_pool_init(&p, 1024, 4);
    struct buf b = {0};
    assert_int_equal(buf_append(&p, &b, "hello", 5), 0);
    assert_true(b.pooled);
    assert_int_equal(buf_size(&b), 5);
    buf_consume(&p, &b, 5);
    assert_null(b.data);
    assert_int_equal(p.nfree, 1);
    /* The next buffer reuses the chunk: no new allocation. */
    struct buf c = {0};
    buf_append(&p, &c, "x", 1);
    assert_int_equal(p.allocated, 1);
    assert_int_equal(p.nfree, 0);
    buf_release(&p, &c);
    buf_pool_free(&p);
}

static void grows_past_chunk_keeping_bytes(void **state)
{
    struct buf_pool p;
    buf_pool_init(&p, 64, 4);
    struct buf b = {0};
    char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (char)(i * 7);
    for (int i = 0; i < 1000; i += 10)
        assert_int_equal(buf_append(&p, &b, data + i, 10), 0);
    assert_false(b.pooled);
    assert_int_equal(buf_size(&b), 1000);
    assert_memory_equal(buf_head(&b), data, 1000);
    buf_consume(&p, &b, 400);
    assert_memory_equal(buf_head(&b), data + 400, 600);
    assert_int_equal(p.nfree, 1); /* the outgrown chunk went back */
    buf_release(&p, &b);
    buf_pool_free(&p);
}

static void compacts_before_growing(void **state)
{
    struct buf_pool p;
    buf_pool_init(&p, 64, 4);
    struct buf b = {0};
    char x[48];
    memset(x, 'a', sizeof(x));
    buf_append(&p, &b, x, 48);
    buf_consume(&p, &b, 40);
    buf_append(&p, &b, x, 40); /* 8 + 40 fits after moving to the front */
    assert_true(b.pooled);
    assert_int_equal(b.off, 0);
    assert_int_equal(buf_size(&b), 48);
    buf_release(&p, &b);
    buf_pool_free(&p);
}

static void free_list_is_bounded(void **state)
{
    struct buf_pool p;
    buf_pool_init(&p, 64, 2);
    struct buf b[5] = {{0}};
    for (int i = 0; i < 5; i++)
        buf_append(&p, &b[i], "z", 1);
    for (int i = 0; i < 5; i++)
        buf_release(&p, &b[i]);
    assert_int_equal(p.nfree, 2);
    buf_pool_free(&p);
    assert_int_equal(p.nfree, 0);
}

static void cut_keeps_the_rest_in_order(void **state)
{
    struct buf_pool p;
    buf_pool_init(&p, 64, 4);
    struct buf b = {0};
    buf_append(&p, &b, "xxabcdefgh", 10);
    buf_consume(&p, &b, 2); /* the head is not at the start of the chunk */
    buf_cut(&p, &b, 2, 3);  /* "cde" */
    assert_int_equal(buf_size(&b), 5);
    assert_memory_equal(buf_head(&b), "abfgh", 5);
    buf_cut(&p, &b, 3, 2); /* the tail */
    assert_memory_equal(buf_head(&b), "abf", 3);
    buf_cut(&p, &b, 0, 1); /* the front */
    assert_memory_equal(buf_head(&b), "bf", 2);
    buf_cut(&p, &b, 0, 2); /* everything: the chunk goes back */
    assert_null(b.data);
    assert_int_equal(p.nfree, 1);
    buf_pool_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_buffer_holds_nothing),
        cmocka_unit_test(grows_past_chunk_keeping_bytes),
        cmocka_unit_test(compacts_before_growing),
        cmocka_unit_test(free_list_is_bounded),
        cmocka_unit_test(cut_keeps_the_rest_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
