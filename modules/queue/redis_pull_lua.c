/*
 * redis_pull_lua.c - the Redis queue backend's scripts for pull kinds
 * (pull.h), listed in rq_scripts beside the others (rqueue_lua.c explains
 * the job hash and its fence). Keys beyond those (prefix trireme:):
 *
 *   pull:<kind>:<queue>  sorted set by due time (ms): pending pull jobs. The
 *                        worker's streams never hold them, so the built-in
 *                        worker never reads one.
 *   pull-lanes           set of those sorted sets' names (the due check)
 *   pull-leases          sorted set by lease expiry (ms): running pull jobs
 *   channel pull         PUBLISHed when a pull job may have become due
 *
 * A pulled attempt is fenced by the hash's status (running), attempts and
 * worker_id = 'pull:' .. SHA-1 of the attempt's secret (the secret itself
 * is stored nowhere). Expired leases are reaped by every claim and every
 * due check: back to pending with the attempt counted, dead when it was the
 * last (as XAUTOCLAIM + START do for the worker's streams). A cancelled
 * job's id may stay in its sorted set: a claim drops ids whose hash is not
 * pending. Priority is not used on this backend (due time, then id).
 */
#include "modules/rqueue/rqueue.h"

#define LUA_PULL_HEAD                                                                              \
    "local P = 'trireme:'\n"                                                                       \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" RQ_LUA_EVENTS        \
    "local function expire(k, ttl, uk)\n"                                                          \
    "  redis.call('PEXPIRE', k, ttl)\n"                                                            \
    "  if uk and uk ~= '' then redis.call('PEXPIRE', P .. 'uniq:' .. uk, ttl) end\n"               \
    "end\n"                                                                                        \
    "local function lane(kind, q)\n"                                                               \
    "  local z = P .. 'pull:' .. kind .. ':' .. q\n"                                               \
    "  redis.call('SADD', P .. 'pull-lanes', z)\n"                                                 \
    "  return z\n"                                                                                 \
    "end\n" /* pending again: a pull kind's job to its lane, an http kind's (handed                \
             * off by a 202) to its queue's delayed: set, for the built-in worker */               \
    "local function back(id, kind, q, at)\n"                                                       \
    "  if redis.call('HGET', P .. 'job:' .. id, 'pull') == '1' then\n"                             \
    "    redis.call('ZADD', lane(kind, q), at, id)\n"                                              \
    "  else\n"                                                                                     \
    "    redis.call('ZADD', P .. 'delayed:' .. q, at, id)\n"                                       \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function reap(ttl)\n"                                                                   \
    "  local ids = redis.call('ZRANGEBYSCORE', P .. 'pull-leases', '-inf', now, 'LIMIT', 0, "      \
    "1000)\n"                                                                                      \
    "  for _, id in ipairs(ids) do\n"                                                              \
    "    local k = P .. 'job:' .. id\n"                                                            \
    "    local h = redis.call('HMGET', k, 'status', 'attempts', 'max_attempts', 'kind', "          \
    "'queue',\n"                                                                                   \
    "      'unique_key', 'worker_id')\n"                                                           \
    "    if h[1] == 'running' then\n"                                                              \
    "      local err = 'lease expired: worker ' .. (h[7] or '?') .. ' stopped renewing'\n"         \
    "      if tonumber(h[2]) >= tonumber(h[3]) then\n"                                             \
    "        hset(k, 'status', 'dead', 'finished_at', now, 'updated_at', now,\n"                   \
    "          'last_error', err, 'worker_id', '')\n"                                              \
    "        expire(k, ttl, h[6])\n"                                                               \
    "      else\n"                                                                                 \
    "        hset(k, 'status', 'pending', 'run_at', now, 'updated_at', now,\n"                     \
    "          'last_error', err, 'worker_id', '')\n"                                              \
    "        back(id, h[4], h[5], now)\n"                                                          \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  if #ids > 0 then redis.call('ZREM', P .. 'pull-leases', unpack(ids)) end\n"                 \
    "  return #ids\n"                                                                              \
    "end\n"

/* RQ_LUA_ENQUEUE with a ninth argument per job: '1' for a pull kind, whose
 * job waits in its lane (and wakes waiting claims) instead of a stream. */
#define LUA_PULL_ENQUEUE(new_id, xadd_extra, mark_extra)                                           \
    RQ_LUA_ENQUEUE(                                                                                \
        "9", "  local pull = ARGV[b + 9] == '1'\n",                                                \
        "if pull then\n"                                                                           \
        "      redis.call('ZADD', lane(ARGV[b + 2], q), due, id)\n"                                \
        "      woke = woke or due <= now\n"                                                        \
        "    else",                                                                                \
        "    if pull then redis.call('HSET', P .. 'job:' .. id, 'pull', '1') end\n" mark_extra,    \
        new_id, xadd_extra)

const char rq_lua_pull_enqueue[] = LUA_PULL_HEAD LUA_PULL_ENQUEUE(RQ_LUA_NEXT_ID, "", "");

