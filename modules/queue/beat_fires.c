/*
 * beat_fires.c - a batch of due slots to and from the PostgreSQL statement
 * that records their fires (see beat_fires.h).
 */
#include "modules/queue/beat_fires.h"

#include <stdio.h>
#include <stdlib.h>

#include "kernel/xalloc.h"

/* The longest value of any column: a bigint ("-9223372036854775808"), or
 * "catchup", plus its comma. */
#define VALUE_MAX 21

static int by_slot(const void *pa, const void *pb)
{
    const struct queue_beat_slot *a = pa, *b = pb;
    if (a->schedule_id != b->schedule_id)
        return a->schedule_id < b->schedule_id ? -1 : 1;
    return a->slot < b->slot ? -1 : a->slot > b->slot;
}

void beat_fires_sort(struct queue_beat_slot *v, unsigned n)
{
    qsort(v, n, sizeof(*v), by_slot);
    for (unsigned i = 0; i < n; i++) {
        v[i].outcome = QUEUE_BEAT_NONE;
        v[i].created = false;
        v[i].job_id = v[i].blocked_by = 0;
    }
}

static int put_value(char *p, const struct queue_beat_slot *s, enum beat_fires_col col)
{
    int64_t x;
    switch (col) {
    case BF_IDS:
        x = s->schedule_id;
        break;
    case BF_SLOTS:
        x = s->slot;
        break;
    case BF_JITTER:
        x = s->jitter_ms;
        break;
    case BF_REASONS:
        return sprintf(p, "%s", s->catchup ? "catchup" : "due");
    case BF_JOB_IDS:
        x = s->job_id;
        goto nullable;
    case BF_BLOCKED:
        x = s->blocked_by;
        goto nullable;
    default:
        x = s->next;
    nullable:
        if (x <= 0)
            return sprintf(p, "NULL");
    }
    return sprintf(p, "%lld", (long long)x);
}

void beat_fires_params(struct beat_fires *f, const struct queue_beat_slot *v, unsigned n,
                       const enum beat_fires_col *cols, int ncols)
{
    size_t need = (size_t)ncols * ((size_t)n * VALUE_MAX + 3);
    if (need > f->cap) {
        f->cap = need;
        f->buf = xrealloc(f->buf, f->cap);
    }
    char *p = f->buf;
    for (int c = 0; c < ncols; c++) {
        f->vals[c] = p;
        *p++ = '{';
        for (unsigned i = 0; i < n; i++) {
            if (i)
                *p++ = ',';
            p += put_value(p, &v[i], cols[c]);
        }
        *p++ = '}';
        *p++ = 0;
    }
}

void beat_fires_apply(struct queue_beat_slot *v, unsigned n, PGresult *res)
{
    int rows = PQntuples(res);
    unsigned i = 0;
    for (int r = 0; r < rows; r++) {
        int64_t id = atoll(PQgetvalue(res, r, 0)), slot = atoll(PQgetvalue(res, r, 1));
        while (i < n && (v[i].schedule_id < id || (v[i].schedule_id == id && v[i].slot < slot)))
            i++;
        if (i == n)
            return;
        struct queue_beat_slot *s = &v[i];
        if (s->schedule_id != id || s->slot != slot)
            continue; /* not a slot of this batch: cannot happen, and is no outcome */
        if (!PQgetisnull(res, r, 2)) {
            s->outcome = QUEUE_BEAT_FIRED;
            s->job_id = atoll(PQgetvalue(res, r, 2));
        } else {
            s->outcome = QUEUE_BEAT_SKIPPED;
            s->job_id = 0;
            s->blocked_by = PQgetisnull(res, r, 3) ? 0 : atoll(PQgetvalue(res, r, 3));
        }
        i++;
    }
}

void beat_fires_free(struct beat_fires *f)
{
    free(f->buf);
    *f = (struct beat_fires){0};
}
