/*
 * leader.c - leader election on loop 0: Redis lease or PostgreSQL lock.
 *
 * Redis (--leader=redis): SET key holder NX PX ttl and INCR of the token
 * key in one script; renewal and release by compare-and-set scripts, so a
 * node only ever extends or deletes its own lease; release is PUBLISHed so
 * standbys (SUBSCRIBEd) try at once. A leader that has not renewed by
 * ttl - margin after its last successful renewal was *sent* steps down on
 * its own: it stops acting before anyone else can have acquired.
 *
 * PostgreSQL (--leader=postgres): a session advisory lock on a dedicated
 * connection. A standby waits in pg_advisory_lock (a query in flight costs
 * the loop nothing), so it wins the moment the holder's session ends, and
 * the server ends it the moment the holder's connection dies. Needs a
 * direct or session-pooled connection (DATABASE_DIRECT_URL behind a
 * transaction pooler).
 *
 * Either way the token is written to trireme.leaders before the new leader
 * acts, and the token it acts under is the one PostgreSQL returns: one more
 * than any before, even when Redis lost its counter in a restart. Log lines: "Acquired leader
 * lock", "Leader heartbeat recorded", "Lost leader lock", "Released leader lock".
 */
#include "modules/leader/leader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernel/container_of.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/pg.h"
#include "kernel/redis.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/registry.h"

#define HEARTBEAT_LOG_MS 30000

/* Each election: its name (the trireme.leaders row, the Redis keys) and its
 * advisory lock key (any constant, the same in every instance; the worker's
 * is the one it always had, so mixed versions still agree). */
static const struct {
    const char *name, *lock_key;
} elections[ELECTION_COUNT] = {
    [ELECTION_WORKER] = {"worker", "7306029601412348418"},
    [ELECTION_BEAT] = {"beat", "7306029601412348419"},
};

#define SCRIPT_ACQUIRE                                                                             \
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then"                             \
    " return redis.call('INCR', KEYS[2]) end return 0"
#define SCRIPT_RENEW                                                                               \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then"                                                \
    " return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
#define SCRIPT_RELEASE                                                                             \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]);"                    \
    " redis.call('PUBLISH', KEYS[2], ARGV[1]) return 1 end return 0"

/* A term's token is at least 1: the worker reads 0 as "claimed in compete
 * mode, not fenced", so a first PostgreSQL-lock leader on a fresh database
 * must not get 0. */
#define SQL_RECORD_TOKEN                                                                           \
    "INSERT INTO trireme.leaders AS l (name, token, holder, backend, since, renewed_at)"           \
    " VALUES ($1, greatest($2::bigint, 1), $3, $4, now(), now())"                                  \
    " ON CONFLICT (name) DO UPDATE SET token = greatest(l.token + 1, $2::bigint),"                 \
    "  holder = excluded.holder, backend = excluded.backend, since = now(), renewed_at = now()"    \
    " RETURNING token"
#define SQL_HEARTBEAT                                                                              \
    "UPDATE trireme.leaders SET renewed_at = now() WHERE name = $1 AND holder = $2"

enum { ST_STANDBY, ST_RECORDING, ST_LEADER, ST_RELEASING, ST_DONE };

struct election {
    const char *name;
    char lock_sql[64], unlock_sql[64];
    struct leader_shared *sh;
    struct loop *loop;
    const struct config *cfg;
    int state;
    bool stopping; /* the role drains: release once its last loop is done */
    /* Redis */
    struct redis_client rc, sub;
    struct redis_cmd op, rel, subscribe;
    bool op_inflight;
    bool acquire_again; /* a release was heard while an op was in flight */
    uint64_t sent_ns, valid_until_ns;
    char key[96], token_key[96], channel[96], ttl[24];
    /* PostgreSQL: the lock connection, and the token record */
    struct pg_pool pg;
    struct pg_query lock_q, record_q, hb_q;
    const char *vals[4];
    char token_s[24];
    bool lock_inflight, hb_inflight;
    struct timer tick;
    uint64_t last_hb_log_ns;
};

/* process-wide: what every loop reads. */
struct leader_set {
    struct leader_shared sh[ELECTION_COUNT];
    bool on[ELECTION_COUNT];
};

struct leader_shared *leader_election_of(struct server *s, int which)
{
    struct leader_set *set = s->module_state[MODULE_LEADER];
    return set && set->on[which] ? &set->sh[which] : NULL;
}

bool leader_election_is(struct server *s, int which)
{
    struct leader_shared *sh = leader_election_of(s, which);
    return sh && atomic_load(&sh->leader);
}