/* The same for one job whose id was reserved by rq_lua_reserve_id, the
 * last argument (an upload's: its files were attached to the id first),
 * marked as having files (hash field files, entry field f), so only such
 * jobs make a worker look for files. Sent again after a lost connection,
 * it finds the job made and changes nothing. */
const char rq_lua_enqueue_as[] = LUA_PULL_HEAD LUA_PULL_ENQUEUE(
    "    id = ARGV[#ARGV]\n"
    "    if redis.call('EXISTS', P .. 'job:' .. id) == 1 then return {tonumber(id), 1} end\n",
    ", 'f', '1'", "    redis.call('HSET', P .. 'job:' .. id, 'files', '1')\n");

/* ARGV: lease ms, ttl ms, max, nkinds, kinds..., nqueues, queues...,
 * secrets... (max of them). Returns per job: id kind queue attempt
 * max_attempts payload secret lease_until_ms. */
const char rq_lua_pull_claim[] = LUA_PULL_HEAD
    "local lease, ttl, max = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])\n"
    "reap(ttl)\n"
    "local nk = tonumber(ARGV[4])\n"
    "local nq = tonumber(ARGV[5 + nk])\n"
    "local sec = 6 + nk + nq\n"
    "local out, taken = {}, 0\n"
    "for i = 1, nk do\n"
    "  for j = 1, nq do\n"
    "    if taken >= max then break end\n"
    "    local kind, q = ARGV[4 + i], ARGV[5 + nk + j]\n"
    "    local z = P .. 'pull:' .. kind .. ':' .. q\n"
    "    local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, max - taken)\n"
    "    if #ids > 0 then redis.call('ZREM', z, unpack(ids)) end\n"
    "    for _, id in ipairs(ids) do\n"
    "      local k = P .. 'job:' .. id\n"
    "      local h = redis.call('HMGET', k, 'status', 'attempts', 'max_attempts', 'payload')\n"
    "      if h[1] == 'pending' then\n"
    "        local att, s = tonumber(h[2]) + 1, ARGV[sec + taken]\n"
    "        hset(k, 'status', 'running', 'attempts', att, 'worker_id',\n"
    "          'pull:' .. redis.sha1hex(s), 'started_at', now, 'updated_at', now,\n"
    "          'progress_percent', '', 'current_step', '')\n"
    "        redis.call('ZADD', P .. 'pull-leases', now + lease, id)\n"
    "        local n = #out\n"
    "        out[n + 1] = id; out[n + 2] = kind; out[n + 3] = q; out[n + 4] = att\n"
    "        out[n + 5] = h[3]; out[n + 6] = h[4]; out[n + 7] = s; out[n + 8] = now + lease\n"
    "        taken = taken + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* A claim nobody wants any more. ARGV: n, then per job id attempt secret. */
const char rq_lua_pull_back[] = LUA_PULL_HEAD
    "for i = 0, tonumber(ARGV[1]) - 1 do\n"
    "  local id, att, s = ARGV[2 + i * 3], ARGV[3 + i * 3], ARGV[4 + i * 3]\n"
    "  local k = P .. 'job:' .. id\n"
    "  local h = redis.call('HMGET', k, 'status', 'worker_id', 'attempts', 'kind', 'queue')\n"
    "  if h[1] == 'running' and h[2] == 'pull:' .. redis.sha1hex(s) and h[3] == att then\n"
    "    hset(k, 'status', 'pending', 'attempts', math.max(tonumber(att) - 1, 0),\n"
    "      'worker_id', '', 'run_at', now, 'updated_at', now)\n"
    "    redis.call('ZREM', P .. 'pull-leases', id)\n"
    "    redis.call('ZADD', lane(h[4], h[5]), now, id)\n"
    "  end\n"
    "end\n"
    "redis.call('PUBLISH', P .. 'pull', '')\n"
    "return 1\n";

/* One callback: id, secret, attempt, what (progress heartbeat complete
 * fail), a1, a2, a3, ttl ms. progress: a1 percent ('' keep), a2 step (''
 * keep); heartbeat: a1 lease ms; complete: a1 result JSON ('' none); fail:
 * a1 error, a2 retry '1'/'0', a3 delay ms ('' the worker's backoff).
 * Returns {1, status, lease ms or ''}, {0} (stale token), {-1} (no job),
 * {-2} (stale, but this attempt still runs under a built-in worker: an
 * http kind's 202 whose hand-off is not written yet). A job of an http kind
 * handed off by a 202 is fenced here like a pulled one; failed or reaped,
 * it goes back to its queue's delayed: set, not to a lane. A retry due at
 * once sets woke: the script PUBLISHes once for all. */
