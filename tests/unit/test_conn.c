/*
 * test_conn.c - the connection lifetime contract of kernel/conn.h, on a
 * real ring over socketpair(): reads land in c->in, writes made while a
 * send flies leave together in the next one, on_drained once all is out,
 * a deadline becomes on_timeout, EOF becomes on_eof, and however a conn
 * ends (close, error, timeout, lingering close) its ops are all finished
 * and on_close runs exactly once, with the first error.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernel/conn.h"
#include "kernel/container_of.h"

static const struct loop_config cfg = {
    .entries = 64, .recv_bufs = 16, .recv_buf_size = 1024, .pool_chunk = 4096, .pool_max_free = 4};

/* Gives up on a test that would otherwise hang. */
#define TEST_GIVE_UP_MS 3000

struct t {
    struct conn c;
    struct loop l;
    int peer;             /* the other end of the socketpair */
    struct timer give_up; /* fails the test when it fires */
    struct timer peer_io; /* the peer's turn: see the test */
    char got[64];         /* bytes on_read saw, in order */
    size_t got_len;
    int reads, eofs, timeouts, drained, closes;
    int close_err;
    uint8_t ops_at_close;
    uint64_t timeout_at_ns;
    bool gave_up;
};

static struct t *t_of(struct conn *c)
{
    return container_of(c, struct t, c);
}

static void on_give_up(struct loop *l, struct timer *tm)
{
    struct t *t = container_of(tm, struct t, give_up);
    t->gave_up = true;
    l->stop_now = true;
}

static void on_close(struct conn *c, int err)
{
    struct t *t = t_of(c);
    t->closes++;
    t->close_err = err;
    t->ops_at_close = c->ops;
    assert_int_equal(c->fd, -1);
    loop_timer_cancel(c->loop, &t->peer_io);
    loop_timer_cancel(c->loop, &t->give_up);
    c->loop->stop_now = true;
}

/* Consume and record what arrived. */
static void take_input(struct t *t)
{
    uint32_t n = buf_size(&t->c.in);
    assert_true(t->got_len + n <= sizeof(t->got));
    memcpy(t->got + t->got_len, buf_head(&t->c.in), n);
    t->got_len += n;
    buf_consume(t->l.pool, &t->c.in, n);
    t->reads++;
}

static void setup(struct t *t, const struct conn_handler *h)
{
    memset(t, 0, sizeof(*t));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(loop_init(&t->l, 0, &cfg), 0);
    conn_init(&t->c, &t->l, sv[0], h);
    t->peer = sv[1];
    t->give_up.fn = on_give_up;
    loop_timer_in(&t->l, &t->give_up, TEST_GIVE_UP_MS);
    assert_int_equal(t->l.live, 1); /* a conn keeps its loop running */
}

static void run(struct t *t)
{
    assert_int_equal(loop_run(&t->l), 0);
    assert_false(t->gave_up);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->ops_at_close, 0); /* nothing of the conn was left in flight */
    assert_int_equal(t->l.live, 0);
}

static void teardown(struct t *t)
{
    if (t->peer >= 0)
        close(t->peer);
    loop_free(&t->l);
}

/* Read everything the peer can read now (non-blocking). */
static size_t peer_read(struct t *t, char *out, size_t cap, bool *eof)
{
    size_t n = 0;
    *eof = false;
    for (;;) {
        ssize_t r = recv(t->peer, out + n, cap - n, MSG_DONTWAIT);
        if (r > 0) {
            n += (size_t)r;
            if (n == cap)
                return n;
            continue;
        }
        if (r == 0)
            *eof = true;
        return n;
    }
}

/* --- on_read, batched writes, on_drained ---------------------------------- */

