/*
 * test_metrics.c - kernel/metrics: label escaping, histogram lines
 * (cumulative buckets, +Inf equal to _count), the label-set cap with its
 * "other" series, and the merge of several loops' tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/metrics.h"

static char *render(void (*fn)(FILE *f, void *arg), void *arg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fn(f, arg);
    fclose(f);
    return out;
}

static void labels_escaped(void **state)
{
    (void)state;
    const char *names[] = {"queue", "kind"};
    const char *vals[] = {"a\"b\\c\nd", "x"};
    size_t lens[] = {strlen(vals[0]), 1};
    char buf[128];
    metrics_text_labels(buf, sizeof(buf), names, vals, lens, 2);
    assert_string_equal(buf, "{queue=\"a\\\"b\\\\c\\nd\",kind=\"x\"}");
    metrics_text_labels(buf, sizeof(buf), names, vals, lens, 0);
    assert_string_equal(buf, "");
    /* Cut short, the line still closes its quote and brace. */
    char small[12];
    metrics_text_labels(small, sizeof(small), names, vals, lens, 2);
    size_t n = strlen(small);
    assert_true(n < sizeof(small));
    assert_memory_equal(small + n - 2, "\"}", 2);
}

static void hist_render(FILE *f, void *arg)
{
    struct metrics_hist *h = arg;
    metrics_text_family(f, "t_seconds", "histogram", "test.");
    metrics_text_hist(f, "t_seconds", "{kind=\"k\"}", h, &metrics_buckets_beat);
}

static void histogram_lines(void **state)
{
    (void)state;
    struct metrics_hist h;
    memset(&h, 0, sizeof(h));
    metrics_observe(&h, &metrics_buckets_beat, 5000000);         /* 5 ms: first bucket */
    metrics_observe(&h, &metrics_buckets_beat, 10000000);        /* exactly 10 ms: le 0.01 */
    metrics_observe(&h, &metrics_buckets_beat, 2000000000ull);   /* 2 s */
    metrics_observe(&h, &metrics_buckets_beat, 999000000000ull); /* above every bound */
    char *out = render(hist_render, &h);
    assert_non_null(strstr(out, "# HELP t_seconds test.\n# TYPE t_seconds histogram\n"));
    assert_non_null(strstr(out, "t_seconds_bucket{kind=\"k\",le=\"0.01\"} 2\n"));
    assert_non_null(strstr(out, "t_seconds_bucket{kind=\"k\",le=\"2.5\"} 3\n"));
    assert_non_null(strstr(out, "t_seconds_bucket{kind=\"k\",le=\"60\"} 3\n"));
    assert_non_null(strstr(out, "t_seconds_bucket{kind=\"k\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(out, "t_seconds_count{kind=\"k\"} 4\n"));
    assert_non_null(strstr(out, "t_seconds_sum{kind=\"k\"} 1001.015000000\n"));
    free(out);
}

static void cap_and_other(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(2);
    assert_non_null(m);
    metrics_add(&metrics_job(m, "q1", 2, "k", 1)->n[MJ_STARTED], 1);
    metrics_add(&metrics_job(m, "q2", 2, "k", 1)->n[MJ_STARTED], 1);
    metrics_add(&metrics_job(m, "q1", 2, "k", 1)->n[MJ_STARTED], 1); /* found again */
    assert_false(metrics_table_overflowed(&m->jobs));
    metrics_add(&metrics_job(m, "q3", 2, "k", 1)->n[MJ_STARTED], 1); /* over the cap */
    metrics_add(&metrics_job(m, "q4", 2, "k", 1)->n[MJ_STARTED], 1);
    assert_int_equal(atomic_load(&m->jobs.n), 2);
    assert_true(metrics_table_overflowed(&m->jobs));
    struct metrics_job *o = metrics_table_values(&m->jobs, m->jobs.cap);
    assert_int_equal(metrics_get(&o->n[MJ_STARTED]), 2);
    const char *vals[2];
    size_t lens[2];
    metrics_table_labels(&m->jobs, m->jobs.cap, vals, lens);
    assert_string_equal(vals[0], "other");
    assert_string_equal(vals[1], "other");
    /* A label set spelled like the overflow one is that one, not a second. */
    assert_ptr_equal(metrics_job(m, "other", 5, "other", 5), o);
    metrics_free(m);
}

static void merge_loops(void **state)
{
    (void)state;
    struct metrics *a = metrics_new(4), *b = metrics_new(4), *dst = metrics_new(2);
    metrics_http_done(a, "/v1/jobs", "POST", 201, 1000);
    metrics_http_done(b, "/v1/jobs", "POST", 201, 2000);
    metrics_http_done(b, "/healthz", "GET", 200, 3000);
    metrics_http_done(b, "/readyz", "GET", 503, 3000);
    metrics_count(a, MC_PG_CONNECTS);
    metrics_count(b, MC_PG_CONNECTS);
    metrics_gauge_add(a, MG_SLOTS_BUSY, 3);
    metrics_gauge_add(b, MG_SLOTS_BUSY, -1);
    struct metrics *src[] = {a, b};
    metrics_merge(dst, src, 2);
    assert_int_equal(metrics_get(&dst->counter[MC_PG_CONNECTS]), 2);
    assert_int_equal((int64_t)metrics_get(&dst->gauge[MG_SLOTS_BUSY]), 2);
    assert_int_equal(atomic_load(&dst->http.n), 2);
    const struct metrics_http *h = metrics_table_values(&dst->http, 0);
    assert_int_equal(metrics_get(&h->requests), 2);
    assert_int_equal(metrics_get(&h->seconds.sum_ns), 3000);
    const struct metrics_http *o = metrics_table_values(&dst->http, dst->http.cap);
    assert_int_equal(metrics_get(&o->requests), 1); /* the third label set: over dst's cap */
    metrics_free(a);
    metrics_free(b);
    metrics_free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_escaped),
        cmocka_unit_test(histogram_lines),
        cmocka_unit_test(cap_and_other),
        cmocka_unit_test(merge_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