#define LUA_PULL_REPORT1                                                                           \
    "local woke = false\n"                                                                         \
    "local function report1(id, secret, attv, what, a1, a2, a3, ttl)\n"                            \
    "  local k = P .. 'job:' .. id\n"                                                              \
    "  local h = redis.call('HMGET', k, 'status', 'worker_id', 'attempts', 'max_attempts',\n"      \
    "    'kind', 'queue', 'unique_key')\n"                                                         \
    "  if not h[1] then return {-1} end\n"                                                         \
    "  if h[1] ~= 'running' or h[2] ~= 'pull:' .. redis.sha1hex(secret) or h[3] ~= attv then\n"    \
    "    if h[1] == 'running' and h[3] == attv and string.sub(h[2] or '', 1, 5) ~= 'pull:' then\n" \
    "      return {-2}\n"                                                                          \
    "    end\n"                                                                                    \
    "    return {0}\n"                                                                             \
    "  end\n"                                                                                      \
    "  local L = P .. 'pull-leases'\n"                                                             \
    "  local att, maxa = tonumber(h[3]), tonumber(h[4])\n"                                         \
    "  if what == 'progress' then\n"                                                               \
    "    if a1 ~= '' then hset(k, 'progress_percent', a1) end\n"                                   \
    "    if a2 ~= '' then hset(k, 'current_step', a2) end\n"                                       \
    "    hset(k, 'updated_at', now)\n"                                                             \
    "    return {1, 'running', redis.call('ZSCORE', L, id) or ''}\n"                               \
    "  elseif what == 'heartbeat' then\n"                                                          \
    "    local until_ms = now + tonumber(a1)\n"                                                    \
    "    redis.call('ZADD', L, until_ms, id)\n"                                                    \
    "    hset(k, 'updated_at', now)\n"                                                             \
    "    return {1, 'running', tostring(until_ms)}\n"                                              \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', L, id)\n"                                                                \
    "  if what == 'complete' then\n"                                                               \
    "    hset(k, 'status', 'succeeded', 'progress_percent', 100, 'finished_at',\n"                 \
    "      now, 'updated_at', now)\n"                                                              \
    "    if a1 ~= '' then hset(k, 'result', a1) end\n"                                             \
    "    expire(k, ttl, h[7])\n"                                                                   \
    "    return {1, 'succeeded', ''}\n"                                                            \
    "  end\n"                                                                                      \
    "  local st = 'pending'\n"                                                                     \
    "  if a2 ~= '1' then st = 'failed' elseif att >= maxa then st = 'dead' end\n"                  \
    "  if st == 'pending' then\n"                                                                  \
    "    local d = a3 ~= '' and tonumber(a3) or math.min(1000 * 2 ^ (att - 1), 3600000)\n"         \
    "    hset(k, 'status', 'pending', 'last_error', a1, 'worker_id', '',\n"                        \
    "      'run_at', now + d, 'updated_at', now)\n"                                                \
    "    back(id, h[5], h[6], now + d)\n"                                                          \
    "    woke = woke or d <= 0\n"                                                                  \
    "  else\n"                                                                                     \
    "    hset(k, 'status', st, 'last_error', a1, 'worker_id', '', 'finished_at',\n"                \
    "      now, 'updated_at', now)\n"                                                              \
    "    expire(k, ttl, h[7])\n"                                                                   \
    "  end\n"                                                                                      \
    "  return {1, st, ''}\n"                                                                       \
    "end\n"

/* ARGV: report1's, in its order. Returns report1's answer. */
const char rq_lua_pull_report[] = LUA_PULL_HEAD LUA_PULL_REPORT1
    "local r = report1(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])\n"
    "if woke then redis.call('PUBLISH', P .. 'pull', '') end\n"
    "return r\n";

/* Many complete/fail reports (POST /v1/outcomes). ARGV: ttl ms, n, then per
 * report id, secret, attempt, what, a1, a2, a3. Returns per report its
 * answer's code and status ('' unless the code is 1). */
const char rq_lua_pull_finish[] = LUA_PULL_HEAD LUA_PULL_REPORT1
    "local ttl, out = ARGV[1], {}\n"
    "for i = 0, tonumber(ARGV[2]) - 1 do\n"
    "  local b = 3 + i * 7\n"
    "  local r = report1(ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],\n"
    "    ARGV[b + 5], ARGV[b + 6], ttl)\n"
    "  out[i * 2 + 1] = r[1]\n"
    "  out[i * 2 + 2] = r[2] or ''\n"
    "end\n"
    "if woke then redis.call('PUBLISH', P .. 'pull', '') end\n"
    "return out\n";

/* Waiting claims: reap expired leases, then say whether any pull job is
 * due. ARGV: ttl ms. Returns 1 or 0. */
const char rq_lua_pull_due[] = LUA_PULL_HEAD
    "local reaped = reap(ARGV[1])\n"
    "if reaped > 0 then return 1 end\n"
    "for _, z in ipairs(redis.call('SMEMBERS', P .. 'pull-lanes')) do\n"
    "  if #redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1) > 0 then return 1 end\n"
    "end\n"
    "return 0\n";
