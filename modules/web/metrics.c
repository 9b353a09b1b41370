/*
 * metrics.c - GET /metrics: every loop's counters (kernel/metrics.h)
 * merged and rendered in the Prometheus text format, with the leader
 * elections' state and the standard process_* metrics from /proc.
 *
 * The scrape runs on the loop that took the request and reads the other
 * loops' counters as they run (single-writer relaxed atomics, see
 * kernel/metrics.h); it allocates one merge table per scrape, never per
 * increment. Authentication is the /v1 API key unless --metrics-public.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kernel/metrics.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/leader/leader.h"
#include "modules/queue/queue_api.h"
#include "modules/web/queue_counts.h"
#include "modules/web/web.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

void web_metrics_done(const struct web_request *r, const char *pattern, const char *method,
                      int status)
{
    struct metrics *m = r->loop->metrics;
    if (!m || !r->loop->srv->cfg->metrics)
        return;
    /* The route pattern, never the raw path: label values stay bounded. */
    const char *route = pattern ? pattern : "unmatched";
    method = !pattern ? "other" : r->head ? "HEAD" : method;
    metrics_http_done(m, route, method, status, r->loop->now_ns - r->start_ns);
}

/* A table's series in slot order, then its overflow series (labels
 * "other") when it has one: each step renders the labels into labels and
 * says the slot; false past the last. */
struct series {
    const struct metrics_table *t;
    unsigned i, n;
    bool over;
};

static struct series series_of(const struct metrics_table *t)
{
    return (struct series){.t = t,
                           .n = atomic_load(&((struct metrics_table *)t)->n),
                           .over = metrics_table_overflowed(t)};
}

static bool series_next(struct series *it, const char *const *names, unsigned nnames, char *labels,
                        size_t cap, unsigned *slot)
{
    if (it->i > it->n || (it->i == it->n && !it->over))
        return false;
    *slot = it->i < it->n ? it->i : it->t->cap;
    it->i++;
    const char *vals[4];
    size_t lens[4];
    metrics_table_labels(it->t, *slot, vals, lens);
    metrics_text_labels(labels, cap, names, vals, lens, nnames);
    return true;
}

static void render_http(FILE *f, const struct metrics_table *t)
{
    static const char *const names[] = {"route", "method", "status"};
    metrics_text_family(f, "trireme_http_requests_total", "counter",
                        "HTTP requests answered, by route pattern, method and status.");
    char labels[600];
    unsigned slot;
    for (struct series it = series_of(t);
         series_next(&it, names, 3, labels, sizeof(labels), &slot);) {
        const struct metrics_http *h = metrics_table_values(t, slot);
        metrics_text_u64(f, "trireme_http_requests_total", labels, metrics_get(&h->requests));
    }
    metrics_text_family(f, "trireme_http_request_duration_seconds", "histogram",
                        "Time from a request's first byte to its answer, by route pattern, "
                        "method and status.");
    for (struct series it = series_of(t);
         series_next(&it, names, 3, labels, sizeof(labels), &slot);) {
        const struct metrics_http *h = metrics_table_values(t, slot);
        metrics_text_hist(f, "trireme_http_request_duration_seconds", labels, &h->seconds,
                          &metrics_buckets_http);
    }
}

static void render_jobs(FILE *f, const struct metrics_table *t)
{
    static const char *const names[] = {"queue", "kind"};
    static const struct {
        const char *name, *help;
    } counters[MJ_COUNT] = {
        [MJ_ENQUEUED] = {"trireme_jobs_enqueued_total",
                         "Jobs created by this process's job API (POST /v1/jobs, webhooks); not by "
                         "uploads, beat or SQL."},
        [MJ_STARTED] = {"trireme_jobs_started_total", "Job attempts started by this worker."},
        [MJ_SUCCEEDED] = {"trireme_jobs_succeeded_total", "Job attempts that succeeded."},
        [MJ_FAILED] = {"trireme_jobs_failed_total", "Job attempts that failed (retried or not)."},
        [MJ_RETRIED] = {"trireme_jobs_retried_total",
                        "Failed job attempts that will run again after a delay."},
        [MJ_DEAD] = {"trireme_jobs_dead_total",
                     "Jobs that failed for good (no attempt left, or a permanent failure)."},
    };
    char labels[1024];
    unsigned slot;
    for (int c = 0; c < MJ_COUNT; c++) {
        metrics_text_family(f, counters[c].name, "counter", counters[c].help);
        for (struct series it = series_of(t);
             series_next(&it, names, 2, labels, sizeof(labels), &slot);) {
            const struct metrics_job *j = metrics_table_values(t, slot);
            metrics_text_u64(f, counters[c].name, labels, metrics_get(&j->n[c]));
        }
    }
    static const struct {
        const char *name, *help;
        size_t off; /* of the struct metrics_hist in struct metrics_job */
        const struct metrics_buckets *b;
    } hists[] = {
        {"trireme_job_run_seconds", "Run time of finished job attempts, by queue and kind.",
         offsetof(struct metrics_job, run), &metrics_buckets_job},
        {"trireme_job_wait_seconds",
         "Time from due (enqueued, or its retry due) to start of job attempts, by queue and kind.",
         offsetof(struct metrics_job, wait), &metrics_buckets_wait},
    };
    for (size_t h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
        metrics_text_family(f, hists[h].name, "histogram", hists[h].help);
        for (struct series it = series_of(t);
             series_next(&it, names, 2, labels, sizeof(labels), &slot);) {
            const char *j = metrics_table_values(t, slot);
            metrics_text_hist(f, hists[h].name, labels,
                              (const struct metrics_hist *)(j + hists[h].off), hists[h].b);
        }
    }
}

