/*
 * rqueue.c - script arguments, job rendering and EVALSHA for the Redis
 * queue backend (see rqueue.h).
 */
#include "modules/rqueue/rqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/container_of.h"
#include "kernel/xalloc.h"
#include "proto/resp.h"
#include "proto/rfc3339.h"
#include "proto/sha1.h"

void rq_shas_init(struct rq_shas *s)
{
    for (int i = 0; i < RQ_NSCRIPTS; i++)
        sha1_hex(rq_scripts[i], strlen(rq_scripts[i]), s->sha[i]);
}

/* --- arguments ---------------------------------------------------------- */

void rq_args_add(struct rq_args *a, const char *s, size_t n)
{
    if (a->n == a->ncap) {
        /* off and alen share one block: off[0..ncap), then alen. */
        int old = a->ncap;
        a->ncap = a->ncap ? a->ncap * 2 : 16;
        a->off = xrealloc(a->off, 2 * (size_t)a->ncap * sizeof(*a->off));
        memmove(a->off + a->ncap, a->off + old, (size_t)a->n * sizeof(*a->alen));
        a->alen = a->off + a->ncap;
    }
    if (a->len + n + 1 > a->cap) {
        while (a->len + n + 1 > a->cap)
            a->cap = a->cap ? a->cap * 2 : 256;
        a->buf = xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, s, n);
    a->buf[a->len + n] = 0;
    a->off[a->n] = a->len;
    a->alen[a->n++] = n;
    a->len += n + 1;
}

void rq_args_adds(struct rq_args *a, const char *s)
{
    rq_args_add(a, s, strlen(s));
}

void rq_args_addll(struct rq_args *a, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    rq_args_add(a, b, (size_t)n);
}

void rq_args_append(struct rq_args *dst, const struct rq_args *src)
{
    for (int i = 0; i < src->n; i++)
        rq_args_add(dst, src->buf + src->off[i], src->alen[i]);
}

void rq_args_free(struct rq_args *a)
{
    free(a->buf);
    free(a->off); /* and alen, in the same block */
    memset(a, 0, sizeof(*a));
}

void rq_args_vectors(const struct rq_args *a, const char **argv, size_t *lens)
{
    for (int i = 0; i < a->n; i++) {
        argv[i] = a->buf + a->off[i];
        lens[i] = a->alen[i];
    }
}

void rq_enqueue_job_args(struct rq_args *a, json_t *norm)
{
    json_t *q = json_object_get(norm, "queue"), *p = json_object_get(norm, "payload");
    json_t *uk = json_object_get(norm, "unique_key");
    rq_args_adds(a, q ? json_string_value(q) : "default");
    rq_args_adds(a, json_string_value(json_object_get(norm, "kind")));
    char *text = p ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    rq_args_adds(a, text ? text : "{}");
    free(text);
    json_t *prio = json_object_get(norm, "priority"), *ma = json_object_get(norm, "max_attempts");
    rq_args_addll(a, prio ? (long long)json_integer_value(prio) : 0);
    rq_args_addll(a, ma ? (long long)json_integer_value(ma) : 5);
    json_t *tmo = json_object_get(norm, "timeout_ms");
    if (tmo)
        rq_args_addll(a, (long long)json_integer_value(tmo));
    else
        rq_args_adds(a, "");
    json_t *at = json_object_get(norm, "run_at_ms"), *delay = json_object_get(norm, "delay_ms");
    char when[32] = "";
    if (at)
        snprintf(when, sizeof(when), "a%lld", (long long)json_integer_value(at));
    else if (delay)
        snprintf(when, sizeof(when), "d%lld", (long long)json_integer_value(delay));
    rq_args_adds(a, when);
    rq_args_adds(a, uk ? json_string_value(uk) : "");
}

/* --- rendering ---------------------------------------------------------- */

enum field_type { F_STR, F_INT, F_JSON, F_TIME, F_NULL };

/* In the order SQL's JOB_JSON builds them (modules/jobs/sql.h). */
static const struct {
    const char *name;
    enum field_type type;
} fields[] = {
    {"id", F_INT},
    {"queue", F_STR},
    {"kind", F_STR},
    {"payload", F_JSON},
    {"status", F_STR},
    {"priority", F_INT},
    {"attempts", F_INT},
    {"max_attempts", F_INT},
    {"timeout_ms", F_INT},
    {"run_at", F_TIME},
    {"progress_percent", F_INT},
    {"current_step", F_STR},
    {"result", F_JSON},
    {"last_error", F_STR},
    {"unique_key", F_STR},
    {"worker_id", F_STR},
    {"lease_until", F_NULL},
    {"created_at", F_TIME},
    {"started_at", F_TIME},
    {"finished_at", F_TIME},
    {"updated_at", F_TIME},
};

static json_t *value(enum field_type t, const char *v, size_t n)
{
    if (!v || !n || t == F_NULL)
        return json_null();
    char tmp[32];
    switch (t) {
    case F_STR:
        return json_stringn(v, n);
    case F_INT:
    case F_TIME: {
        if (n >= sizeof(tmp))
            return json_null();
        memcpy(tmp, v, n);
        tmp[n] = 0;
        char *end;
        long long x = strtoll(tmp, &end, 10);
        if (*end)
            return json_null();
        if (t == F_INT)
            return json_integer(x);
        char ts[40];
        size_t len = rfc3339_format_ms(x, ts, sizeof(ts));
        return json_stringn(ts, len);
    }
    case F_JSON: {
        json_error_t e;
        json_t *j = json_loadb(v, n, JSON_DECODE_ANY, &e);
        return j ? j : json_stringn(v, n);
    }
    default:
        return json_null();
    }
}

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
/* Indices into fields[] of the ones derived below (test_rqueue checks them). */
enum {
    F_IX_STATUS = 4,
    F_IX_PROGRESS = 10,
    F_IX_STARTED = 18,
    F_IX_FINISHED = 19,
    F_IX_UPDATED = 20
};

