/*
 * metrics.c - per-loop metrics tables, their merge at scrape time, and the
 * Prometheus text format; see metrics.h for who writes and who reads.
 */
#include "kernel/metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"

const struct metrics_buckets metrics_buckets_http = {14,
                                                     {500, 1000, 2500, 5000, 10000, 25000, 50000,
                                                      100000, 250000, 500000, 1000000, 2500000,
                                                      5000000, 10000000}};
const struct metrics_buckets metrics_buckets_job = {
    16,
    {5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
     30000000, 60000000, 300000000, 900000000, 3600000000ull}};
const struct metrics_buckets metrics_buckets_wait = {
    16,
    {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
     60000000, 300000000, 1800000000ull, 3600000000ull}};
const struct metrics_buckets metrics_buckets_beat = {11,
                                                     {10000, 50000, 100000, 250000, 500000, 1000000,
                                                      2500000, 5000000, 10000000, 30000000,
                                                      60000000}};

void metrics_observe(struct metrics_hist *h, const struct metrics_buckets *b, uint64_t ns)
{
    unsigned i = 0;
    while (i < b->n && ns > b->le_us[i] * 1000)
        i++;
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum_ns, ns);
}

/* --- tables -------------------------------------------------------------- */

static uint32_t key_hash(const char *k, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

void metrics_table_init(struct metrics_table *t, unsigned cap, unsigned nlabels, size_t value_size)
{
    memset(t, 0, sizeof(*t));
    uint32_t isize = 4;
    while (isize < 2 * cap)
        isize *= 2;
    t->cap = cap;
    t->nlabels = nlabels;
    t->value_size = value_size;
    t->slots = xcalloc(cap + 1, sizeof(*t->slots));
    t->values = xcalloc(cap + 1, value_size);
    t->index = xcalloc(isize, sizeof(*t->index));
    t->index_mask = isize - 1;
    /* The overflow series' key: "other" for every label. */
    struct metrics_slot *o = &t->slots[cap];
    for (unsigned i = 0; i < nlabels; i++) {
        memcpy(o->key + o->key_len, METRICS_OTHER, sizeof(METRICS_OTHER));
        o->key_len += sizeof(METRICS_OTHER);
    }
}

void metrics_table_free(struct metrics_table *t)
{
    free(t->slots);
    free(t->values);
    free(t->index);
    t->slots = NULL;
    t->values = NULL;
    t->index = NULL;
}

/* The series of a key already joined (values NUL-separated). */
static void *get_key(struct metrics_table *t, const char *key, size_t kl)
{
    const struct metrics_slot *o = &t->slots[t->cap];
    if (kl == o->key_len && !memcmp(key, o->key, kl))
        return metrics_table_values(t, t->cap); /* one "other" series, never two */
    uint32_t h = key_hash(key, kl), pos = h & t->index_mask, s;
    while ((s = t->index[pos])) {
        const struct metrics_slot *sl = &t->slots[s - 1];
        if (sl->hash == h && sl->key_len == kl && !memcmp(sl->key, key, kl))
            return metrics_table_values(t, s - 1);
        pos = (pos + 1) & t->index_mask;
    }
    unsigned n = atomic_load_explicit(&t->n, memory_order_relaxed);
    if (n >= t->cap)
        return metrics_table_values(t, t->cap);
    struct metrics_slot *sl = &t->slots[n];
    sl->hash = h;
    sl->key_len = (uint16_t)kl;
    memcpy(sl->key, key, kl);
    t->index[pos] = n + 1;
    /* Publish the key before anyone can see the slot (metrics.h). */
    atomic_store_explicit(&t->n, n + 1, memory_order_release);
    return metrics_table_values(t, n);
}

void *metrics_table_get(struct metrics_table *t, const char *const *vals, const size_t *lens)
{
    char key[METRICS_KEY_MAX];
    size_t kl = 0;
    for (unsigned i = 0; i < t->nlabels; i++) {
        size_t n = vals[i] ? lens[i] : 0;
        if (kl + n + 1 > sizeof(key) || (n && memchr(vals[i], 0, n)))
            return metrics_table_values(t, t->cap);
        memcpy(key + kl, vals[i], n);
        kl += n;
        key[kl++] = 0;
    }
    return get_key(t, key, kl);
}

void metrics_table_labels(const struct metrics_table *t, unsigned i, const char **vals,
                          size_t *lens)
{
    const char *k = t->slots[i].key;
    for (unsigned l = 0; l < t->nlabels; l++) {
        vals[l] = k;
        lens[l] = strlen(k);
        k += lens[l] + 1;
    }
}

bool metrics_table_overflowed(const struct metrics_table *t)
{
    const metrics_u64 *w = metrics_table_values(t, t->cap);
    for (size_t i = 0; i < t->value_size / sizeof(*w); i++)
        if (metrics_get(&w[i]))
            return true;
    return false;
}

/* dst's series values += src's, word by word (every value is a metrics_u64). */
static void add_words(void *dst, const void *src, size_t size)
{
    metrics_u64 *d = dst;
    const metrics_u64 *s = src;
    for (size_t i = 0; i < size / sizeof(*d); i++)
        metrics_add(&d[i], metrics_get(&s[i]));
}

static void merge_table(struct metrics_table *dst, const struct metrics_table *src)
{
    unsigned n = atomic_load_explicit(&((struct metrics_table *)src)->n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const struct metrics_slot *sl = &src->slots[i];
        add_words(get_key(dst, sl->key, sl->key_len), metrics_table_values(src, i),
                  src->value_size);
    }
    add_words(metrics_table_values(dst, dst->cap), metrics_table_values(src, src->cap),
              src->value_size);
}

/* --- the per-loop registry ------------------------------------------------ */

struct metrics *metrics_new(unsigned series)
{
    if (!series)
        series = METRICS_SERIES_DEFAULT;
    struct metrics *m = xcalloc(1, sizeof(*m));
    metrics_table_init(&m->http, series, 3, sizeof(struct metrics_http));
    metrics_table_init(&m->jobs, series, 2, sizeof(struct metrics_job));
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    metrics_table_free(&m->http);
    metrics_table_free(&m->jobs);
    free(m);
}

void metrics_http_done(struct metrics *m, const char *route, const char *method, int status,
                       uint64_t ns)
{
    char code[12];
    int cl = snprintf(code, sizeof(code), "%d", status);
    const char *vals[3] = {route, method, code};
    const size_t lens[3] = {strlen(route), strlen(method), (size_t)cl};
    struct metrics_http *h = metrics_table_get(&m->http, vals, lens);
    metrics_add(&h->requests, 1);
    metrics_observe(&h->seconds, &metrics_buckets_http, ns);
}

struct metrics_job *metrics_job(struct metrics *m, const char *queue, size_t queue_len,
                                const char *kind, size_t kind_len)
{
    const char *vals[2] = {queue, kind};
    const size_t lens[2] = {queue_len, kind_len};
    return metrics_table_get(&m->jobs, vals, lens);
}

void metrics_merge(struct metrics *dst, struct metrics *const *src, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const struct metrics *s = src[i];
        if (!s)
            continue;
        add_words(dst->counter, s->counter, sizeof(s->counter));
        add_words(dst->gauge, s->gauge, sizeof(s->gauge));
        add_words(&dst->beat_lateness, &s->beat_lateness, sizeof(s->beat_lateness));
        merge_table(&dst->http, &s->http);
        merge_table(&dst->jobs, &s->jobs);
    }
}

