/*
 * rqueue.h - the Redis queue backend's shared parts (--queue-backend=redis):
 * its scripts, how their arguments are built, how a job hash is shown as
 * JSON, and running a script on a ring client by EVALSHA.
 *
 * The worker part is modules/queue/redis_worker*.c, the API part (which
 * the CLI runs too) modules/queue/redis_api.c. Keys and guarantees are
 * described at the top of rqueue_lua.c.
 */
#ifndef TRIREME_MODULES_RQUEUE_H
#define TRIREME_MODULES_RQUEUE_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernel/redis.h"

enum {
    RQ_ENQUEUE,
    RQ_START,
    RQ_COMPLETE,
    RQ_HEARTBEAT,
    RQ_PROMOTE,
    RQ_CANCEL,
    RQ_RETRY,
    RQ_LIST,
    RQ_PROGRESS,
    RQ_MARK,
    RQ_CONSUMERS,
    RQ_COUNTS,
    RQ_GET_MANY,
    RQ_PULL_ENQUEUE, /* pull kinds: modules/queue/redis_pull_lua.c */
    RQ_PULL_CLAIM,
    RQ_PULL_BACK,
    RQ_PULL_REPORT,
    RQ_PULL_FINISH,
    RQ_PULL_DUE,
    RQ_RESERVE_ID, /* uploads: redis_api.c, redis_files_sweep.c in modules/queue */
    RQ_ENQUEUE_AS,
    RQ_FILES_GONE,
    RQ_CHANGES, /* GET /v1/events: modules/queue/redis_api.c */
    RQ_NSCRIPTS
};

extern const char *const rq_scripts[RQ_NSCRIPTS];
extern const char rq_lua_pull_enqueue[], rq_lua_pull_claim[], rq_lua_pull_back[],
    rq_lua_pull_report[], rq_lua_pull_finish[], rq_lua_pull_due[], rq_lua_reserve_id[],
    rq_lua_enqueue_as[], rq_lua_files_gone[], rq_lua_changes[];

#define RQ_GROUP       "trireme"
#define RQ_PREFIX      "trireme:"
#define RQ_LIST_BUDGET 10000 /* index entries one list call may look at */
/* Job ids never fall below the server's clock in ms times this (a string:
 * it is spliced into the enqueue script): ids stay below 2^53 until the
 * year 2255 and unique across a loss of Redis' data while fewer than this
 * many jobs per ms are enqueued on average (docs/reliability.md). */
#define RQ_ID_PER_MS "1000"

/*
 * The change feed of GET /v1/events, kept only while someone listens: the
 * changes script (rq_lua_changes) holds the key events:on (its value: when
 * this listening period began, in microseconds) with a TTL of
 * QUEUE_CHANGES_LEASE_MS. While it exists, every script that changes a job
 * puts the job's id in the sorted set changes, scored by the script's
 * time in microseconds (TIME: scripts run one at a time, so later scripts
 * score higher; a job changed again moves to its latest change). With
 * nobody listening a script pays one EXISTS, and a changed job one test
 * of a local. hset() is HSET on a job's hash that records the change;
 * changed(id) records one where a script writes the hash itself. The
 * script's head defines P and t (TIME).
 */
#define RQ_LUA_EVENTS                                                                              \
    "local EV = redis.call('EXISTS', P .. 'events:on') == 1\n"                                     \
    "local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"                                    \
    "local function changed(id)\n"                                                                 \
    "  if EV then redis.call('ZADD', P .. 'changes', nowus, id) end\n"                             \
    "end\n"                                                                                        \
    "local function hset(k, ...)\n"                                                                \
    "  if EV then redis.call('ZADD', P .. 'changes', nowus, string.sub(k, #P + 5)) end\n"          \
    "  return redis.call('HSET', k, ...)\n"                                                        \
    "end\n"

/* A new job's id (a string) into the script's local id: the next of seq
 * (its key in local seq), never below the clock floor (local floor). */
#define RQ_LUA_NEXT_ID                                                                             \
    "    id = redis.call('INCR', seq)\n"                                                           \
    "    if id < floor then id = floor; redis.call('SET', seq, string.format('%d', id)) end\n"     \
    "    id = string.format('%d', id)\n"

/*
 * The body of an enqueue script, shared by the plain one (rqueue_lua.c)
 * and the one that also knows pull kinds (redis_pull_lua.c), which differ
 * only in the stride of ARGV per job, where a pull job goes and the mark
 * on its hash; new_id sets a new job's id (RQ_LUA_NEXT_ID, or an id
 * reserved before: rq_lua_enqueue_as), xadd_extra adds fields to its
 * stream entry (f = 1: it has uploaded files). ARGV: n, then per job queue kind
 * payload priority max_attempts timeout_ms when unique_key [pull]; when is
 * '' (now), 'd<ms>' (delay) or 'a<unix ms>'. Returns id1, created1, id2,
 * ... The script's head defines P and now.
 */
