/*
 * rqueue_lua.c - the Redis queue backend's scripts, one per state change.
 *
 * Every change of a job's state is one Lua script, so it is atomic on the
 * server and one round trip for many jobs (the worker starts, completes and
 * renews a whole batch per call). Time is the server's (TIME), never a
 * worker's clock. Keys (prefix trireme:):
 *
 *   seq               INCR: job ids, integers like the PostgreSQL backend's,
 *                     never below the server's clock in ms x 1000, so ids
 *                     do not repeat when Redis loses its data (restarted
 *                     without persistence, or an older snapshot loaded):
 *                     docs/reliability.md. Ids are kept as strings in the
 *                     scripts (Lua would print a 16-digit number as 1.7e+15).
 *   job:<id>          hash: the job (status, attempts, payload, result, ...);
 *                     PEXPIREd by --result-ttl once the job has finished,
 *                     except a success COMPLETE records in its common case
 *                     (below): that id goes to done:<due> instead
 *   done:<due>        list of ids of succeeded jobs whose hashes are due for
 *                     deletion at <due> (ms, a whole second at least
 *                     --result-ttl after they finished); done is the sorted
 *                     set of those <due>s. One RPUSH per COMPLETE call instead
 *                     of one PEXPIRE per job: volatile keys cost Redis about
 *                     1.3 us per job (the expires table), a fifth of the whole
 *                     drain. PROMOTE deletes them when due, so a result
 *                     outlives its ttl by under a second and a promote tick;
 *                     a succeeded job is final (retry takes only dead, failed
 *                     or cancelled ones), so nothing listed comes back to life
 *   q:<queue>         Stream, consumer group "trireme": one entry per
 *                     delivery, carrying what a worker needs to run it: id,
 *                     and j = "<attempts so far> <max_attempts> <timeout_ms>
 *                     <kind> <payload>" (one field: each costs Redis per
 *                     entry read), and e = the head of the previous
 *                     attempt's last_error (retries only: job_run's
 *                     prev_error), f = 1 when the job came with uploaded files
 *                     (hash field files; the files are in PostgreSQL);
 *                     XACKed when done, trimmed by PROMOTE
 *   delayed:<queue>   sorted set by due time (ms): run_at/delay and retries
 *   jobs              sorted set of every id (for listing; expired ids are
 *                     trimmed lazily)
 *   uniq:<key>        unique_key -> id, while that job's hash exists
 *   queues            set of every queue a job was enqueued to (counts)
 *
 * The hash's `fence` names who may change the job, in one field so a
 * fenced write costs one HGET (an HMGET of the fields it sums up cost the
 * scripts more than the writes): '' nobody (finished, cancelled, or waiting
 * in delayed:), p<entry> pending under that stream entry, r<entry>/<attempt>
 * /<worker> running that attempt; P and R when the job has a unique_key
 * (so finishing it knows whether uniq: must expire too without reading).
 * Any other entry of the job is stale and only acknowledged. A worker runs
 * a fresh delivery at once and records the start (MARK) at the end of that
 * loop turn, or not at all when the job finished within the turn: then
 * COMPLETE records start and outcome together (a noop job costs one script
 * line, not two), and only what the API cannot derive: status, result,
 * finished_at, attempts, worker_id (rq_job_json shows a succeeded job's
 * missing started_at and older updated_at as its finished_at, and progress
 * 100; every hash field written costs Redis about half a microsecond). An
 * entry taken over by XAUTOCLAIM (its worker died) is started by START,
 * which counts the lost attempt. Completions are fenced by the fence, so a
 * stale attempt can never overwrite a newer one. status, attempts and
 * worker_id are kept as well: the API shows them.
 * Scripts build key names themselves: a single Redis, not Redis Cluster.
 */
#include "modules/kinds/job.h"
#include "modules/rqueue/rqueue.h"

#define LUA_NOW                                                                                    \
    "local P = 'trireme:'\n"                                                                       \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local nows = tostring(now)\n" /* as an argument: not converted per call */                    \
        RQ_LUA_EVENTS

/* Reading a fence f ('' when absent): pending or running under entry e;
 * held(f, e, att, me) is running that attempt by that worker; uk(f) says the
 * job has a unique key; fence(c, uk, rest) builds one; old_fence(k) is the
 * fence of a hash written before the field existed (or '' when it is gone),
 * so jobs in flight across an upgrade are still run and completed. */
