/*
 * module.c - the beat role's module hooks: --schedules reconciled at init,
 * loop 0's beat started and stopped, the election followed, and the
 * `trireme schedules` command.
 *
 * With --leader, beat fires only while it holds the "beat" election. A
 * standby keeps its connections and its LISTEN but loads and fires
 * nothing; the slots it had sent are settled by their keys, and the new
 * leader fires what is still unhandled. Stopping lets a batch in flight
 * finish (its slots are settled by its answer); the connections close
 * once it has.
 */
#include <stdlib.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/module.h"
#include "kernel/server.h"
#include "kernel/xalloc.h"
#include "modules/beat/beat.h"
#include "modules/leader/leader.h"
#include "modules/queue/queue.h"
#include "modules/registry.h"

#define BEAT_PG_MAX_INFLIGHT 16 /* statements pipelined on beat's one connection */

void beat_close(struct beat *b)
{
    if (b->closed)
        return;
    b->closed = true;
    pg_pool_close(&b->pg);
    beat_fire_close(b);
    leader_drained(b->loop->srv, ELECTION_BEAT);
}

static bool elected(struct beat *b)
{
    struct server *s = b->loop->srv;
    return !leader_election_of(s, ELECTION_BEAT) || leader_election_is(s, ELECTION_BEAT);
}

/* Follow the election: start firing when elected, stop when not. */
static void beat_wake(struct loop *l)
{
    struct beat *b = l->modules[MODULE_BEAT];
    if (!b || b->stopping || elected(b) == b->leading)
        return;
    b->leading = !b->leading;
    if (b->leading) {
        LOG(LOG_INFO, "beat active: firing schedules");
        beat_load_all(b);
        retention_start(&b->retention, l, &b->pg, RETENTION_FIRES);
        return;
    }
    LOG(LOG_INFO, "beat standby: not firing");
    retention_stop(&b->retention);
    beat_fire_cancel(b);
    beat_fire_drop(b);
    beat_set_clear(&b->set);
    beat_load_forget(b);
}

static const char *beat_unmet(const struct config *cfg)
{
    return *cfg->database_url ? NULL : "it needs DATABASE_URL (PostgreSQL)";
}

static int beat_init(struct server *s)
{
    if (!(s->cfg->role_mask & (1u << MODULE_BEAT)))
        return 0;
    return beat_file_reconcile(s->cfg);
}

static int beat_start(struct loop *l)
{
    if (l->id != 0)
        return 0;
    const struct config *cfg = l->srv->cfg;
    struct beat *b = xcalloc(1, sizeof(*b));
    l->modules[MODULE_BEAT] = b;
    b->loop = l;
    b->cfg = cfg;
    const char *listen_url = *cfg->database_direct_url    ? cfg->database_direct_url
                             : cfg->pg_pooler_transaction ? NULL
                                                          : cfg->database_url;
    struct pg_pool_config pc = {.conninfo = cfg->database_url,
                                .listen_conninfo = listen_url,
                                .size = 1,
                                .max_inflight = BEAT_PG_MAX_INFLIGHT};
    if (pg_pool_init(&b->pg, l, &pc) < 0)
        return -1;
    if (beat_fire_open(b) < 0)
        return -1;
    beat_load_start(b);
    LOG(LOG_INFO, "beat started",
        L_STR("election", leader_election_of(l->srv, ELECTION_BEAT) ? "beat" : "none"),
        L_STR("queue_backend", queue_backend_of(cfg)->name),
        L_INT("poll_interval_ms", cfg->beat_poll_interval_ms), L_STR("tzdir", cfg->tzdir));
    /* Without a LISTEN connection nothing (re)subscribes: load now. With
     * one, the subscription's confirmation loads (nothing is missed). */
    b->leading = elected(b);
    if (b->leading) {
        LOG(LOG_INFO, "beat active: firing schedules");
        if (!b->load.has_listen)
            beat_load_all(b);
        retention_start(&b->retention, l, &b->pg, RETENTION_FIRES);
    }
    return 0;
}

static void beat_stop(struct loop *l)
{
    struct beat *b = l->modules[MODULE_BEAT];
    if (!b || b->stopping)
        return;
    b->stopping = true;
    beat_load_stop(b);
    retention_stop(&b->retention);
    LOG(LOG_INFO, "beat stopping", L_INT("unsent_slots", b->fire.npend));
    beat_fire_drop(b);
    beat_fire_cancel(b);
    if (!b->fire.inflight)
        beat_close(b);
}

static void beat_cleanup(struct server *s)
{
    struct beat *b = s->loops[0].modules[MODULE_BEAT];
    if (!b)
        return;
    pg_pool_free(&b->pg);
    beat_fire_free(b);
    beat_set_free(&b->set);
    free(b->load.catchup);
    free(b);
    s->loops[0].modules[MODULE_BEAT] = NULL;
}

static const struct module_command beat_commands[] = {
    {"schedules",
     "periodic schedules: list, get NAME, create NAME --cron=EXPR --kind=K ..., update NAME ..., "
     "delete|enable|disable NAME",
     beat_cli_schedules},
    {NULL, NULL, NULL},
};

const struct module beat_module = {
    .name = "beat",
    .summary = "fires periodic schedules (cron, @every) exactly once per slot",
    .is_role = true,
    .unmet = beat_unmet,
    .init = beat_init,
    .start = beat_start,
    .stop = beat_stop,
    .wake = beat_wake,
    .cleanup = beat_cleanup,
    .commands = beat_commands,
};