long long leader_election_token(struct server *s, int which)
{
    struct leader_shared *sh = leader_election_of(s, which);
    return sh ? atomic_load(&sh->token) : 0;
}

static void wake_all(struct election *e)
{
    struct server *s = e->loop->srv;
    for (int i = 0; i < s->nloops; i++)
        loop_wake(&s->loops[i]);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void become_leader(struct election *e, long long token)
{
    e->state = ST_LEADER;
    atomic_store(&e->sh->token, token);
    atomic_store(&e->sh->since_unix_ms, unix_ms());
    atomic_store(&e->sh->leader, true);
    e->last_hb_log_ns = e->loop->now_ns;
    LOG(LOG_INFO, "Acquired leader lock", L_STR("election", e->name), L_INT("token", token),
        L_STR("backend", e->sh->backend), L_STR("holder", e->sh->holder));
    wake_all(e);
}

static void step_down(struct election *e, const char *why)
{
    bool was = atomic_exchange(&e->sh->leader, false);
    atomic_store(&e->sh->token, 0);
    if (e->state != ST_DONE && e->state != ST_RELEASING)
        e->state = ST_STANDBY;
    if (was) {
        LOG(LOG_WARN, "Lost leader lock", L_STR("election", e->name), L_STR("reason", why));
        wake_all(e);
    }
}

static void heartbeat_log(struct election *e)
{
    if (e->loop->now_ns - e->last_hb_log_ns < (uint64_t)HEARTBEAT_LOG_MS * 1000000)
        return;
    e->last_hb_log_ns = e->loop->now_ns;
    LOG(LOG_INFO, "Leader heartbeat recorded", L_STR("election", e->name),
        L_INT("token", atomic_load(&e->sh->token)));
}

/* --- token record (both backends) --------------------------------------- */

static void on_recorded(struct pg_query *q, PGresult *res, const char *err)
{
    struct election *e = container_of(q, struct election, record_q);
    if (e->state != ST_RECORDING)
        return;
    if (err) {
        /* Not recorded, not leader: acting now could not be fenced. Give the
         * lease back and try again. */
        LOG(LOG_WARN, "leader: cannot record the fencing token; not taking over",
            L_STR("error", err));
        e->state = ST_STANDBY;
        return;
    }
    become_leader(e, atoll(PQgetvalue(res, 0, 0)));
}

static void record_token(struct election *e, long long token)
{
    e->state = ST_RECORDING;
    snprintf(e->token_s, sizeof(e->token_s), "%lld", token);
    e->vals[0] = e->name;
    e->vals[1] = e->token_s;
    e->vals[2] = e->sh->holder;
    e->vals[3] = e->sh->backend;
    e->record_q = (struct pg_query){.fn = on_recorded,
                                    .sql = SQL_RECORD_TOKEN,
                                    .nparams = 4,
                                    .values = e->vals,
                                    .timeout_ms = e->cfg->leader_ttl_ms / 2};
    pg_query_submit(&e->pg, &e->record_q);
}

static void on_hb(struct pg_query *q, PGresult *res, const char *err)
{
    struct election *e = container_of(q, struct election, hb_q);
    e->hb_inflight = false;
    if (!err && e->state == ST_LEADER)
        heartbeat_log(e);
}

static void pg_heartbeat(struct election *e)
{
    if (e->hb_inflight)
        return;
    e->hb_q = (struct pg_query){.fn = on_hb,
                                .sql = SQL_HEARTBEAT,
                                .nparams = 2,
                                .values = e->vals,
                                .timeout_ms = e->cfg->leader_ttl_ms};
    e->vals[0] = e->name;
    e->vals[1] = e->sh->holder;
    e->hb_inflight = true;
    pg_query_submit(&e->pg, &e->hb_q);
}

/* --- Redis backend ------------------------------------------------------ */

static void redis_tick(struct election *e);

static void redis_op_answered(struct election *e, redisReply *r, const char *err)
{
    if (e->state == ST_RELEASING || e->state == ST_DONE)
        return; /* a renewal answered after we let go */
    if (err || !r || r->type != REDIS_REPLY_INTEGER) {
        if (e->state == ST_LEADER)
            LOG(LOG_WARN, "leader: renewal failed", L_STR("error", err ? err : "bad reply"));
        return; /* the tick retries; the local deadline decides stepping down */
    }
    if (e->state == ST_STANDBY && r->integer > 0) {
        e->valid_until_ns = e->sent_ns + e->cfg->leader_ttl_ms * 1000000ull;
        record_token(e, r->integer);
    } else if (e->state == ST_LEADER || e->state == ST_RECORDING) {
        if (r->integer == 1)
            e->valid_until_ns = e->sent_ns + e->cfg->leader_ttl_ms * 1000000ull;
        else
            step_down(e, "the lease belongs to another instance");
        if (e->state == ST_LEADER) {
            pg_heartbeat(e);
        }
    }
}

static void on_redis_op(struct redis_cmd *c, redisReply *r, const char *err)
{
    struct election *e = c->data;
    bool again = e->acquire_again;
    e->op_inflight = false;
    e->acquire_again = false;
    redis_op_answered(e, r, err);
    if (again && e->state == ST_STANDBY)
        redis_tick(e); /* that answer may predate the release: ask once more */
}

static void on_released(struct redis_cmd *c, redisReply *r, const char *err)
{
    struct election *e = c->data;
    LOG(LOG_INFO, "Released leader lock", L_STR("election", e->name),
        L_BOOL("was_holder", !err && r && r->integer == 1));
    e->state = ST_DONE;
    redis_client_close(&e->rc);
    redis_client_close(&e->sub);
    pg_pool_close(&e->pg);
}

static void redis_send(struct election *e, const char *script, int nkeys)
{
    const char *argv[] = {"EVAL",
                          script,
                          nkeys == 2 ? "2" : "1",
                          e->key,
                          nkeys == 2 ? e->token_key : e->sh->holder,
                          nkeys == 2 ? e->sh->holder : e->ttl,
                          e->ttl};
    int argc = nkeys == 2 ? 7 : 6;
    memset(&e->op, 0, sizeof(e->op));
    e->op.fn = on_redis_op;
    e->op.data = e;
    e->op.timeout_ms = e->cfg->leader_renew_ms;
    e->op_inflight = true;
    e->sent_ns = e->loop->now_ns;
    redis_submitv(&e->rc, &e->op, argc, argv);
}

static void redis_tick(struct election *e)
{
    uint64_t now = e->loop->now_ns;
    uint64_t margin = e->cfg->leader_ttl_ms * 1000000ull / 10;
    if (e->state == ST_LEADER && now + margin >= e->valid_until_ns)
        step_down(e, "could not renew the lease in time");
    if (e->op_inflight || e->stopping)
        return;
    if (e->state == ST_LEADER)
        redis_send(e, SCRIPT_RENEW, 1);
    else if (e->state == ST_STANDBY)
        redis_send(e, SCRIPT_ACQUIRE, 2);
}

/* The lease may be free: a standby tries now, not at its next tick. An
 * acquire already in flight may have been answered before the release, so
 * its answer is followed by one more try. */
static void acquire_now(struct election *e)
{
    if (e->state != ST_STANDBY)
        return;
    if (e->op_inflight)
        e->acquire_again = true;
    else
        redis_tick(e);
}

/* "message": the leader let go. "subscribe": from now on a release
 * reaches us, but one published before did not, so the lease may be free
 * already (after every reconnection too). */
static void on_sub_push(struct redis_client *cl, redisReply *r)
{
    struct election *e = cl->data;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->str &&
        (!strcmp(r->element[0]->str, "message") || !strcmp(r->element[0]->str, "subscribe")))
        acquire_now(e);
}