#define LUA_FENCE                                                                                  \
    "local function pend(f, e)\n"                                                                  \
    "  local c = string.byte(f)\n"                                                                 \
    "  return (c == 112 or c == 80) and string.sub(f, 2) == e\n"                                   \
    "end\n"                                                                                        \
    "local function run(f, e)\n"                                                                   \
    "  local c = string.byte(f)\n"                                                                 \
    "  return (c == 114 or c == 82) and string.sub(f, 2, #e + 2) == e .. '/'\n"                    \
    "end\n"                                                                                        \
    "local function held(f, e, att, me)\n"                                                         \
    "  local c = string.byte(f)\n"                                                                 \
    "  return (c == 114 or c == 82) and string.sub(f, 2) == e .. '/' .. att .. '/' .. me\n"        \
    "end\n"                                                                                        \
    "local function uk(f)\n"                                                                       \
    "  local c = string.byte(f)\n"                                                                 \
    "  return c == 80 or c == 82\n"                                                                \
    "end\n"                                                                                        \
    "local function fence(c, u, rest)\n"                                                           \
    "  if u then c = string.upper(c) end\n"                                                        \
    "  return c .. rest\n"                                                                         \
    "end\n"                                                                                        \
    "local function old_fence(k)\n" /* a hash written before fence was (entry, status ...) */      \
    "  local h = redis.call('HMGET', k, 'status', 'entry', 'attempts', 'worker_id', "              \
    "'unique_key')\n"                                                                              \
    "  local u = h[5] and h[5] ~= ''\n"                                                            \
    "  if not h[2] or h[2] == '' then return '' end\n"                                             \
    "  if h[1] == 'pending' then return fence('p', u, h[2]) end\n"                                 \
    "  if h[1] == 'running' then\n"                                                                \
    "    return fence('r', u, h[2] .. '/' .. (h[3] or '') .. '/' .. (h[4] or ''))\n"               \
    "  end\n"                                                                                      \
    "  return ''\n"                                                                                \
    "end\n"

/* Finish a job's hash: it (and its unique key) expire after the TTL. */
#define LUA_EXPIRE                                                                                 \
    "local function expire(k, ttl, uk)\n"                                                          \
    "  redis.call('PEXPIRE', k, ttl)\n"                                                            \
    "  if uk and uk ~= '' then redis.call('PEXPIRE', P .. 'uniq:' .. uk, ttl) end\n"               \
    "end\n"

/* A new delivery of job id from its hash; the hash records it. */
#define LUA_DELIVER                                                                                \
    "local function deliver(id, q)\n"                                                              \
    "  local k = P .. 'job:' .. id\n"                                                              \
    "  local h = redis.call('HMGET', k, 'kind', 'payload', 'attempts', 'max_attempts',\n"          \
    "                       'timeout_ms', 'unique_key', 'pull', 'last_error', 'files')\n"          \
    "  if not h[1] then return end\n"                                                              \
    "  if h[7] == '1' then\n" /* a pull kind's: its lane (redis_pull_lua.c) */                     \
    "    local z = P .. 'pull:' .. h[1] .. ':' .. q\n"                                             \
    "    redis.call('SADD', P .. 'pull-lanes', z)\n"                                               \
    "    redis.call('ZADD', z, now, id)\n"                                                         \
    "    redis.call('PUBLISH', P .. 'pull', '')\n"                                                 \
    "    return\n"                                                                                 \
    "  end\n"                                                                                      \
    "  local j = h[3] .. ' ' .. h[4] .. ' ' .. (h[5] or '') .. ' ' .. h[1] .. ' ' .. h[2]\n"       \
    "  local a = {P .. 'q:' .. q, '*', 'id', id, 'j', j}\n"                                        \
    "  if h[8] and h[8] ~= '' then\n" /* the head of the previous attempt's error */               \
    "    a[7] = 'e'; a[8] = string.sub(h[8], 1, " JOB_PREV_ERROR_HEAD_S ")\n"                      \
    "  end\n"                                                                                      \
    "  if h[9] == '1' then a[#a + 1] = 'f'; a[#a + 1] = '1' end\n" /* uploaded files */            \
    "  local e = redis.call('XADD', unpack(a))\n"                                                  \
    "  redis.call('HSET', k, 'fence', fence('p', h[6] and h[6] ~= '', e))\n"                       \
    "end\n"

/* Acks gathered per stream, sent as one XACK each. Entries are not
 * XDELed one by one (that costs more than the rest of a job's bookkeeping):
 * PROMOTE trims each stream below its oldest unacknowledged entry. */
#define LUA_ACKS                                                                                   \
    "local acks = {}\n"                                                                            \
    "local function ack(q, e)\n"                                                                   \
    "  local l = acks[q]\n"                                                                        \
    "  if not l then l = {}; acks[q] = l end\n"                                                    \
    "  l[#l + 1] = e\n"                                                                            \
    "end\n"                                                                                        \
    "local function flush_acks()\n"                                                                \
    "  for q, l in pairs(acks) do\n"                                                               \
    "    for i = 1, #l, 500 do\n"                                                                  \
    "      local part = {unpack(l, i, math.min(i + 499, #l))}\n"                                   \
    "      redis.call('XACK', P .. 'q:' .. q, 'trireme', unpack(part))\n"                          \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"

