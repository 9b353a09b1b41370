/*
 * events.c - GET /v1/events?queue=a,b&kind=x,y: every change of every job
 * (created, started, progress, finished, retried, cancelled) as
 * Server-Sent Events, `event: job` with the job as GET /v1/jobs/{id}
 * shows it, for dashboards and tools that would otherwise poll the list.
 *
 * One feed per web loop (an sse_hub, sse.c). While any stream is open it
 * reads the queue backend's change feed (queue_api.h, changes) every
 * EVENTS_POLL_MS: one store call per poll however many streams, each
 * stream filtered here by its queue and kind lists, so a thousand clients
 * cost one reader. A read that comes back full (EVENTS_BATCH changes) is
 * followed by the next at once. With no stream open there is no timer and
 * no call: the queues pay nothing for the feature.
 *
 * The feed's position is the newest change read. The store may show a
 * change late, behind a position already answered (PostgreSQL stamps a
 * row with its transaction's start, and the transaction can commit after
 * a poll), so each read also returns the QUEUE_CHANGES_OVERLAP_MS behind
 * the position, and the feed keeps the changes it read in that window
 * (seen): one not in it is late, and goes to every stream whose filters
 * it matches, once. The re-read is capped at EVENTS_BATCH changes (its
 * cost is the store building those jobs again on every poll), so above
 * about EVENTS_BATCH changes per overlap it covers less than the overlap.
 * When a read finds nothing new, the position moves up to the store's
 * present minus the overlap, so an idle feed stops reading the window
 * again after two overlaps.
 *
 * Each event's id is the stream's cursor: the newest change it was sent.
 * A client reconnecting with it as Last-Event-ID gets the changes after
 * it, none again (the feed reads from the oldest such cursor, and streams
 * already past a change skip it). A cursor older than
 * QUEUE_CHANGES_KEEP_S, or older than the store's record of changes
 * ("from": both backends record them only while someone listens), or not a
 * cursor, starts the stream at the present with `event: reset` first: the
 * client reloads what it shows. A job changed several times within one
 * read is sent once, as it is now (the store answers each change with the
 * job's present state). A client that reads slower than changes come is
 * not given fewer of them: past EVENTS_MAX_PENDING unsent bytes its
 * stream ends, and it resumes from its Last-Event-ID. The head of the
 * answer is sent after the stream's first read: by then the store records
 * changes (a store starts when a feed reads), so a client holding the
 * head sees every later change. A backend without a change feed: 501.
 */
#include "modules/web/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/queue/queue_api.h"
#include "modules/web/api_jobs.h"
#include "modules/web/sse.h"
#include "modules/web/web.h"
#include "modules/web/web_loop.h"
#include "proto/utf8.h"

/* A change's place in the feed: "<a>-<b>" ordered as (a, b); a is in
 * microseconds (the overlap is measured on it). */
struct key {
    int64_t a, b;
};

struct event_feed {
    struct sse_hub hub;
    struct web_loop *wl;
    struct queue_call *inflight;
    bool have_pos, have_asked, rewinding;
    struct key pos;    /* the newest change read */
    struct key asked;  /* the cursor of the read in flight */
    struct key rewind; /* a resumed stream's cursor behind pos: the next read's start */
    struct key floor;  /* seen holds every change read after it */
    struct key *seen;  /* sorted */
    size_t nseen, cap;
};

struct event_stream {
    struct sse_stream sse; /* first */
    bool placed;           /* cursor is set */
    bool reset;            /* its Last-Event-ID could not be resumed: say so first */
    struct key cursor;     /* the newest change sent, or where it started */
    char *queues, *kinds;  /* comma lists; NULL: any */
};

static int key_cmp(struct key x, struct key y)
{
    if (x.a != y.a)
        return (x.a > y.a) - (x.a < y.a);
    return (x.b > y.b) - (x.b < y.b);
}

static bool key_parse(const char *s, struct key *k)
{
    long long a, b;
    int n = 0;
    if (!s || sscanf(s, "%lld-%lld%n", &a, &b, &n) != 2 || s[n])
        return false;
    *k = (struct key){a, b};
    return true;
}

static void key_text(struct key k, char *out, size_t cap)
{
    snprintf(out, cap, "%lld-%lld", (long long)k.a, (long long)k.b);
}

/* --- the window of changes read ----------------------------------------- */