static void on_subscribed(struct redis_cmd *c, redisReply *r, const char *err)
{
}

static void on_sub_state(struct redis_client *cl, bool up)
{
    struct election *e = cl->data;
    if (!up)
        return;
    memset(&e->subscribe, 0, sizeof(e->subscribe));
    e->subscribe.fn = on_subscribed;
    redis_submitv(&e->sub, &e->subscribe, 2, (const char *[]){"SUBSCRIBE", e->channel});
}

/* --- PostgreSQL backend ------------------------------------------------- */

static void on_locked(struct pg_query *q, PGresult *res, const char *err)
{
    struct election *e = container_of(q, struct election, lock_q);
    e->lock_inflight = false;
    if (err) {
        if (!e->stopping)
            LOG(LOG_WARN, "leader: waiting for the advisory lock failed", L_STR("error", err));
        return; /* on_pg_state re-arms when the connection is back */
    }
    if (e->stopping) {
        e->state = ST_DONE;
        pg_pool_close(&e->pg);
        return;
    }
    record_token(e, 0);
}

static void pg_try_lock(struct election *e)
{
    if (e->lock_inflight || e->state != ST_STANDBY || e->stopping)
        return;
    e->lock_q = (struct pg_query){.fn = on_locked, .sql = e->lock_sql};
    e->lock_inflight = true;
    pg_query_submit(&e->pg, &e->lock_q);
}