/* See RQ_LUA_ENQUEUE; no pull kinds here. */
static const char lua_enqueue[] = LUA_NOW RQ_LUA_ENQUEUE("8", "", "", "", RQ_LUA_NEXT_ID, "");

/* An id for a job enqueued later by rq_lua_enqueue_as: an upload's, whose
 * files are attached to the id before the job exists (redis_api.c). */
const char rq_lua_reserve_id[] = LUA_NOW "local seq, floor, id = P .. 'seq', now * " RQ_ID_PER_MS
                                         ", nil\n" RQ_LUA_NEXT_ID "return id\n";

/* Of the ids in ARGV[2..] (jobs that files were attached to), those whose
 * hash is gone (expired after --result-ttl, or never made: the enqueue
 * after the reservation failed) and that were reserved at least ARGV[1]
 * ms ago: ids are never below the clock in ms x RQ_ID_PER_MS when they
 * are made, so a smaller id is older, and an upload between its
 * reservation and its enqueue is never taken for a lost one. */
const char rq_lua_files_gone[] =
    LUA_NOW "local cut = (now - tonumber(ARGV[1])) * " RQ_ID_PER_MS "\n"
            "local out = {}\n"
            "for i = 2, #ARGV do\n"
            "  local id = ARGV[i]\n"
            "  local n = tonumber(id)\n"
            "  if n and n < cut and redis.call('EXISTS', P .. 'job:' .. id) == 0 then\n"
            "    out[#out + 1] = id\n"
            "  end\n"
            "end\n"
            "return out\n";

/* The change feed (RQ_LUA_EVENTS). ARGV: the cursor after which to read
 * (its microseconds and id; '' '': none, from now), the limit, the lease
 * in ms, how long changes are kept in s. Keeps the feed recording for the
 * lease (a new listening period when it had lapsed), drops changes older
 * than kept, and returns now, the period's start, then per change after
 * the cursor, oldest first: its score, id and the job's hash (HGETALL).
 * Ids are of one length (never below the clock in ms x RQ_ID_PER_MS), so
 * members of one score sort as their ids do. A job whose hash is gone
 * (expired, deleted) leaves the feed. No change can become visible behind
 * a cursor already read: scripts run one at a time, later ones later. */
const char rq_lua_changes[] =
    "local P = 'trireme:'\n"
    "local t = redis.call('TIME')\n"
    "local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local Z = P .. 'changes'\n"
    "local since = redis.call('GET', P .. 'events:on') or string.format('%d', nowus)\n"
    "redis.call('SET', P .. 'events:on', since, 'PX', ARGV[4])\n"
    "redis.call('ZREMRANGEBYSCORE', Z, '-inf',\n"
    "  '(' .. string.format('%d', nowus - tonumber(ARGV[5]) * 1000000))\n"
    "local out, limit, n = {string.format('%d', nowus), since}, tonumber(ARGV[3]), 0\n"
    "local function add(score, id)\n"
    "  local h = redis.call('HGETALL', P .. 'job:' .. id)\n"
    "  if #h == 0 then redis.call('ZREM', Z, id); return end\n"
    "  out[#out + 1] = score; out[#out + 1] = id; out[#out + 1] = h\n"
    "  n = n + 1\n"
    "end\n"
    "local a, b = ARGV[1], ARGV[2]\n"
    "if a ~= '' then\n"
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', Z, a, a)) do\n"
    "    if n >= limit then break end\n"
    "    if #id > #b or (#id == #b and id > b) then add(a, id) end\n"
    "  end\n"
    "  if n < limit then\n"
    "    local r = redis.call('ZRANGEBYSCORE', Z, '(' .. a, '+inf', 'WITHSCORES', 'LIMIT', 0,\n"
    "      limit - n)\n"
    "    for i = 1, #r, 2 do add(string.format('%d', tonumber(r[i + 1])), r[i]) end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Entries XAUTOCLAIMed from a dead consumer. ARGV: worker id, ttl ms, n,
 * then per delivery queue entry job-id. Its lost attempt counts (dead when
 * it was the last). Returns per started job: id, kind, payload, attempt,
 * max_attempts, timeout_ms ('' = the worker's default), files (1: it came
 * with uploaded files). */
