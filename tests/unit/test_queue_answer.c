/*
 * test_queue_answer.c - the answers every queue backend words the same way
 * (modules/queue/api_answer.c): the enqueue body and its status, 404, 409,
 * 503, and a forgotten call hearing nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/queue/queue_api.h"

/* The last answer delivered, copied (answers live only during fn). */
struct heard {
    int n, status;
    char body[512], code[32], message[700];
};

static void on_answer(struct queue_call *c, const struct queue_answer *a)
{
    struct heard *h = c->data;
    h->n++;
    h->status = a->status;
    h->body[0] = h->code[0] = h->message[0] = 0;
    if (a->status < 300) {
        assert_true(a->len < sizeof(h->body));
        memcpy(h->body, a->body, a->len);
        h->body[a->len] = 0;
    } else {
        strcpy(h->code, a->code);
        strcpy(h->message, a->message);
    }
}

static void enqueue_one(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    struct queue_enqueued e;
    queue_enqueued_begin(&e, false);
    queue_enqueued_add(&e, "42", true);
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.status, 201);
    assert_string_equal(h.body, "{\"id\":42,\"status\":\"pending\",\"created\":true}");

    queue_enqueued_begin(&e, false);
    queue_enqueued_add(&e, "42", false); /* unique_key: already there */
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.body, "{\"id\":42,\"status\":\"pending\",\"created\":false}");
}

static void enqueue_array(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    struct queue_enqueued e;
    queue_enqueued_begin(&e, true);
    queue_enqueued_add(&e, "7", false);
    queue_enqueued_add(&e, "8", true);
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.status, 201); /* one created is enough */
    assert_string_equal(h.body, "{\"jobs\":[{\"id\":7,\"status\":\"pending\",\"created\":false},"
                                "{\"id\":8,\"status\":\"pending\",\"created\":true}]}");

    queue_enqueued_begin(&e, true);
    queue_enqueued_add(&e, "7", false);
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.body, "{\"jobs\":[{\"id\":7,\"status\":\"pending\",\"created\":false}]}");
}

static void errors(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    queue_answer_not_found(&c, "no job with this id");
    assert_int_equal(h.status, 404);
    assert_string_equal(h.code, "not_found");
    assert_string_equal(h.message, "no job with this id");

    queue_answer_refused(&c, true);
    assert_int_equal(h.status, 409);
    assert_string_equal(h.code, "conflict");
    assert_string_equal(h.message, "only pending or running jobs can be cancelled");
    queue_answer_refused(&c, false);
    assert_string_equal(h.message, "only dead, failed or cancelled jobs can be retried");

    queue_answer_unavailable(&c, "database", "timeout");
    assert_int_equal(h.status, 503);
    assert_string_equal(h.code, "unavailable");
    assert_string_equal(h.message, "database: timeout");

    char long_err[1000];
    memset(long_err, 'x', sizeof(long_err) - 1);
    long_err[sizeof(long_err) - 1] = 0;
    queue_answer_unavailable(&c, "redis", long_err);
    assert_int_equal(strlen(h.message), QUEUE_ANSWER_MESSAGE_MAX - 1);
    assert_memory_equal(h.message, "redis: xxx", 10);

    queue_answer_json(&c, "{\"id\":1}", 8);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.body, "{\"id\":1}");
    assert_int_equal(h.n, 6);
}

static void forgotten(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    queue_call_forget(&c);
    queue_answer_not_found(&c, "no job with this id");
    struct queue_enqueued e;
    queue_enqueued_begin(&e, false);
    queue_enqueued_add(&e, "1", true);
    queue_enqueued_answer(&e, &c); /* still frees its body (ASan checks) */
    assert_int_equal(h.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(enqueue_one),
                                       cmocka_unit_test(enqueue_array), cmocka_unit_test(errors),
                                       cmocka_unit_test(forgotten)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