static void on_pg_state(struct pg_pool *p, bool up)
{
    struct election *e = p->data;
    if (e->cfg->leader_backend != LEADER_POSTGRES)
        return;
    if (!up) {
        /* The session held the lock: it is gone with the connection. */
        step_down(e, "database session lost");
        return;
    }
    pg_try_lock(e);
}

static void on_unlocked(struct pg_query *q, PGresult *res, const char *err)
{
    struct election *e = container_of(q, struct election, lock_q);
    LOG(LOG_INFO, "Released leader lock", L_STR("election", e->name), L_BOOL("ok", !err));
    e->state = ST_DONE;
    pg_pool_close(&e->pg);
}

/* --- ticks, wake, stop -------------------------------------------------- */

static void on_tick(struct loop *l, struct timer *t)
{
    struct election *e = container_of(t, struct election, tick);
    if (e->state == ST_DONE)
        return;
    loop_timer_in(l, t, e->cfg->leader_renew_ms);
    if (e->cfg->leader_backend == LEADER_REDIS)
        redis_tick(e);
    else if (e->state == ST_LEADER)
        pg_heartbeat(e);
}

static void release(struct election *e)
{
    if (e->state == ST_DONE || e->state == ST_RELEASING)
        return;
    bool was = atomic_exchange(&e->sh->leader, false);
    e->state = ST_RELEASING;
    loop_timer_cancel(e->loop, &e->tick);
    if (e->cfg->leader_backend == LEADER_REDIS) {
        /* Pipelined behind any renewal in flight, so it is answered last. */
        const char *argv[] = {"EVAL", SCRIPT_RELEASE, "2", e->key, e->channel, e->sh->holder};
        memset(&e->rel, 0, sizeof(e->rel));
        e->rel.fn = on_released;
        e->rel.data = e;
        e->rel.timeout_ms = e->cfg->leader_ttl_ms;
        redis_submitv(&e->rc, &e->rel, 6, argv);
    } else if (was && !e->lock_inflight) {
        e->lock_q = (struct pg_query){.fn = on_unlocked, .sql = e->unlock_sql};
        pg_query_submit(&e->pg, &e->lock_q);
    } else {
        /* Standby waiting in pg_advisory_lock: closing the session ends it. */
        e->state = ST_DONE;
        pg_pool_close(&e->pg);
    }
}

static void leader_wake(struct loop *l)
{
    struct election *es = l->modules[MODULE_LEADER];
    for (int i = 0; es && i < ELECTION_COUNT; i++) {
        struct election *e = &es[i];
        if (e->sh && e->stopping && atomic_load(&e->sh->workers_running) == 0)
            release(e);
    }
}

void leader_drained(struct server *s, int which)
{
    struct leader_shared *sh = leader_election_of(s, which);
    if (!sh)
        return;
    if (atomic_fetch_sub(&sh->workers_running, 1) == 1)
        loop_wake(&s->loops[0]);
}

static void leader_stop(struct loop *l)
{
    struct election *es = l->modules[MODULE_LEADER];
    for (int i = 0; es && i < ELECTION_COUNT; i++) {
        struct election *e = &es[i];
        if (!e->sh)
            continue;
        /* Keep the lease while the role drains (the worker's completions
         * carry our token); give it up the moment its last loop is done. */
        e->stopping = true;
        if (!atomic_load(&e->sh->leader) || atomic_load(&e->sh->workers_running) == 0)
            release(e);
    }
}

/* Which elections this configuration needs, and how many loops of the role
 * must drain before each is released. */
static int election_loops(const struct config *cfg, int which, int nloops)
{
    if (cfg->leader_backend == LEADER_NONE)
        return 0;
    if (which == ELECTION_WORKER)
        return cfg->worker_mode_leader && (cfg->role_mask & (1u << MODULE_WORKER)) ? nloops : 0;
    return (cfg->role_mask & (1u << MODULE_BEAT)) ? 1 : 0; /* beat runs on loop 0 */
}

static int leader_init(struct server *s)
{
    const struct config *cfg = s->cfg;
    struct leader_set *set = NULL;
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int i = 0; i < ELECTION_COUNT; i++) {
        int n = election_loops(cfg, i, s->nloops);
        if (!n)
            continue;
        if (!set)
            set = xcalloc(1, sizeof(*set));
        struct leader_shared *sh = &set->sh[i];
        snprintf(sh->holder, sizeof(sh->holder), "%s:%d:%08lx", host, getpid(),
                 (unsigned long)(ts.tv_nsec ^ (long)getpid() << 12) & 0xffffffffu);
        sh->backend = cfg->leader_backend == LEADER_REDIS ? "redis" : "postgres";
        atomic_store(&sh->workers_running, n);
        set->on[i] = true;
    }
    s->module_state[MODULE_LEADER] = set;
    return 0;
}