static size_t seen_lower(const struct event_feed *fe, struct key k)
{
    size_t lo = 0, hi = fe->nseen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key_cmp(fe->seen[mid], k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool seen_has(const struct event_feed *fe, struct key k)
{
    size_t i = seen_lower(fe, k);
    return i < fe->nseen && !key_cmp(fe->seen[i], k);
}

static void seen_add(struct event_feed *fe, struct key k)
{
    if (key_cmp(k, fe->floor) <= 0)
        return;
    size_t i = seen_lower(fe, k);
    if (i < fe->nseen && !key_cmp(fe->seen[i], k))
        return;
    if (fe->nseen == fe->cap) {
        fe->cap = fe->cap ? fe->cap * 2 : 256;
        fe->seen = xrealloc(fe->seen, fe->cap * sizeof(*fe->seen));
    }
    memmove(fe->seen + i + 1, fe->seen + i, (fe->nseen - i) * sizeof(*fe->seen));
    fe->seen[i] = k;
    fe->nseen++;
}

/* Forget what is older than the overlap behind pos: the reads no longer
 * return it, so it cannot be taken for late. */
static void seen_prune(struct event_feed *fe)
{
    struct key f = {fe->pos.a - (int64_t)QUEUE_CHANGES_OVERLAP_MS * 1000, INT64_MAX};
    if (key_cmp(f, fe->floor) <= 0)
        return;
    fe->floor = f;
    size_t i = seen_lower(fe, f);
    if (!i)
        return; /* nothing to drop (and seen may still be NULL) */
    memmove(fe->seen, fe->seen + i, (fe->nseen - i) * sizeof(*fe->seen));
    fe->nseen -= i;
}

/* No stream left: the next one starts a new feed at the present. */
static void feed_reset(struct event_feed *fe)
{
    fe->have_pos = fe->rewinding = false;
    fe->nseen = 0;
}

/* --- streams ---------------------------------------------------------------- */

static void free_stream(struct sse_stream *ss)
{
    struct event_stream *s = (struct event_stream *)ss;
    free(s->queues);
    free(s->kinds);
    free(s);
}

static bool in_list(const char *list, const char *v)
{
    if (!list)
        return true;
    if (!v)
        return false;
    size_t n = strlen(v);
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !memcmp(p, v, n))
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

/* A change the feed read: its job's fields, its text once a stream wants it. */
struct change {
    struct key k;
    json_t *job;
    int64_t id;
    const char *queue, *kind;
    char *text;
    bool late;
    bool superseded; /* a later change of this read is the same job's */
};

static int cmp_change_id(const void *a, const void *b)
{
    const struct change *x = *(struct change *const *)a, *y = *(struct change *const *)b;
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return (x > y) - (x < y); /* in the read's order */
}

/* Each change carries its job as it is now, so of several changes of one
 * job in a read only the last is sent (its key moves the cursors past the
 * others). */
static void coalesce(struct change *cs, size_t n)
{
    struct change **by = xcalloc(n + 1, sizeof(*by));
    for (size_t i = 0; i < n; i++)
        by[i] = &cs[i];
    qsort(by, n, sizeof(*by), cmp_change_id);
    for (size_t i = 0; i + 1 < n; i++)
        if (by[i]->id == by[i + 1]->id)
            by[i]->superseded = true;
    free(by);
}

static void deliver(struct event_stream *s, struct change *c)
{
    if (!in_list(s->queues, c->queue) || !in_list(s->kinds, c->kind))
        return;
    if (key_cmp(c->k, s->cursor) <= 0 && !c->late)
        return; /* it has it: the feed read again behind this stream */
    if (sse_slow(&s->sse)) {
        /* Skipping would lose changes for good: end instead, and the
         * client resumes from the last event it got. */
        sse_end(&s->sse);
        return;
    }
    if (key_cmp(c->k, s->cursor) > 0)
        s->cursor = c->k;
    if (!c->text)
        c->text = json_dumps(c->job, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char id[SSE_ID_MAX + 1];
    key_text(s->cursor, id, sizeof(id));
    sse_send(&s->sse, id, "job", c->text, strlen(c->text)); /* a failure: on_abort follows */
}

/* After a read: streams that opened since get their head now, so a client
 * that has it knows its changes are being recorded. Streams that opened
 * before the feed had a position start at start; one
 * whose cursor lies before the store's record (from) restarts there; a
 * stream whose cursor could not be resumed is told. */
static void place(struct event_feed *fe, struct key start, struct key from)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &fe->hub.streams)
    {
        struct event_stream *s = (struct event_stream *)list_entry(pos, struct sse_stream, node);
        if (!sse_start(&s->sse))
            continue; /* gone */
        if (!s->placed) {
            s->placed = true;
            s->cursor = start;
        } else if (key_cmp(s->cursor, from) < 0) {
            s->cursor = start;
            s->reset = true;
        }
        if (s->reset) {
            s->reset = false;
            char id[SSE_ID_MAX + 1];
            key_text(s->cursor, id, sizeof(id));
            sse_send(&s->sse, id, "reset", "{}", 2);
        }
    }
}

static void poll_now(struct sse_hub *h);

static void on_read(struct queue_call *qc, const struct queue_answer *ans)
{
    struct event_feed *fe = qc->data;
    fe->inflight = NULL;
    if (!fe->hub.nstreams || fe->hub.stopped)
        return;
    json_t *got = ans->status == 200 ? json_loadb(ans->body, ans->len, 0, NULL) : NULL;
    json_t *changes = json_object_get(got, "changes");
    struct key now, from;
    if (!json_is_array(changes) ||
        !key_parse(json_string_value(json_object_get(got, "now")), &now) ||
        !key_parse(json_string_value(json_object_get(got, "from")), &from)) {
        /* Started streams wait for the next poll, from the same position;
         * new ones get the store's answer. */
        LOG(LOG_WARN, "events: the store did not answer",
            L_STR("error", ans->detail    ? ans->detail
                           : ans->message ? ans->message
                                          : "an answer that is not the changes"));
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &fe->hub.streams)
        {
            struct sse_stream *s = list_entry(pos, struct sse_stream, node);
            if (s->started)
                continue;
            struct web_request *r = s->r;
            sse_done(s);
            if (ans->status >= 300)
                api_respond_failed(r, ans);
            else
                api_respond_unavailable(r, "the store's answer was not the changes");
        }
        json_decref(got);
        sse_arm(&fe->hub, EVENTS_POLL_MS);
        return;
    }
    if (!fe->have_pos) {
        fe->have_pos = true;
        fe->pos = fe->have_asked ? fe->asked : now;
        fe->floor = fe->pos; /* what came before the feed began is not late */
        fe->nseen = 0;
    }
    if (key_cmp(from, fe->pos) > 0) {
        /* The store's record starts after the feed's position (it stopped
         * recording while this feed could not read): what lies between is
         * lost, so the feed starts again there and its streams reset. */
        fe->pos = fe->floor = from;
        fe->nseen = 0;
    }
    place(fe, fe->pos, from);
    size_t n = json_array_size(changes), fresh = 0, nc = 0;
    struct change *cs = xcalloc(n + 1, sizeof(*cs));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(changes, i);
        struct change c = {.job = json_object_get(e, "job")};
        if (!key_parse(json_string_value(json_object_get(e, "cursor")), &c.k) || !c.job)
            continue;
        if (!fe->have_asked || key_cmp(c.k, fe->asked) > 0) {
            fresh++;
            if (key_cmp(c.k, fe->pos) > 0 || fe->have_asked)
                fe->pos = c.k;
        } else {
            /* Read again from the overlap: news only if the window does
             * not have it. */
            c.late = key_cmp(c.k, fe->floor) > 0 && !seen_has(fe, c.k);
            if (!c.late)
                continue;
        }
        seen_add(fe, c.k);
        c.id = json_integer_value(json_object_get(c.job, "id"));
        c.queue = json_string_value(json_object_get(c.job, "queue"));
        c.kind = json_string_value(json_object_get(c.job, "kind"));
        cs[nc++] = c;
    }
    coalesce(cs, nc);
    for (size_t i = 0; i < nc; i++) {
        if (cs[i].superseded)
            continue;
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &fe->hub.streams)
        {
            deliver((struct event_stream *)list_entry(pos, struct sse_stream, node), &cs[i]);
        }
        free(cs[i].text);
    }
    free(cs);
    /* Nothing new: what the store stamped an overlap ago has committed by
     * now, so the position moves there and the window ahead of it shrinks. */
    struct key idle = {now.a - (int64_t)QUEUE_CHANGES_OVERLAP_MS * 1000, 0};
    if (!fresh && key_cmp(idle, fe->pos) > 0)
        fe->pos = idle;
    seen_prune(fe);
    json_decref(got);
    sse_heartbeat(&fe->hub);
    sse_arm(&fe->hub, fresh >= EVENTS_BATCH || fe->rewinding ? 0 : EVENTS_POLL_MS);
}