static void batch_on_read(struct conn *c)
{
    struct t *t = t_of(c);
    take_input(t);
    if (t->got_len < 5)
        return;
    assert_memory_equal(t->got, "hello", 5);
    /* One send flies with "ab"; what is written meanwhile waits in c->out
     * and leaves in one next send. */
    assert_int_equal(conn_write(c, "ab", 2), 0);
    conn_flush(c);
    assert_true(c->flags & CONN_SENDING);
    assert_int_equal(buf_size(&c->wire), 2);
    assert_int_equal(conn_write(c, "cd", 2), 0);
    char *w = conn_write_reserve(c, 2);
    assert_non_null(w);
    memcpy(w, "ef", 2);
    conn_write_commit(c, 2);
    conn_flush(c); /* a send is in flight: nothing more is submitted */
    assert_int_equal(buf_size(&c->wire), 2);
    assert_int_equal(buf_size(&c->out), 4);
}

static void batch_on_drained(struct conn *c)
{
    struct t *t = t_of(c);
    t->drained++;
    assert_false(c->flags & CONN_SENDING);
    assert_int_equal(buf_size(&c->out), 0);
    assert_int_equal(buf_size(&c->wire), 0);
    char out[16];
    bool eof;
    assert_int_equal(peer_read(t, out, sizeof(out), &eof), 6);
    assert_memory_equal(out, "abcdef", 6);
    conn_close(c, 0);
}