static const char lua_start[] = LUA_NOW LUA_EXPIRE LUA_ACKS LUA_FENCE
    "local me, ttl, out = ARGV[1], tonumber(ARGV[2]), {}\n"
    "for i = 0, tonumber(ARGV[3]) - 1 do\n"
    "  local q, e, id = ARGV[4 + i * 3], ARGV[5 + i * 3], ARGV[6 + i * 3]\n"
    "  local k = P .. 'job:' .. id\n"
    "  local h = redis.call('HMGET', k, 'fence', 'attempts', 'max_attempts', 'kind', 'payload',\n"
    "                       'timeout_ms', 'unique_key', 'files')\n"
    "  local f = h[1] or old_fence(k)\n"
    "  local p, r = pend(f, e), run(f, e)\n"
    "  if p or r then\n"
    "    local att, maxa = tonumber(h[2]), tonumber(h[3])\n"
    "    if r and att >= maxa then\n"
    "      hset(k, 'status', 'dead', 'finished_at', now, 'updated_at', now,\n"
    "        'last_error', 'lease expired: its worker stopped renewing it (crashed or hung)',\n"
    "        'fence', '')\n"
    "      expire(k, ttl, h[7])\n"
    "      ack(q, e)\n"
    "    else\n"
    "      att = att + 1\n"
    "      hset(k, 'status', 'running', 'attempts', att, 'worker_id', me,\n"
    "        'fence', fence('r', uk(f), e .. '/' .. att .. '/' .. me), 'started_at', now,\n"
    "        'updated_at', now)\n"
    "      local n = #out\n"
    "      out[n + 1] = id; out[n + 2] = h[4]; out[n + 3] = h[5]; out[n + 4] = att\n"
    "      out[n + 5] = maxa; out[n + 6] = h[6]; out[n + 7] = h[8] == '1' and 1 or 0\n"
    "    end\n"
    "  else\n"
    "    ack(q, e)\n" /* finished, cancelled, expired or re-delivered: stale */
    "  end\n"
    "end\n"
    "flush_acks()\n"
    "return out\n";

/* Fresh deliveries still running at the end of the loop turn that read
 * them. ARGV: worker id, n, then per job id entry attempt. Idempotent (it
 * may be sent again after a lost connection). Returns the ids not held
 * (cancelled or re-delivered meanwhile): their runs stop. */
static const char lua_mark[] =
    LUA_NOW LUA_FENCE "local me, refused = ARGV[1], {}\n"
                      "for i = 0, tonumber(ARGV[2]) - 1 do\n"
                      "  local id, e, att = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]\n"
                      "  local k = P .. 'job:' .. id\n"
                      "  local f = redis.call('HGET', k, 'fence') or old_fence(k)\n"
                      "  if pend(f, e) then\n"
                      "    hset(k, 'status', 'running', 'attempts', att, 'worker_id',\n"
                      "      me, 'fence', fence('r', uk(f), e .. '/' .. att .. '/' .. me),\n"
                      "      'started_at', now, 'updated_at', now)\n"
                      "  elseif not held(f, e, att, me) then\n"
                      "    refused[#refused + 1] = id\n"
                      "  end\n"
                      "end\n"
                      "return refused\n";

/* ARGV: worker id, ttl ms, n, then per job id queue entry attempt outcome
 * data delay_ms. A job still pending under this entry was never marked
 * started (it ended within the turn that read it, or the MARK was lost with
 * a connection): it is held, and start and outcome are written together.
 * outcome: ok (data = result JSON), fail (data = error;
 * retried after delay_ms unless it was the last attempt), perm (failed,
 * no retry), back (handed back: pending again at once, attempt not
 * counted), defer (--kind-limits: pending again after delay_ms, attempt not
 * counted), drop (a run this worker lost, to cancellation or a takeover:
 * its entry is acknowledged unless someone runs the job under it), handoff
 * (an http kind's 202: data = the token's secret, delay_ms = the lease; the
 * job stays running, fenced like a pulled job by worker_id = 'pull:' ..
 * SHA-1 of the secret and leased in pull-leases, redis_pull_lua.c).
 * Returns the ids whose completion was refused (not held any more). The
 * common case (ok, fresh) is one HGET and one HSET per job (and a PEXPIRE
 * of uniq: when the job has a unique key), and one RPUSH to done: per call. */