/* One read of the change feed for every stream. */
static void poll_now(struct sse_hub *h)
{
    struct event_feed *fe = container_of(h, struct event_feed, hub);
    if (fe->inflight || h->stopped || !h->nstreams)
        return;
    fe->have_asked = fe->have_pos || fe->rewinding;
    fe->asked = fe->pos;
    if (fe->rewinding && (!fe->have_pos || key_cmp(fe->rewind, fe->pos) < 0))
        fe->asked = fe->rewind;
    fe->rewinding = false;
    struct queue_cursor after = {fe->asked.a, fe->asked.b};
    void *state;
    const char *why = NULL;
    const struct queue_api_ops *ops = api_jobs_ops(fe->wl, &state, &why);
    fe->inflight =
        ops ? ops->changes(state, fe->have_asked ? &after : NULL, EVENTS_BATCH, on_read, fe) : NULL;
    if (!fe->inflight) { /* no store on this loop: answered at open, never here */
        LOG(LOG_WARN, "events: no store", L_STR("error", why));
        sse_arm(h, EVENTS_POLL_MS);
    }
}

static struct event_feed *feed_of(struct web_loop *wl)
{
    if (!wl->feed) {
        struct event_feed *fe = xcalloc(1, sizeof(*fe));
        fe->wl = wl;
        sse_hub_init(&fe->hub, wl->loop);
        fe->hub.poll_ms = EVENTS_POLL_MS;
        fe->hub.heartbeat_ms = EVENTS_HEARTBEAT_MS;
        fe->hub.max_pending = EVENTS_MAX_PENDING;
        fe->hub.poll = poll_now;
        fe->hub.free_stream = free_stream;
        wl->feed = fe;
    }
    return wl->feed;
}