static void reads_batched_writes_and_drained(void **state)
{
    static const struct conn_handler h = {
        .on_read = batch_on_read, .on_drained = batch_on_drained, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    /* Two writes: on_read sees them (together or apart) in c->in. */
    assert_int_equal(write(t.peer, "hel", 3), 3);
    assert_int_equal(write(t.peer, "lo", 2), 2);
    run(&t);
    assert_int_equal(t.got_len, 5);
    assert_int_equal(t.drained, 1); /* once, after the second send: not per send */
    assert_int_equal(t.close_err, 0);
    teardown(&t);
}

/* --- EOF ------------------------------------------------------------------ */

static void eof_on_read(struct conn *c)
{
    take_input(t_of(c));
}

static void eof_on_eof(struct conn *c)
{
    struct t *t = t_of(c);
    t->eofs++;
    assert_true(c->flags & CONN_EOF);
    /* Every byte sent before the EOF was delivered first. */
    assert_int_equal(t->got_len, 4);
    assert_memory_equal(t->got, "last", 4);
    conn_close(c, 0);
}

static void eof_reaches_on_eof_after_the_data(void **state)
{
    static const struct conn_handler h = {
        .on_read = eof_on_read, .on_eof = eof_on_eof, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    assert_int_equal(write(t.peer, "last", 4), 4);
    shutdown(t.peer, SHUT_WR);
    run(&t);
    assert_int_equal(t.eofs, 1);
    assert_int_equal(t.close_err, 0);
    teardown(&t);
}

static void eof_without_on_eof_closes(void **state)
{
    static const struct conn_handler h = {.on_read = eof_on_read, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    close(t.peer);
    t.peer = -1;
    run(&t);
    assert_int_equal(t.close_err, 0);
    assert_int_equal(t.reads, 0);
    teardown(&t);
}

/* --- deadlines ------------------------------------------------------------ */

static void deadline_on_timeout(struct conn *c)
{
    struct t *t = t_of(c);
    t->timeouts++;
    t->timeout_at_ns = c->loop->now_ns;
    conn_close(c, -ETIMEDOUT);
    conn_close(c, -EIO); /* a second close changes nothing: the first error stays */
}

static void deadline_becomes_on_timeout(void **state)
{
    static const struct conn_handler h = {
        .on_read = eof_on_read, .on_timeout = deadline_on_timeout, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    /* A deadline moved later replaces the first; a cleared one never fires. */
    conn_deadline(&t.c, 5);
    conn_deadline(&t.c, 0);
    uint64_t armed = t.l.now_ns;
    conn_deadline(&t.c, 30);
    run(&t);
    assert_int_equal(t.timeouts, 1);
    assert_true(t.timeout_at_ns >= armed + 30 * 1000000ull);
    assert_int_equal(t.close_err, -ETIMEDOUT);
    teardown(&t);
}

static void deadline_without_on_timeout_closes_with_etimedout(void **state)
{
    static const struct conn_handler h = {.on_read = eof_on_read, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    conn_deadline(&t.c, 10);
    run(&t);
    assert_int_equal(t.close_err, -ETIMEDOUT);
    teardown(&t);
}

/* --- close with ops in flight --------------------------------------------- */

static void flood_on_drained(struct conn *c)
{
    t_of(c)->drained++;
}

/* The peer never reads, so the send stays in flight; then the conn is
 * closed from a timer with recv and send both pending. */
static void close_now(struct loop *l, struct timer *tm)
{
    struct t *t = container_of(tm, struct t, peer_io);
    struct conn *c = &t->c;
    assert_true(c->flags & CONN_SENDING);
    assert_true(c->flags & CONN_RECV_ARMED);
    assert_true(c->ops >= 2);
    conn_close(c, -ECONNRESET);
    /* The struct is never freed synchronously: on_close comes later. */
    assert_int_equal(t->closes, 0);
    assert_true(conn_closing(c));
    assert_int_equal(conn_write(c, "x", 1), -EPIPE);
    conn_close(c, -EIO);
}

static void close_cancels_what_is_in_flight(void **state)
{
    static const struct conn_handler h = {
        .on_read = eof_on_read, .on_drained = flood_on_drained, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    int small = 4096;
    setsockopt(t.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(t.c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    conn_start(&t.c);
    static char big[1 << 20];
    memset(big, 'z', sizeof(big));
    assert_int_equal(conn_write(&t.c, big, sizeof(big)), 0);
    conn_flush(&t.c);
    t.peer_io.fn = close_now;
    loop_timer_in(&t.l, &t.peer_io, 20);
    run(&t);
    assert_int_equal(t.drained, 0); /* the megabyte never all left */
    assert_int_equal(t.close_err, -ECONNRESET);
    teardown(&t);
}

static void failed_send_reaches_on_close_with_its_error(void **state)
{
    static const struct conn_handler h = {.on_read = eof_on_read, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    /* Not receiving, so the peer's close is seen only by the send. */
    close(t.peer);
    t.peer = -1;
    assert_int_equal(conn_write(&t.c, "late", 4), 0);
    conn_flush(&t.c);
    run(&t);
    assert_int_equal(t.close_err, -EPIPE);
    teardown(&t);
}

/* --- close after send (lingering) ----------------------------------------- */

/* The peer reads as a client would, and closes once it sees our EOF. */
static void peer_reads(struct loop *l, struct timer *tm)
{
    struct t *t = container_of(tm, struct t, peer_io);
    bool eof;
    size_t n = peer_read(t, t->got + t->got_len, sizeof(t->got) - t->got_len, &eof);
    t->got_len += n;
    if (eof) {
        close(t->peer);
        t->peer = -1;
        return;
    }
    loop_timer_in(l, tm, 2);
}

static void close_after_send_delivers_everything_then_closes(void **state)
{
    static const struct conn_handler h = {
        .on_read = eof_on_read, .on_drained = flood_on_drained, .on_close = on_close};
    struct t t;
    setup(&t, &h);
    conn_start(&t.c);
    assert_int_equal(conn_write(&t.c, "bye", 3), 0);
    conn_close_after_send(&t.c);
    assert_true(conn_closing(&t.c));
    t.peer_io.fn = peer_reads;
    loop_timer_in(&t.l, &t.peer_io, 1);
    run(&t);
    assert_int_equal(t.got_len, 3);
    assert_memory_equal(t.got, "bye", 3);
    assert_int_equal(t.drained, 0); /* a closing conn is not "drained" */
    assert_int_equal(t.close_err, 0);
    teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_batched_writes_and_drained),
        cmocka_unit_test(eof_reaches_on_eof_after_the_data),
        cmocka_unit_test(eof_without_on_eof_closes),
        cmocka_unit_test(deadline_becomes_on_timeout),
        cmocka_unit_test(deadline_without_on_timeout_closes_with_etimedout),
        cmocka_unit_test(close_cancels_what_is_in_flight),
        cmocka_unit_test(failed_send_reaches_on_close_with_its_error),
        cmocka_unit_test(close_after_send_delivers_everything_then_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