static const char lua_complete[] = LUA_NOW LUA_EXPIRE LUA_ACKS LUA_FENCE LUA_DELIVER
    "local me, ttl, refused, done = ARGV[1], ARGV[2], {}, {}\n" /* ttl: a string, as PEXPIRE takes
                                                                   it */
    "for b = 3, 2 + tonumber(ARGV[3]) * 7, 7 do\n"
    "  local id, q, e, att, how, data = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],\n"
    "    ARGV[b + 5], ARGV[b + 6]\n"
    "  local k = P .. 'job:' .. id\n"
    "  local f = redis.call('HGET', k, 'fence') or old_fence(k)\n"
    "  local fresh = f == 'p' .. e\n"
    "  if how == 'ok' and (fresh or f == 'P' .. e) then\n" /* the common case, inline */
    "    local l = acks[q]\n"
    "    if not l then l = {}; acks[q] = l end\n"
    "    l[#l + 1] = e\n"
    "    if data == 'null' then\n" /* as an absent result shows */
    "      redis.call('HSET', k, 'status', 'succeeded', 'finished_at', nows, 'attempts', att,\n"
    "        'worker_id', me, 'fence', '')\n"
    "    else\n"
    "      redis.call('HSET', k, 'status', 'succeeded', 'result', data, 'finished_at', nows,\n"
    "        'attempts', att, 'worker_id', me, 'fence', '')\n"
    "    end\n"
    "    done[#done + 1] = id\n"
    "    if EV then changed(id) end\n"
    "    if not fresh then\n" /* P: it has a unique key */
    "      redis.call('PEXPIRE', P .. 'uniq:' .. redis.call('HGET', k, 'unique_key'), ttl)\n"
    "    end\n"
    "  elseif how == 'drop' then\n" /* a run this worker lost: only spend its delivery */
    "    if not (pend(f, e) or run(f, e)) then ack(q, e) end\n"
    "  elseif not (pend(f, e) or held(f, e, att, me)) then\n"
    "    refused[#refused + 1] = id\n"
    /* Nobody runs it under this entry any more: the delivery is spent. */
    "    if not run(f, e) then ack(q, e) end\n"
    "  else\n"
    "    fresh = pend(f, e)\n"
    "    local u = uk(f) and redis.call('HGET', k, 'unique_key')\n"
    "    ack(q, e)\n"
    "    if fresh then\n"
    "      hset(k, 'attempts', att, 'worker_id', me, 'started_at', now)\n"
    "    end\n"
    "    if how == 'ok' then\n"
    "      if not fresh then\n"
    "        hset(k, 'status', 'succeeded', 'result', data, 'progress_percent', "
    "100,\n"
    "          'finished_at', now, 'updated_at', now, 'fence', '')\n"
    "        expire(k, ttl, u)\n"
    "      end\n"
    "    elseif how == 'back' then\n"
    "      hset(k, 'status', 'pending', 'attempts', math.max(tonumber(att) - 1, 0),\n"
    "        'worker_id', '', 'run_at', now, 'updated_at', now, 'fence', '',\n"
    "        'last_error', 'handed back: worker shut down before the job finished')\n"
    "      deliver(id, q)\n"
    "    elseif how == 'handoff' then\n" /* a 202: the endpoint's token fences it now */
    "      hset(k, 'status', 'running', 'worker_id', 'pull:' .. "
    "redis.sha1hex(data),\n"
    "        'updated_at', now, 'fence', '')\n"
    "      redis.call('ZADD', P .. 'pull-leases', now + tonumber(ARGV[b + 7]), id)\n"
    "    elseif how == 'defer' then\n"
    "      local due = now + tonumber(ARGV[b + 7])\n"
    "      hset(k, 'status', 'pending', 'attempts', math.max(tonumber(att) - 1, 0),\n"
    "        'worker_id', '', 'run_at', due, 'updated_at', now, 'fence', '')\n"
    "      redis.call('ZADD', P .. 'delayed:' .. q, due, id)\n"
    "    else\n"
    "      local maxa = tonumber(redis.call('HGET', k, 'max_attempts'))\n"
    "      if how == 'perm' or tonumber(att) >= maxa then\n"
    "        hset(k, 'status', how == 'perm' and 'failed' or 'dead', 'last_error', "
    "data,\n"
    "          'worker_id', '', 'finished_at', now, 'updated_at', now, 'fence', '')\n"
    "        expire(k, ttl, u)\n"
    "      else\n"
    "        local due = now + tonumber(ARGV[b + 7])\n"
    "        hset(k, 'status', 'pending', 'last_error', data, 'worker_id', '',\n"
    "          'run_at', due, 'updated_at', now, 'progress_percent', '', 'current_step', '',\n"
    "          'fence', '')\n"
    "        redis.call('ZADD', P .. 'delayed:' .. q, due, id)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "flush_acks()\n"
    "if #done > 0 then\n" /* due: the next whole second at least ttl away */
    "  local due = math.ceil((now + tonumber(ttl)) / 1000) * 1000\n"
    "  for i = 1, #done, 500 do\n"
    "    redis.call('RPUSH', P .. 'done:' .. due, unpack(done, i, math.min(i + 499, #done)))\n"
    "  end\n"
    "  redis.call('ZADD', P .. 'done', due, due)\n"
    "end\n"
    "return refused\n";

