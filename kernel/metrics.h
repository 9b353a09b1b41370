/*
 * metrics.h - per-loop Prometheus counters, gauges and histograms, merged
 * at scrape time, and the text exposition format they are rendered in.
 *
 * Every loop owns one struct metrics (loop.metrics, made by loop_init).
 * Only the loop's own thread writes it; a scrape, on whichever loop serves
 * GET /metrics, reads every loop's and adds them up (metrics_merge).
 *
 * Why single-writer relaxed atomics and not a message to each loop: a
 * scrape then answers from one loop turn, with no round trip through every
 * other loop's ring (a busy or stopping loop would hold the scrape). Each
 * value is a _Atomic 64-bit word that its owner updates with a relaxed load
 * and a relaxed store (metrics_add), never a read-modify-write: on x86-64
 * and arm64 that is a plain load and a plain store, no lock prefix, no
 * shared cache line bouncing between writers (each loop writes only its
 * own struct), yet a racing reader is defined C and never sees a torn
 * word. A reader may see one counter a few increments behind another; a
 * histogram's count is derived from its buckets when rendered, so +Inf
 * always equals _count.
 *
 * Labelled series live in fixed tables (struct metrics_table): at most
 * `cap` label sets per family and loop (--metrics-max-series), made at
 * start; a new label set past the cap is counted in one overflow series
 * whose labels all read "other". A label set is published to readers
 * (release store of n) only after its key is written, so a scrape never
 * reads a half-written label. Nothing here allocates after metrics_new.
 */
#ifndef TRIREME_KERNEL_METRICS_H
#define TRIREME_KERNEL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_SERIES_DEFAULT 100 /* label sets per family and loop */
#define METRICS_LABELS_MAX     3
#define METRICS_KEY_MAX        448 /* label values of one series, NUL-separated */
#define METRICS_BUCKETS_MAX    16
#define METRICS_OTHER          "other" /* the overflow series' label values */

typedef _Atomic uint64_t metrics_u64;

/* The owner's increment: a relaxed load and store, no locked instruction
 * (see the top of this file for why a racing reader is still safe). */
