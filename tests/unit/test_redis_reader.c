/*
 * test_redis_reader.c - kernel/redis_reader: replies of every type pass
 * through the guarded constructors unchanged, and a reply whose array
 * counts ask for more than REDIS_REPLY_MAX_ELEMENTS slots (at once or over
 * its nesting) is refused with an error that says so, before hiredis
 * allocates for it. The budget is per reply: the next reader starts whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "kernel/redis_reader.h"

static redisReply *one(redisReader *r, const char *wire)
{
    assert_int_equal(redisReaderFeed(r, wire, strlen(wire)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    return reply;
}

static void every_type_passes(void **state)
{
    (void)state;
    redisReader *r = redis_reader_new();
    redisReply *x = one(r, "*4\r\n$3\r\nabc\r\n:42\r\n$-1\r\n*1\r\n+OK\r\n");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 4);
    assert_string_equal(x->element[0]->str, "abc");
    assert_int_equal(x->element[1]->integer, 42);
    assert_int_equal(x->element[2]->type, REDIS_REPLY_NIL);
    assert_string_equal(x->element[3]->element[0]->str, "OK");
    freeReplyObject(x);
    x = one(r, "-ERR no\r\n");
    assert_int_equal(x->type, REDIS_REPLY_ERROR);
    freeReplyObject(x);
    x = one(r, "*0\r\n");
    assert_int_equal(x->elements, 0);
    freeReplyObject(x);
    redis_reader_free(r);
}

static void refused(const char *wire, const char *why)
{
    redisReader *r = redis_reader_new();
    assert_int_equal(redisReaderFeed(r, wire, strlen(wire)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    const char *e = redis_reader_error(r);
    if (!strstr(e, why))
        fail_msg("error \"%s\" lacks \"%s\"", e, why);
    redis_reader_free(r);
}

static void huge_counts_are_refused(void **state)
{
    (void)state;
    /* The input the fuzzer found: 3.5 GB asked for by twelve bytes. */
    refused("*444444440\r\n", "array of 444444440 elements");
    char wire[64];
    snprintf(wire, sizeof(wire), "*%d\r\n", REDIS_REPLY_MAX_ELEMENTS + 1);
    refused(wire, "limit");
    /* Under the limit at every level, over it in all. */
    snprintf(wire, sizeof(wire), "*2\r\n*%d\r\n", REDIS_REPLY_MAX_ELEMENTS - 1);
    refused(wire, "array of");
}

static void budget_is_per_reply(void **state)
{
    (void)state;
    redisReader *r = redis_reader_new();
    char wire[64];
    /* Two replies, each using most of the budget: both arrive. */
    int n = REDIS_REPLY_MAX_ELEMENTS / 2 + 1;
    for (int round = 0; round < 2; round++) {
        snprintf(wire, sizeof(wire), "*%d\r\n", n);
        assert_int_equal(redisReaderFeed(r, wire, strlen(wire)), REDIS_OK);
        for (int i = 0; i < n; i++)
            assert_int_equal(redisReaderFeed(r, ":1\r\n", 4), REDIS_OK);
        void *reply = NULL;
        assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
        assert_non_null(reply);
        assert_int_equal(((redisReply *)reply)->elements, (size_t)n);
        freeReplyObject(reply);
    }
    redis_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_passes),
        cmocka_unit_test(huge_counts_are_refused),
        cmocka_unit_test(budget_is_per_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