/* ARGV: worker id, n, then per job id queue entry attempt. Renews each
 * held delivery (XCLAIM to ourselves resets its idle time, so XAUTOCLAIM
 * leaves it alone) and returns the ids no longer held (cancelled, taken
 * over or gone), whose runs are stopped. */
static const char lua_heartbeat[] = LUA_NOW LUA_FENCE
    "local me, lost = ARGV[1], {}\n"
    "for i = 0, tonumber(ARGV[2]) - 1 do\n"
    "  local b = 2 + i * 4\n"
    "  local id, q, e, att = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]\n"
    "  local k = P .. 'job:' .. id\n"
    "  local f = redis.call('HGET', k, 'fence') or old_fence(k)\n"
    "  local unmarked = pend(f, e)\n" /* its MARK was lost */
    "  if unmarked then\n"
    "    hset(k, 'status', 'running', 'attempts', att, 'worker_id', me,\n"
    "      'fence', fence('r', uk(f), e .. '/' .. att .. '/' .. me), 'started_at', now,\n"
    "      'updated_at', now)\n"
    "  end\n"
    "  if unmarked or held(f, e, att, me) then\n"
    "    redis.call('XCLAIM', P .. 'q:' .. q, 'trireme', me, 0, e, 'JUSTID')\n"
    "  else\n"
    "    lost[#lost + 1] = id\n"
    "  end\n"
    "end\n"
    "return lost\n";

/* ARGV: id, worker id, attempt, percent, step. Fenced like completions. */
static const char lua_progress[] =
    "local P = 'trireme:'\n"
    "local t = redis.call('TIME')\n" RQ_LUA_EVENTS "local k = P .. 'job:' .. ARGV[1]\n"
    "local h = redis.call('HMGET', k, 'status', 'worker_id', 'attempts')\n"
    "if h[1] ~= 'running' or h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return 0 end\n"
    "hset(k, 'progress_percent', ARGV[4], 'current_step', ARGV[5], 'updated_at',\n"
    "  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))\n"
    "return 1\n";

/* ARGV: max per queue, max jobs swept, then queue names. Deletes the
 * hashes of done: lists that fell due (at most max swept: when more are
 * due, next is 0 so the caller comes back at once); moves due delayed jobs
 * onto their streams; trims each stream below the oldest entry the group
 * still needs (unacknowledged, or not yet delivered); trims the listing
 * index of ids whose hashes expired. Returns {promoted, ms until the next
 * is due or -1}. */
static const char lua_promote[] = LUA_NOW LUA_FENCE LUA_DELIVER
    "local function trim(s)\n"
    "  local groups = redis.pcall('XINFO', 'GROUPS', s)\n"
    "  if type(groups) ~= 'table' or groups.err then return end\n"
    "  for _, g in ipairs(groups) do\n"
    "    local name, last\n"
    "    for j = 1, #g, 2 do\n"
    "      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then\n"
    "        last = g[j + 1] end\n"
    "    end\n"
    "    if name == 'trireme' and last then\n"
    "      local p = redis.call('XPENDING', s, 'trireme')\n"
    "      redis.call('XTRIM', s, 'MINID', (p[1] > 0 and p[2]) or last)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function sweep(budget)\n" /* false: the budget ran out first */
    "  for _, due in ipairs(redis.call('ZRANGEBYSCORE', P .. 'done', '-inf', now)) do\n"
    "    local l = P .. 'done:' .. due\n"
    "    repeat\n"
    "      if budget <= 0 then return false end\n"
    "      local ids = redis.call('LPOP', l, math.min(budget, 500))\n"
    "      if not ids then break end\n"
    "      for i, id in ipairs(ids) do ids[i] = P .. 'job:' .. id end\n"
    "      redis.call('DEL', unpack(ids))\n"
    "      budget = budget - #ids\n"
    "    until false\n"
    "    redis.call('ZREM', P .. 'done', due)\n"
    "  end\n"
    "  return true\n"
    "end\n"
    "local max, moved, next = tonumber(ARGV[1]), 0, -1\n"
    "if not sweep(tonumber(ARGV[2])) then next = 0 end\n"
    "for i = 3, #ARGV do\n"
    "  local z, s = P .. 'delayed:' .. ARGV[i], P .. 'q:' .. ARGV[i]\n"
    "  trim(s)\n"
    "  local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, max)\n"
    "  for _, id in ipairs(ids) do deliver(id, ARGV[i]) end\n"
    "  if #ids > 0 then redis.call('ZREM', z, unpack(ids)); moved = moved + #ids end\n"
    "  local f = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"
    "  if f[2] then\n"
    "    local d = math.max(tonumber(f[2]) - now, 0)\n"
    "    if next < 0 or d < next then next = d end\n"
    "  end\n"
    "end\n"
    "local old = redis.call('ZRANGE', P .. 'jobs', 0, 99)\n"
    "local gone = {}\n"
    "for _, id in ipairs(old) do\n"
    "  if redis.call('EXISTS', P .. 'job:' .. id) == 1 then break end\n"
    "  gone[#gone + 1] = id\n"
    "end\n"
    "if #gone > 0 then redis.call('ZREM', P .. 'jobs', unpack(gone)) end\n"
    "return {moved, next}\n";