static inline void metrics_add(metrics_u64 *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline uint64_t metrics_get(const metrics_u64 *c)
{
    return atomic_load_explicit((metrics_u64 *)c, memory_order_relaxed);
}

/* Bucket upper bounds of one histogram family, in microseconds, rising. */
struct metrics_buckets {
    unsigned n;
    uint64_t le_us[METRICS_BUCKETS_MAX];
};

extern const struct metrics_buckets metrics_buckets_http; /* 0.5 ms .. 10 s */
extern const struct metrics_buckets metrics_buckets_job;  /* 5 ms .. 1 h */
extern const struct metrics_buckets metrics_buckets_beat; /* 10 ms .. 60 s */
extern const struct metrics_buckets metrics_buckets_wait; /* 1 ms .. 1 h */

/* Observations per bucket (not cumulative; [n] is above the last bound). */
struct metrics_hist {
    metrics_u64 sum_ns;
    metrics_u64 bucket[METRICS_BUCKETS_MAX + 1];
};

void metrics_observe(struct metrics_hist *h, const struct metrics_buckets *b, uint64_t ns);

/* --- labelled series --------------------------------------------------- */

struct metrics_slot {
    uint32_t hash;
    uint16_t key_len;
    char key[METRICS_KEY_MAX]; /* values, each followed by a NUL */
};

struct metrics_table {
    unsigned cap;       /* label sets; slot [cap] is the overflow series */
    _Atomic unsigned n; /* slots published to readers */
    unsigned nlabels;   /* label values per key */
    size_t value_size;  /* bytes of one series' values (metrics_u64 words) */
    struct metrics_slot *slots;
    unsigned char *values; /* (cap + 1) * value_size */
    uint32_t *index;       /* open addressing: slot + 1, 0 = empty */
    uint32_t index_mask;
};

void metrics_table_init(struct metrics_table *t, unsigned cap, unsigned nlabels, size_t value_size);
void metrics_table_free(struct metrics_table *t);
/* The values of the series with these label values (made on first use;
 * the overflow series when the table is full or the key too long). */
void *metrics_table_get(struct metrics_table *t, const char *const *vals, const size_t *lens);
/* Slot i's values (i < n, or i == cap for the overflow series). */
static inline void *metrics_table_values(const struct metrics_table *t, unsigned i)
{
    return t->values + (size_t)i * t->value_size;
}
/* Slot i's label values into vals/lens (pointers into the slot). */
void metrics_table_labels(const struct metrics_table *t, unsigned i, const char **vals,
                          size_t *lens);
bool metrics_table_overflowed(const struct metrics_table *t);

/* --- the families every loop has ----------------------------------------- */

/* HTTP requests by route pattern, method and status. */
struct metrics_http {
    metrics_u64 requests;
    struct metrics_hist seconds;
};

enum {
    MJ_ENQUEUED,
    MJ_STARTED,
    MJ_SUCCEEDED,
    MJ_FAILED,  /* every failed attempt */
    MJ_RETRIED, /* failed attempts that will run again */
    MJ_DEAD,    /* failed for good: no attempt left, or permanent */
    MJ_COUNT
};

/* Jobs by queue and kind. */
struct metrics_job {
    metrics_u64 n[MJ_COUNT];
    struct metrics_hist run;  /* attempt run time */
    struct metrics_hist wait; /* from due (enqueued, or its retry due) to start */
};

enum metrics_counter {
    MC_PG_CONNECTS,         /* connections made ready */
    MC_PG_DISCONNECTS,      /* ready connections lost (then reconnected) */
    MC_PG_CONNECT_FAILURES, /* attempts that never became ready */
    MC_REDIS_CONNECTS,
    MC_REDIS_DISCONNECTS,
    MC_REDIS_CONNECT_FAILURES,
    MC_BEAT_FIRED,   /* schedule slots that enqueued a job */
    MC_BEAT_SKIPPED, /* slots skipped: the previous job still pending or running */
    MC_COUNT
};

enum metrics_gauge {
    MG_PG_UP,    /* PostgreSQL connections ready now */
    MG_REDIS_UP, /* Redis connections ready now */
    MG_SLOTS_BUSY,
    MG_SLOTS_LIMIT,
    MG_COUNT
};

struct metrics {
    metrics_u64 counter[MC_COUNT];
    metrics_u64 gauge[MG_COUNT]; /* int64 values, two's complement */
    struct metrics_hist beat_lateness;
    struct metrics_table http; /* route, method, status: struct metrics_http */
    struct metrics_table jobs; /* queue, kind: struct metrics_job */
};

/* series: label sets per family (0: METRICS_SERIES_DEFAULT). */
struct metrics *metrics_new(unsigned series);
void metrics_free(struct metrics *m);

static inline void metrics_count(struct metrics *m, enum metrics_counter c)
{
    metrics_add(&m->counter[c], 1);
}

static inline void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, int64_t d)
{
    metrics_add(&m->gauge[g], (uint64_t)d);
}

void metrics_http_done(struct metrics *m, const char *route, const char *method, int status,
                       uint64_t ns);
struct metrics_job *metrics_job(struct metrics *m, const char *queue, size_t queue_len,
                                const char *kind, size_t kind_len);

/* dst (from metrics_new, single-threaded) += every src, read while their
 * loops run. Label sets past dst's cap go to its overflow series. */
void metrics_merge(struct metrics *dst, struct metrics *const *src, unsigned n);

/* --- the text exposition format (version 0.0.4) --------------------------- */

/* # HELP and # TYPE lines. */
void metrics_text_family(FILE *f, const char *name, const char *type, const char *help);
/* {a="x",b="y"} with values escaped (\\, \", \n), or "" when n == 0. */
size_t metrics_text_labels(char *dst, size_t cap, const char *const *names, const char *const *vals,
                           const size_t *lens, unsigned n);
void metrics_text_u64(FILE *f, const char *name, const char *labels, uint64_t v);
void metrics_text_i64(FILE *f, const char *name, const char *labels, int64_t v);
void metrics_text_double(FILE *f, const char *name, const char *labels, double v);
/* name_bucket{...,le="..."} cumulative, name_sum, name_count. labels: as
 * metrics_text_labels wrote them ("" or "{...}"). */
void metrics_text_hist(FILE *f, const char *name, const char *labels, const struct metrics_hist *h,
                       const struct metrics_buckets *b);

#endif