/* queue= or kind=: a comma list, or NULL when absent; false after a 400. */
static bool filter_param(struct web_request *r, const char *name, char **out)
{
    char v[EVENTS_FILTER_MAX + 1];
    int have = web_query(r, name, v, sizeof(v));
    if (have < 0 || (have && (!*v || !utf8_valid(v, strlen(v))))) {
        char msg[120];
        snprintf(msg, sizeof(msg),
                 "query parameter %s is empty, malformed, not UTF-8 or too long (at most %d "
                 "bytes)",
                 name, EVENTS_FILTER_MAX);
        web_respond_error(r, 400, "invalid_query", msg);
        return false;
    }
    *out = have ? xstrdup(v) : NULL;
    return true;
}

/* Whether a stream can open on this loop; false after answering why not. */
static bool can_open(struct web_request *r, struct web_loop *wl, struct event_feed *fe)
{
    void *state;
    const char *why = NULL;
    const struct queue_api_ops *ops = api_jobs_ops(wl, &state, &why);
    if (!ops) {
        api_respond_unavailable(r, why);
    } else if (!ops->changes) {
        web_respond_error(r, 501, "not_implemented",
                          "this queue backend keeps no feed of job changes: follow a job with "
                          "GET /v1/jobs/{id}/events, or list with GET /v1/jobs");
    } else if (fe->hub.stopped || wl->draining) {
        api_respond_unavailable(r, "the server is shutting down");
    } else if (fe->hub.nstreams >= EVENTS_MAX_STREAMS) {
        api_respond_unavailable(r, "too many event streams on this server thread");
    } else {
        return true;
    }
    return false;
}

/* GET /v1/events */
void api_events(struct web_request *r)
{
    char *queues = NULL, *kinds = NULL;
    struct web_loop *wl = web_loop_of(r->loop);
    struct event_feed *fe = feed_of(wl);
    if (!web_authorized(r) || !filter_param(r, "queue", &queues) ||
        !filter_param(r, "kind", &kinds) || !can_open(r, wl, fe)) {
        free(queues);
        free(kinds);
        return;
    }
    if (!fe->hub.nstreams)
        feed_reset(fe);
    struct event_stream *s = xcalloc(1, sizeof(*s));
    s->queues = queues;
    s->kinds = kinds;
    const struct http1_header *h = http1_find_header(r->http, "last-event-id");
    if (h) {
        char text[SSE_ID_MAX + 1];
        snprintf(text, sizeof(text), "%.*s",
                 (int)(h->value_len < SSE_ID_MAX ? h->value_len : SSE_ID_MAX), h->value);
        struct key k;
        int64_t oldest = (r->loop->wall_s - QUEUE_CHANGES_KEEP_S) * 1000000;
        if (h->value_len <= SSE_ID_MAX && key_parse(text, &k) && k.a >= oldest) {
            s->placed = true;
            s->cursor = k;
            if (!fe->have_pos || key_cmp(k, fe->pos) < 0) {
                if (!fe->rewinding || key_cmp(k, fe->rewind) < 0)
                    fe->rewind = k;
                fe->rewinding = true;
            }
        } else {
            s->reset = true;
        }
    }
    if (!s->placed && fe->have_pos) {
        s->placed = true;
        s->cursor = fe->pos;
    }
    sse_add(&fe->hub, &s->sse, r);
    poll_now(&fe->hub); /* the head after the first read, at once if none is in flight */
}

void events_stop(struct web_loop *wl)
{
    if (wl->feed)
        sse_stop(&wl->feed->hub);
}

void events_close(struct web_loop *wl)
{
    struct event_feed *fe = wl->feed;
    if (!fe)
        return;
    if (fe->inflight)
        queue_call_forget(fe->inflight);
    sse_close(&fe->hub);
    free(fe->seen);
    free(fe);
    wl->feed = NULL;
}
