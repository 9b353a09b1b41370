/*
 * test_loop.c - the ring itself: timers behind one IORING_OP_TIMEOUT,
 * foreign-fd watches, cross-thread wake-ups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernel/fdwatch.h"
#include "kernel/loop.h"

static const struct loop_config cfg = {
    .entries = 64, .recv_bufs = 16, .recv_buf_size = 1024, .pool_chunk = 4096, .pool_max_free = 4};

struct stamp {
    struct timer t;
    int *order;
    int *n;
    int id;
    uint64_t fired_ns;
};

static void on_stamp(struct loop *l, struct timer *t)
{
    struct stamp *s = (struct stamp *)t;
    s->order[(*s->n)++] = s->id;
    s->fired_ns = l->now_ns;
    if (*s->n == 3)
        l->stop_now = true;
}

static struct stamp *late_b, *late_c;

static void add_earlier_timers(struct loop *l)
{
    /* The loop is waiting on a's IORING_OP_TIMEOUT (60 ms out); these are
     * earlier, so the armed timeout must be moved (IORING_TIMEOUT_UPDATE). */
    loop_timer_in(l, &late_b->t, 20);
    loop_timer_in(l, &late_c->t, 45);
    loop_timer_cancel(l, &late_c->t);
    loop_timer_in(l, &late_c->t, 25);
}

static void *wake_soon(void *arg)
{
    usleep(5000);
    loop_wake(arg);
    return NULL;
}

static void timers_fire_in_order_and_on_time(void **state)
{
    struct loop l;
    assert_int_equal(loop_init(&l, 0, &cfg), 0);
    int order[3], n = 0;
    struct stamp a = {.t.fn = on_stamp, .order = order, .n = &n, .id = 1};
    struct stamp b = a, c = a;
    b.id = 2;
    c.id = 3;
    late_b = &b;
    late_c = &c;
    l.on_wake = add_earlier_timers;
    uint64_t start = l.now_ns;
    loop_timer_in(&l, &a.t, 60);
    pthread_t th;
    pthread_create(&th, NULL, wake_soon, &l);
    assert_int_equal(loop_run(&l), 0);
    pthread_join(th, NULL);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 1);
    /* b fired on its own deadline, before a's: the update took effect. */
    assert_true(b.fired_ns < start + 60 * 1000000ull);
    assert_true(a.fired_ns >= start + 60 * 1000000ull);
    loop_free(&l);
}

struct pipe_test {
    struct fd_watch w;
    struct timer writer;
    int fds[2];
    int reads;
    bool stopped;
    char got[8];
};

static void on_readable(struct fd_watch *w, unsigned revents)
{
    struct pipe_test *p = w->data;
    assert_true(revents & POLLIN);
    ssize_t r = read(p->fds[0], p->got + p->reads, 1);
    assert_int_equal(r, 1);
    if (++p->reads == 3)
        fd_watch_stop(w);
    else
        loop_timer_in(w->loop, &p->writer, 5);
}

static void on_stopped(struct fd_watch *w)
{
    struct pipe_test *p = w->data;
    p->stopped = true;
    w->loop->stop_now = true;
}

static void write_one(struct loop *l, struct timer *t)
{
    struct pipe_test *p = (struct pipe_test *)((char *)t - offsetof(struct pipe_test, writer));
    assert_int_equal(write(p->fds[1], &"abc"[p->reads], 1), 1);
}

static void fd_watch_reports_each_readiness(void **state)
{
    struct loop l;
    assert_int_equal(loop_init(&l, 0, &cfg), 0);
    struct pipe_test p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(pipe(p.fds), 0);
    p.w.data = &p;
    p.w.on_stopped = on_stopped;
    p.writer.fn = write_one;
    fd_watch_start(&p.w, &l, p.fds[0], POLLIN, on_readable);
    /* Flip the mask while armed: the watch must survive a re-arm. */
    fd_watch_set(&p.w, POLLIN | POLLPRI);
    loop_timer_in(&l, &p.writer, 5);
    assert_int_equal(loop_run(&l), 0);
    assert_int_equal(p.reads, 3);
    assert_true(p.stopped);
    assert_memory_equal(p.got, "abc", 3);
    assert_int_equal(l.live, 0);
    close(p.fds[0]);
    close(p.fds[1]);
    loop_free(&l);
}

static void stop_on_wake(struct loop *l)
{
    l->stop_now = true;
}

static void *waker(void *arg)
{
    usleep(20000);
    loop_wake(arg);
    return NULL;
}

static void wake_from_another_thread(void **state)
{
    struct loop l;
    assert_int_equal(loop_init(&l, 0, &cfg), 0);
    l.on_wake = stop_on_wake;
    pthread_t th;
    pthread_create(&th, NULL, waker, &l);
    assert_int_equal(loop_run(&l), 0);
    pthread_join(th, NULL);
    loop_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_order_and_on_time),
        cmocka_unit_test(fd_watch_reports_each_readiness),
        cmocka_unit_test(wake_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