/* ARGV: worker id, idle ms, then queue names. Forgets consumers of the
 * group that own nothing and were idle longer than that (stopped workers';
 * a live one blocked in XREADGROUP is seen at every read and, owning
 * nothing, would simply be made again by its next read). Returns how many. */
static const char lua_consumers[] =
    "local me, max, n = ARGV[1], tonumber(ARGV[2]), 0\n"
    "for i = 3, #ARGV do\n"
    "  local s = 'trireme:q:' .. ARGV[i]\n"
    "  local cs = redis.pcall('XINFO', 'CONSUMERS', s, 'trireme')\n"
    "  if type(cs) == 'table' and not cs.err then\n"
    "    for _, c in ipairs(cs) do\n"
    "      local t = {}\n"
    "      for j = 1, #c, 2 do t[c[j]] = c[j + 1] end\n"
    "      if t['name'] ~= me and t['pending'] == 0 and t['idle'] > max then\n"
    "        redis.call('XGROUP', 'DELCONSUMER', s, 'trireme', t['name'])\n"
    "        n = n + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return n\n";

/* ARGV: id, ttl ms. nil: no such job. {1, hash}: cancelled; {0, hash}:
 * already finished. A running job's worker sees it at its next heartbeat
 * (and at once through PUBLISH trireme:cancel). */
static const char lua_cancel[] =
    LUA_NOW LUA_EXPIRE "local k = P .. 'job:' .. ARGV[1]\n"
                       "local h = redis.call('HMGET', k, 'status', 'queue', 'unique_key')\n"
                       "if not h[1] then return nil end\n"
                       "local ok = 0\n"
                       "if h[1] == 'pending' or h[1] == 'running' then\n"
                       "  hset(k, 'status', 'cancelled', 'finished_at', now, 'updated_at', now,\n"
                       "    'fence', '')\n"
                       "  redis.call('ZREM', P .. 'delayed:' .. h[2], ARGV[1])\n"
                       "  expire(k, tonumber(ARGV[2]), h[3])\n"
                       "  redis.call('PUBLISH', P .. 'cancel', ARGV[1])\n"
                       "  ok = 1\n"
                       "end\n"
                       "return {ok, redis.call('HGETALL', k)}\n";

/* ARGV: id. Redrive a dead, failed or cancelled job: a fresh set of
 * attempts; it no longer expires. Same answers as cancel. */
static const char lua_retry[] = LUA_NOW LUA_FENCE LUA_DELIVER
    "local k = P .. 'job:' .. ARGV[1]\n"
    "local h = redis.call('HMGET', k, 'status', 'queue', 'unique_key')\n"
    "if not h[1] then return nil end\n"
    "local ok = 0\n"
    "if h[1] == 'dead' or h[1] == 'failed' or h[1] == 'cancelled' then\n"
    "  hset(k, 'status', 'pending', 'attempts', 0, 'run_at', now, 'last_error', '',\n"
    "    'result', '', 'finished_at', '', 'worker_id', '', 'progress_percent', '',\n"
    "    'current_step', '', 'fence', '', 'updated_at', now)\n"
    "  redis.call('PERSIST', k)\n"
    "  if h[3] and h[3] ~= '' then redis.call('PERSIST', P .. 'uniq:' .. h[3]) end\n"
    "  redis.call('ZADD', P .. 'jobs', ARGV[1], ARGV[1])\n"
    "  deliver(ARGV[1], h[2])\n"
    "  ok = 1\n"
    "end\n"
    "return {ok, redis.call('HGETALL', k)}\n";

/* ARGV: status queue kind ('' = any), limit, cursor ('' = newest), scan
 * budget. Newest first. Returns {hashes, next cursor or ''}: the cursor is
 * also set when the scan budget ran out before the page filled. */