/* --- text format ------------------------------------------------------------ */

void metrics_text_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

size_t metrics_text_labels(char *dst, size_t cap, const char *const *names, const char *const *vals,
                           const size_t *lens, unsigned n)
{
    size_t o = 0;
    if (!cap)
        return 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < cap)                                                                           \
            dst[o++] = (ch);                                                                       \
    } while (0)
    for (unsigned i = 0; i < n; i++) {
        PUT(i ? ',' : '{');
        for (const char *p = names[i]; *p; p++)
            PUT(*p);
        PUT('=');
        PUT('"');
        for (size_t k = 0; k < lens[i]; k++) {
            char ch = vals[i][k];
            if (ch == '\\' || ch == '"') {
                PUT('\\');
                PUT(ch);
            } else if (ch == '\n') {
                PUT('\\');
                PUT('n');
            } else {
                PUT(ch);
            }
        }
        PUT('"');
    }
    if (n)
        PUT('}');
#undef PUT
    /* Cut short: close what is open, so the line still parses. */
    if (n && o + 1 >= cap && cap >= 3) {
        o = cap - 3;
        dst[o++] = '"';
        dst[o++] = '}';
    }
    dst[o] = 0;
    return o;
}

void metrics_text_u64(FILE *f, const char *name, const char *labels, uint64_t v)
{
    fprintf(f, "%s%s %" PRIu64 "\n", name, labels, v);
}

void metrics_text_i64(FILE *f, const char *name, const char *labels, int64_t v)
{
    fprintf(f, "%s%s %" PRId64 "\n", name, labels, v);
}

void metrics_text_double(FILE *f, const char *name, const char *labels, double v)
{
    fprintf(f, "%s%s %.17g\n", name, labels, v);
}

/* labels "{a="x"}" + le: "{a="x",le="0.5"}"; labels "": "{le="0.5"}". */
static void bucket_line(FILE *f, const char *name, const char *labels, const char *le, uint64_t v)
{
    size_t ll = strlen(labels);
    if (ll >= 2)
        fprintf(f, "%s_bucket%.*s,le=\"%s\"} %" PRIu64 "\n", name, (int)(ll - 1), labels, le, v);
    else
        fprintf(f, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, v);
}

void metrics_text_hist(FILE *f, const char *name, const char *labels, const struct metrics_hist *h,
                       const struct metrics_buckets *b)
{
    uint64_t cum = 0;
    char le[32];
    for (unsigned i = 0; i < b->n; i++) {
        cum += metrics_get(&h->bucket[i]);
        snprintf(le, sizeof(le), "%.6g", (double)b->le_us[i] / 1e6);
        bucket_line(f, name, labels, le, cum);
    }
    cum += metrics_get(&h->bucket[b->n]);
    bucket_line(f, name, labels, "+Inf", cum);
    fprintf(f, "%s_sum%s %.9f\n", name, labels, (double)metrics_get(&h->sum_ns) / 1e9);
    fprintf(f, "%s_count%s %" PRIu64 "\n", name, labels, cum);
}