static void render_scalars(FILE *f, struct server *s, const struct metrics *m)
{
    static const struct {
        int ix;
        const char *name, *type, *help;
    } rows[] = {
        {MC_PG_CONNECTS, "trireme_pg_connects_total", "counter",
         "PostgreSQL connections that became ready."},
        {MC_PG_DISCONNECTS, "trireme_pg_disconnects_total", "counter",
         "Ready PostgreSQL connections lost (each is reconnected)."},
        {MC_PG_CONNECT_FAILURES, "trireme_pg_connect_failures_total", "counter",
         "PostgreSQL connection attempts that failed."},
        {MC_REDIS_CONNECTS, "trireme_redis_connects_total", "counter",
         "Redis connections that became ready."},
        {MC_REDIS_DISCONNECTS, "trireme_redis_disconnects_total", "counter",
         "Ready Redis connections lost (each is reconnected)."},
        {MC_REDIS_CONNECT_FAILURES, "trireme_redis_connect_failures_total", "counter",
         "Redis connection attempts that failed."},
        {MC_BEAT_FIRED, "trireme_beat_fired_total", "counter",
         "Schedule slots this process's beat fired (a job written)."},
        {MC_BEAT_SKIPPED, "trireme_beat_skipped_total", "counter",
         "Schedule slots skipped: the schedule's previous job was still pending or running."},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        metrics_text_family(f, rows[i].name, rows[i].type, rows[i].help);
        metrics_text_u64(f, rows[i].name, "", metrics_get(&m->counter[rows[i].ix]));
    }
    static const struct {
        int ix;
        const char *name, *help;
    } gauges[] = {
        {MG_PG_UP, "trireme_pg_connections_up", "PostgreSQL connections ready now."},
        {MG_REDIS_UP, "trireme_redis_connections_up", "Redis connections ready now."},
        {MG_SLOTS_BUSY, "trireme_worker_slots_busy", "Worker slots held by running jobs."},
        {MG_SLOTS_LIMIT, "trireme_worker_slots", "Worker slots (--concurrency)."},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        metrics_text_family(f, gauges[i].name, "gauge", gauges[i].help);
        metrics_text_i64(f, gauges[i].name, "", (int64_t)metrics_get(&m->gauge[gauges[i].ix]));
    }
    metrics_text_family(
        f, "trireme_beat_lateness_seconds", "histogram",
        "From a schedule slot's time to its job's write (catch-up slots excluded).");
    metrics_text_hist(f, "trireme_beat_lateness_seconds", "", &m->beat_lateness,
                      &metrics_buckets_beat);
    static const char *const election[ELECTION_COUNT] = {"worker", "beat"};
    metrics_text_family(f, "trireme_leader", "gauge",
                        "1 while this process leads the election, 0 while it stands by.");
    for (int e = 0; e < ELECTION_COUNT; e++) {
        if (!leader_election_of(s, e))
            continue;
        fprintf(f, "trireme_leader{election=\"%s\"} %d\n", election[e],
                leader_election_is(s, e) ? 1 : 0);
    }
}

/* trireme_queue_jobs from the loop's sample (queue_counts.h); nothing
 * when there is none (no store, or the store failed: the log says). */