static int election_start(struct election *e, struct loop *l, int which)
{
    const struct config *cfg = l->srv->cfg;
    e->name = elections[which].name;
    snprintf(e->lock_sql, sizeof(e->lock_sql), "SELECT pg_advisory_lock(%s)",
             elections[which].lock_key);
    snprintf(e->unlock_sql, sizeof(e->unlock_sql), "SELECT pg_advisory_unlock(%s)",
             elections[which].lock_key);
    e->sh = leader_election_of(l->srv, which);
    e->loop = l;
    e->cfg = cfg;
    e->tick.fn = on_tick;
    const char *direct = *cfg->database_direct_url ? cfg->database_direct_url : cfg->database_url;
    if (cfg->leader_backend == LEADER_POSTGRES && cfg->pg_pooler_transaction &&
        !*cfg->database_direct_url) {
        LOG(LOG_ERROR, "leader: --leader=postgres holds a session lock and cannot work through a "
                       "transaction pooler; set DATABASE_DIRECT_URL");
        return -EINVAL;
    }
    struct pg_pool_config pc = {.conninfo = direct, .size = 1, .max_inflight = 8};
    int ret = pg_pool_init(&e->pg, l, &pc);
    if (ret < 0)
        return ret;
    e->pg.data = e;
    e->pg.on_state = on_pg_state;
    if (cfg->leader_backend == LEADER_REDIS) {
        struct redis_url u;
        const char *err;
        if (redis_url_parse(cfg->redis_url, &u, &err)) {
            LOG(LOG_ERROR, "REDIS_URL is not valid", L_STR("error", err));
            return -EINVAL;
        }
        snprintf(e->key, sizeof(e->key), "trireme:leader:%s", e->name);
        snprintf(e->token_key, sizeof(e->token_key), "trireme:leader:%s:token", e->name);
        snprintf(e->channel, sizeof(e->channel), "trireme:leader:%s:released", e->name);
        snprintf(e->ttl, sizeof(e->ttl), "%llu", (unsigned long long)cfg->leader_ttl_ms);
        e->rc.data = e;
        ret = redis_client_init(&e->rc, l, &u, REDIS_COMMANDS, "leader");
        if (ret < 0)
            return ret;
        e->sub.data = e;
        e->sub.on_push = on_sub_push;
        e->sub.on_state = on_sub_state;
        ret = redis_client_init(&e->sub, l, &u, REDIS_PUBSUB, "leader-pubsub");
        if (ret < 0)
            return ret;
    }
    loop_timer_in(l, &e->tick, cfg->leader_backend == LEADER_REDIS ? 0 : cfg->leader_renew_ms);
    LOG(LOG_INFO, "leader election started", L_STR("election", e->name),
        L_STR("backend", e->sh->backend), L_STR("holder", e->sh->holder),
        L_INT("ttl_ms", cfg->leader_ttl_ms), L_INT("renew_ms", cfg->leader_renew_ms));
    return 0;
}

static int leader_start(struct loop *l)
{
    if (l->id != 0 || !l->srv->module_state[MODULE_LEADER])
        return 0;
    /* loop 0's state: every election, those not run with sh NULL */
    struct election *es = xcalloc(ELECTION_COUNT, sizeof(*es));
    l->modules[MODULE_LEADER] = es;
    for (int i = 0; i < ELECTION_COUNT; i++) {
        int ret = leader_election_of(l->srv, i) ? election_start(&es[i], l, i) : 0;
        if (ret < 0)
            return ret;
    }
    return 0;
}

static void leader_cleanup(struct server *s)
{
    struct election *es = s->loops[0].modules[MODULE_LEADER];
    for (int i = 0; es && i < ELECTION_COUNT; i++) {
        struct election *e = &es[i];
        if (!e->sh)
            continue;
        pg_pool_free(&e->pg); /* both are no-ops on what was never started */
        redis_client_free(&e->rc);
        redis_client_free(&e->sub);
    }
    free(es);
    s->loops[0].modules[MODULE_LEADER] = NULL;
    free(s->module_state[MODULE_LEADER]);
    s->module_state[MODULE_LEADER] = NULL;
}

const struct module leader_module = {
    .name = "leader",
    .summary = "leader election (Redis lease or PostgreSQL advisory lock) with fencing tokens",
    .is_role = false,
    .init = leader_init,
    .start = leader_start,
    .stop = leader_stop,
    .wake = leader_wake,
    .cleanup = leader_cleanup,
};