static bool is(const char *v, size_t n, const char *s)
{
    return v && n == strlen(s) && !memcmp(v, s, n);
}

/* Time fields are decimal ms; a malformed one counts as 0 (shown as null). */
static long long ms_of(const char *v, size_t n)
{
    char tmp[32];
    if (!v || !n || n >= sizeof(tmp))
        return 0;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    return strtoll(tmp, NULL, 10);
}

json_t *rq_job_json(size_t n, const char *const *keys, const size_t *klen, const char *const *vals,
                    const size_t *vlen)
{
    const char *v[NFIELDS] = {0};
    size_t vl[NFIELDS] = {0};
    for (size_t f = 0; f < NFIELDS; f++) {
        size_t fl = strlen(fields[f].name);
        for (size_t i = 0; i < n; i++)
            if (klen[i] == fl && !memcmp(keys[i], fields[f].name, fl)) {
                v[f] = vals[i];
                vl[f] = vlen[i];
                break;
            }
    }
    /* A job that succeeded within the loop turn that read it is written
     * once, with only what cannot be derived (rqueue_lua.c): it started
     * when it finished, was last updated then, and is 100% done. */
    if (is(v[F_IX_STATUS], vl[F_IX_STATUS], "succeeded") && vl[F_IX_FINISHED]) {
        if (!vl[F_IX_STARTED])
            v[F_IX_STARTED] = v[F_IX_FINISHED], vl[F_IX_STARTED] = vl[F_IX_FINISHED];
        if (ms_of(v[F_IX_UPDATED], vl[F_IX_UPDATED]) < ms_of(v[F_IX_FINISHED], vl[F_IX_FINISHED]))
            v[F_IX_UPDATED] = v[F_IX_FINISHED], vl[F_IX_UPDATED] = vl[F_IX_FINISHED];
        if (!vl[F_IX_PROGRESS])
            v[F_IX_PROGRESS] = "100", vl[F_IX_PROGRESS] = 3;
    }
    json_t *o = json_object();
    for (size_t f = 0; f < NFIELDS; f++)
        json_object_set_new(o, fields[f].name, value(fields[f].type, v[f], vl[f]));
    return o;
}

#define RQ_HASH_FIELDS_MAX 64

json_t *rq_job_json_reply(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2 || !r->elements ||
        r->elements > 2 * RQ_HASH_FIELDS_MAX)
        return NULL;
    const char *k[RQ_HASH_FIELDS_MAX], *v[RQ_HASH_FIELDS_MAX];
    size_t kl[RQ_HASH_FIELDS_MAX], vl[RQ_HASH_FIELDS_MAX];
    size_t n = r->elements / 2;
    for (size_t i = 0; i < n; i++) {
        const redisReply *a = r->element[2 * i], *b = r->element[2 * i + 1];
        if (a->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_STRING)
            return NULL;
        k[i] = a->str, kl[i] = a->len, v[i] = b->str, vl[i] = b->len;
    }
    return rq_job_json(n, k, kl, v, vl);
}

/* --- EVALSHA ------------------------------------------------------------ */

static void submit(struct redis_client *cl, struct rq_call *c);

static void on_reply(struct redis_cmd *cmd, redisReply *reply, const char *err)
{
    struct rq_call *c = container_of(cmd, struct rq_call, cmd);
    if (err && !c->fell_back && !strncmp(err, "NOSCRIPT", 8)) {
        c->fell_back = true; /* EVAL also caches it for the next EVALSHA */
        submit(cmd->client, c);
        return;
    }
    if (!c->keep_args)
        rq_args_free(&c->args);
    c->fn(c, reply, err);
}

/* EVALSHA sha 0 args... (or EVAL body 0 args...), encoded straight from
 * the argument buffer into the client's output: no vectors, no copies. */
static void submit(struct redis_client *cl, struct rq_call *c)
{
    const struct rq_args *a = &c->args;
    const char *verb = c->fell_back ? "EVAL" : "EVALSHA";
    const char *script = c->fell_back ? rq_scripts[c->script] : c->shas->sha[c->script];
    size_t script_len = c->fell_back ? strlen(script) : 40;
    size_t n = resp_array_size(a->n + 3) + resp_bulk_size(strlen(verb)) +
               resp_bulk_size(script_len) + resp_bulk_size(1);
    for (int i = 0; i < a->n; i++)
        n += resp_bulk_size(a->alen[i]);
    c->cmd.fn = on_reply;
    char *room = redis_submit_begin(cl, &c->cmd, n);
    if (!room)
        return;
    char *p = resp_array_write(room, a->n + 3);
    p = resp_bulk_write(p, verb, strlen(verb));
    p = resp_bulk_write(p, script, script_len);
    p = resp_bulk_write(p, "0", 1);
    for (int i = 0; i < a->n; i++)
        p = resp_bulk_write(p, a->buf + a->off[i], a->alen[i]);
    redis_submit_end(cl, &c->cmd, room);
}

void rq_eval(struct redis_client *cl, struct rq_call *c, const struct rq_shas *shas, int script,
             rq_fn fn)
{
    c->fn = fn;
    c->shas = shas;
    c->script = script;
    c->fell_back = false;
    submit(cl, c);
}