#define RQ_LUA_ENQUEUE(stride, pull_decl, route_pull, mark_pull, new_id, xadd_extra)               \
    "local out, woke, seq, floor = {}, false, P .. 'seq', now * " RQ_ID_PER_MS "\n"                \
    "local named = {}\n"                                                                           \
    "for i = 0, tonumber(ARGV[1]) - 1 do\n"                                                        \
    "  local b = 1 + i * " stride "\n"                                                             \
    "  local q, uk, at = ARGV[b + 1], ARGV[b + 8], ARGV[b + 7]\n" pull_decl                        \
    "  local id, created = nil, 0\n"                                                               \
    "  if uk ~= '' then\n"                                                                         \
    "    local old = redis.call('GET', P .. 'uniq:' .. uk)\n"                                      \
    "    if old and redis.call('EXISTS', P .. 'job:' .. old) == 1 then id = old end\n"             \
    "  end\n"                                                                                      \
    "  if not id then\n" new_id "    created = 1\n"                                                \
    "    local due, c = now, string.sub(at, 1, 1)\n"                                               \
    "    if c == 'd' then due = now + tonumber(string.sub(at, 2))\n"                               \
    "    elseif c == 'a' then due = tonumber(string.sub(at, 2)) end\n"                             \
    "    local f = ''\n"                                                                           \
    "    " route_pull "if due > now then redis.call('ZADD', P .. 'delayed:' .. q, due, id)\n"      \
    "    else\n"                                                                                   \
    "      f = redis.call('XADD', P .. 'q:' .. q, '*', 'id', id, 'j', '0 ' .. ARGV[b + 5] .. ' ' " \
    "..\n"                                                                                         \
    "        ARGV[b + 6] .. ' ' .. ARGV[b + 2] .. ' ' .. ARGV[b + 3]" xadd_extra ")\n"             \
    "      f = (uk ~= '' and 'P' or 'p') .. f\n"                                                   \
    "    end\n"                                                                                    \
    "    redis.call('HSET', P .. 'job:' .. id, 'fence', f, 'id', id, 'queue', q, 'kind',\n"        \
    "      ARGV[b + 2], 'payload', ARGV[b + 3], 'status', 'pending', 'priority', ARGV[b + 4],\n"   \
    "      'attempts', 0, 'max_attempts', ARGV[b + 5], 'timeout_ms', ARGV[b + 6], 'run_at', "      \
    "due,\n"                                                                                       \
    "      'unique_key', uk, 'created_at', now, 'updated_at', now)\n" mark_pull                    \
    "    if uk ~= '' then redis.call('SET', P .. 'uniq:' .. uk, id) end\n"                         \
    "    if EV then changed(id) end\n"                                                             \
    "    redis.call('ZADD', P .. 'jobs', id, id)\n"                                                \
    "    if not named[q] then named[q] = true; redis.call('SADD', P .. 'queues', q) end\n"         \
    "  end\n"                                                                                      \
    "  out[#out + 1] = tonumber(id)\n"                                                             \
    "  out[#out + 1] = created\n"                                                                  \
    "end\n"                                                                                        \
    "if woke then redis.call('PUBLISH', P .. 'pull', '') end\n"                                    \
    "return out\n"

/* The scripts' SHA-1 names, computed once by their owner (a loop struct). */
struct rq_shas {
    char sha[RQ_NSCRIPTS][41];
};
void rq_shas_init(struct rq_shas *s);

/* A growable argument vector: strings copied into one buffer (each
 * followed by a NUL), their offsets and lengths in a second block. */
struct rq_args {
    char *buf;
    size_t len, cap;
    size_t *off, *alen;
    int n, ncap;
};
void rq_args_add(struct rq_args *a, const char *s, size_t n);
void rq_args_adds(struct rq_args *a, const char *s);
void rq_args_addll(struct rq_args *a, long long v);
void rq_args_append(struct rq_args *dst, const struct rq_args *src);
void rq_args_free(struct rq_args *a);
/* Pointer arrays for argv[first..]: valid until the next add. */
void rq_args_vectors(const struct rq_args *a, const char **argv, size_t *lens);

/* The 8 enqueue-script arguments of one job normalized by
 * job_input_normalize (queue, kind, payload, priority, max_attempts,
 * timeout_ms, when, unique_key), defaults filled as the PostgreSQL
 * backend fills them. */
void rq_enqueue_job_args(struct rq_args *a, json_t *norm);

/* A job hash (field/value pairs, as HGETALL answers) as the API shows a
 * job: the same keys as the PostgreSQL backend, timestamps in RFC 3339. */
json_t *rq_job_json(size_t n, const char *const *keys, const size_t *klen, const char *const *vals,
                    const size_t *vlen);
/* The same from an HGETALL-style array reply; NULL when it is not one. */
json_t *rq_job_json_reply(const redisReply *r);

/* One script run on a ring client: EVALSHA, and EVAL when the server does
 * not know the script (restarted, flushed). args are the script's ARGV;
 * the call owns them and frees them after fn. */
struct rq_call;
typedef void (*rq_fn)(struct rq_call *c, redisReply *reply, const char *err);
struct rq_call {
    struct redis_cmd cmd; /* first */
    struct rq_args args;
    rq_fn fn;
    const struct rq_shas *shas;
    int script;
    bool fell_back;
    bool keep_args; /* fn frees args (it may send the call again) */
    void *data;
};
/* Submits c (whose args are filled); fn runs once, then c->args are freed
 * unless keep_args (c itself is the caller's). */
void rq_eval(struct redis_client *cl, struct rq_call *c, const struct rq_shas *shas, int script,
             rq_fn fn);

#endif