static void render_queue_counts(FILE *f, const json_t *sample)
{
    json_t *qs = json_object_get(sample, "queues");
    if (!json_array_size(qs))
        return;
    char help[300];
    snprintf(help, sizeof(help),
             "Jobs by queue and status, from a sample at most %d ms old; each status counted up "
             "to %d jobs (trireme_queue_jobs_capped says which reached it). On Redis, pending "
             "and running only.",
             QUEUE_COUNTS_TTL_MS, QUEUE_COUNT_CAP);
    metrics_text_family(f, "trireme_queue_jobs", "gauge", help);
    static const char *const names[] = {"queue", "status"};
    char labels[600];
    size_t i;
    json_t *q;
    json_array_foreach(qs, i, q)
    {
        const char *queue = json_string_value(json_object_get(q, "queue"));
        for (unsigned s = 0; queue && s < QUEUE_NSTATUS; s++) {
            json_t *n = json_object_get(q, queue_statuses[s]);
            if (!json_is_integer(n))
                continue;
            const char *vals[2] = {queue, queue_statuses[s]};
            size_t lens[2] = {strlen(queue), strlen(queue_statuses[s])};
            metrics_text_labels(labels, sizeof(labels), names, vals, lens, 2);
            metrics_text_u64(f, "trireme_queue_jobs", labels,
                             (unsigned long long)json_integer_value(n));
        }
    }
    metrics_text_family(f, "trireme_queue_jobs_capped", "gauge",
                        "1 for a status whose jobs reached the sample's cap: its counts are "
                        "lower bounds.");
    static const char *const sname[] = {"status"};
    for (unsigned s = 0; s < QUEUE_NSTATUS; s++) {
        bool capped = false;
        json_array_foreach(json_object_get(sample, "capped"), i, q) capped |=
            !strcmp(json_string_value(q) ? json_string_value(q) : "", queue_statuses[s]);
        size_t len = strlen(queue_statuses[s]);
        metrics_text_labels(labels, sizeof(labels), sname, &queue_statuses[s], &len, 1);
        metrics_text_u64(f, "trireme_queue_jobs_capped", labels, capped);
    }
}

/* process_* as the Prometheus client libraries export them. */
static void render_process(FILE *f)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *st = fopen("/proc/self/stat", "r");
    size_t n = st ? fread(buf, 1, sizeof(buf) - 1, st) : 0;
    if (st)
        fclose(st);
    buf[n] = 0;
    /* Fields after the command name, which may hold spaces: from the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0, start = 0, rss = 0;
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                    "%*d %llu %*u %llu",
                    &utime, &stime, &start, &rss) == 4) {
        metrics_text_family(f, "process_cpu_seconds_total", "counter",
                            "User and system CPU time spent, in seconds.");
        metrics_text_double(f, "process_cpu_seconds_total", "", (double)(utime + stime) / tick);
        metrics_text_family(f, "process_resident_memory_bytes", "gauge",
                            "Resident memory size in bytes.");
        metrics_text_u64(f, "process_resident_memory_bytes", "", rss * (unsigned long long)page);
        double boot = 0;
        FILE *sf = fopen("/proc/stat", "r");
        char line[256];
        while (sf && fgets(line, sizeof(line), sf))
            if (!strncmp(line, "btime ", 6)) {
                boot = strtod(line + 6, NULL);
                break;
            }
        if (sf)
            fclose(sf);
        metrics_text_family(f, "process_start_time_seconds", "gauge",
                            "Start time of the process since the Unix epoch, in seconds.");
        metrics_text_double(f, "process_start_time_seconds", "", boot + (double)start / tick);
    }
    unsigned long long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d) {
        closedir(d);
        metrics_text_family(f, "process_open_fds", "gauge", "Open file descriptors.");
        metrics_text_u64(f, "process_open_fds", "", fds ? fds - 1 : 0); /* not the DIR's own */
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        metrics_text_family(f, "process_max_fds", "gauge", "Limit of open file descriptors.");
        metrics_text_u64(f, "process_max_fds", "", (unsigned long long)rl.rlim_cur);
    }
}

static void answer(struct web_request *r, const json_t *sample, const struct queue_answer *failed)
{
    (void)failed; /* then the gauge is left out: a scrape still answers */
    struct server *s = r->loop->srv;
    const struct config *cfg = s->cfg;
    struct metrics *m = metrics_new(cfg->metrics_max_series);
    struct metrics **src = xcalloc((size_t)s->nloops, sizeof(*src));
    for (int i = 0; i < s->nloops; i++)
        src[i] = s->loops[i].metrics;
    metrics_merge(m, src, (unsigned)s->nloops);
    free(src);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) {
        metrics_free(m);
        web_respond_error(r, 503, "unavailable", "out of memory for the metrics");
        return;
    }
    render_http(f, &m->http);
    render_jobs(f, &m->jobs);
    render_scalars(f, s, m);
    render_queue_counts(f, sample);
    render_process(f);
    fclose(f);
    metrics_free(m);
    web_respond(r, 200, CONTENT_TYPE, out, len, NULL);
    free(out);
}

void web_metrics(struct web_request *r)
{
    const struct config *cfg = r->loop->srv->cfg;
    if (!cfg->metrics) {
        web_respond_error(r, 404, "not_found", "metrics are off (--metrics=false)");
        return;
    }
    if (!cfg->metrics_public && !web_authorized(r))
        return;
    queue_counts_get(r, answer);
}
