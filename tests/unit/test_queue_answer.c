/*
 * test_queue_answer.c - the answers every queue backend words the same way
 * (modules/queue/api_answer.c): the enqueue body and its status, 404, 409,
 * the store failures (503, 400, 500, their text kept for the log only),
 * and a forgotten call hearing nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "modules/queue/queue_api.h"

/* The last answer delivered, copied (answers live only during fn). */
struct heard {
    int n, status;
    char body[512], code[32], message[700], detail[200];
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
        snprintf(h->detail, sizeof(h->detail), "%s", a->detail ? a->detail : "");
    }
}

static void enqueue_one(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    struct queue_enqueued e;
    queue_enqueued_begin(&e, false, NULL, NULL, 0);
    queue_enqueued_add(&e, "42", true);
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.status, 201);
    assert_string_equal(h.body, "{\"id\":42,\"status\":\"pending\",\"created\":true}");

    queue_enqueued_begin(&e, false, NULL, NULL, 0);
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
    queue_enqueued_begin(&e, true, NULL, NULL, 0);
    queue_enqueued_add(&e, "7", false);
    queue_enqueued_add(&e, "8", true);
    queue_enqueued_answer(&e, &c);
    assert_int_equal(h.status, 201); /* one created is enough */
    assert_string_equal(h.body, "{\"jobs\":[{\"id\":7,\"status\":\"pending\",\"created\":false},"
                                "{\"id\":8,\"status\":\"pending\",\"created\":true}]}");

    queue_enqueued_begin(&e, true, NULL, NULL, 0);
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

    /* A store's failure: a stable code and wording; its own text only in
     * detail (for the log), never in the message a client reads. */
    const char *err = "ERROR:  invalid byte sequence for encoding \"UTF8\": 0xff";
    queue_answer_failed(&c, QUEUE_UNAVAILABLE, "database", err);
    assert_int_equal(h.status, 503);
    assert_string_equal(h.code, "unavailable");
    assert_string_equal(h.message, "the job store (database) is unavailable; retry later");
    assert_string_equal(h.detail, err);
    queue_answer_failed(&c, QUEUE_REJECTED, "database", err);
    assert_int_equal(h.status, 400);
    assert_string_equal(h.code, "rejected");
    assert_null(strstr(h.message, "UTF8"));
    assert_string_equal(h.detail, err);
    queue_answer_failed(&c, QUEUE_INTERNAL, "redis", "ERR unknown command");
    assert_int_equal(h.status, 500);
    assert_string_equal(h.code, "internal");
    assert_null(strstr(h.message, "ERR"));
    assert_string_equal(h.detail, "ERR unknown command");

    queue_answer_json(&c, "{\"id\":1}", 8);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.body, "{\"id\":1}");
    assert_int_equal(h.n, 7);
}

static void forgotten(void **state)
{
    struct heard h = {0};
    struct queue_call c = {.fn = on_answer, .data = &h};
    queue_call_forget(&c);
    queue_answer_not_found(&c, "no job with this id");
    struct queue_enqueued e;
    queue_enqueued_begin(&e, false, NULL, NULL, 0);
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