static const char lua_list[] =
    "local P = 'trireme:'\n"
    "local st, q, kind, limit, budget = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]),\n"
    "  tonumber(ARGV[6])\n"
    "local max = ARGV[5] ~= '' and ('(' .. ARGV[5]) or '+inf'\n"
    "local out, scanned, last = {}, 0, ''\n"
    "while #out < limit and scanned < budget do\n"
    "  local ids = redis.call('ZREVRANGEBYSCORE', P .. 'jobs', max, '-inf', 'LIMIT', 0, 100)\n"
    "  if #ids == 0 then last = ''; break end\n"
    "  for _, id in ipairs(ids) do\n"
    "    scanned = scanned + 1\n"
    "    max = '(' .. id\n"
    "    last = id\n"
    "    local k = P .. 'job:' .. id\n"
    "    local h = redis.call('HMGET', k, 'status', 'queue', 'kind')\n"
    "    if not h[1] then redis.call('ZREM', P .. 'jobs', id)\n"
    "    elseif (st == '' or h[1] == st) and (q == '' or h[2] == q) and\n"
    "           (kind == '' or h[3] == kind) then\n"
    "      out[#out + 1] = redis.call('HGETALL', k)\n"
    "    end\n"
    "    if #out >= limit or scanned >= budget then break end\n"
    "  end\n"
    "end\n"
    "return {out, last}\n";

/* Jobs by queue, for GET /v1/queues: what Redis can count without reading
 * every job hash. ARGV: cap. Returns per queue of queues: name, pending
 * (the group's undelivered entries, or every entry while no worker has
 * made the group, the delayed: set and the queue's pull lanes) and running
 * (the group's delivered, unacknowledged entries). A stream whose lag
 * Redis does not know (deleted entries past the group's last delivery) is
 * read up to cap entries instead. */
static const char lua_counts[] = LUA_NOW
    "local cap, out = tonumber(ARGV[1]), {}\n"
    "local lanes = redis.call('SMEMBERS', P .. 'pull-lanes')\n"
    "local names = redis.call('SMEMBERS', P .. 'queues')\n"
    "table.sort(names)\n"
    "for _, q in ipairs(names) do\n"
    "  local k = P .. 'q:' .. q\n"
    "  local pend, run = redis.call('ZCARD', P .. 'delayed:' .. q), 0\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    local grouped = false\n"
    "    for _, g in ipairs(redis.call('XINFO', 'GROUPS', k)) do\n"
    "      local f = {}\n"
    "      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "      if f['name'] == '" RQ_GROUP "' then\n"
    "        run = tonumber(f['pending']) or 0\n"
    "        local lag = f['lag']\n"
    "        if not lag then\n"
    "          lag = #redis.call('XRANGE', k, '(' .. f['last-delivered-id'], '+', 'COUNT', cap)\n"
    "        end\n"
    "        pend = pend + tonumber(lag)\n"
    "        grouped = true\n"
    "      end\n"
    "    end\n"
    /* no worker has read this queue yet: every entry waits */
    "    if not grouped then pend = pend + redis.call('XLEN', k) end\n"
    "  end\n"
    "  local tail = ':' .. q\n"
    "  for _, z in ipairs(lanes) do\n"
    "    if string.sub(z, -#tail) == tail then pend = pend + redis.call('ZCARD', z) end\n"
    "  end\n"
    "  out[#out + 1] = q\n"
    "  out[#out + 1] = pend\n"
    "  out[#out + 1] = run\n"
    "end\n"
    "return out\n";

/* Many jobs at once (event streams): ARGV ids; returns each one's HGETALL
 * (empty for a job that is gone). */
static const char lua_get_many[] =
    "local out = {}\n"
    "for i = 1, #ARGV do out[i] = redis.call('HGETALL', 'trireme:job:' .. ARGV[i]) end\n"
    "return out\n";

const char *const rq_scripts[RQ_NSCRIPTS] = {
    [RQ_ENQUEUE] = lua_enqueue,
    [RQ_START] = lua_start,
    [RQ_COMPLETE] = lua_complete,
    [RQ_HEARTBEAT] = lua_heartbeat,
    [RQ_PROMOTE] = lua_promote,
    [RQ_CANCEL] = lua_cancel,
    [RQ_RETRY] = lua_retry,
    [RQ_LIST] = lua_list,
    [RQ_PROGRESS] = lua_progress,
    [RQ_MARK] = lua_mark,
    [RQ_CONSUMERS] = lua_consumers,
    [RQ_COUNTS] = lua_counts,
    [RQ_GET_MANY] = lua_get_many,
    [RQ_PULL_ENQUEUE] = rq_lua_pull_enqueue,
    [RQ_PULL_CLAIM] = rq_lua_pull_claim,
    [RQ_PULL_BACK] = rq_lua_pull_back,
    [RQ_PULL_REPORT] = rq_lua_pull_report,
    [RQ_PULL_FINISH] = rq_lua_pull_finish,
    [RQ_PULL_DUE] = rq_lua_pull_due,
    [RQ_RESERVE_ID] = rq_lua_reserve_id,
    [RQ_ENQUEUE_AS] = rq_lua_enqueue_as,
    [RQ_FILES_GONE] = rq_lua_files_gone,
    [RQ_CHANGES] = rq_lua_changes,
};
