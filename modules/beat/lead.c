/*
 * lead.c - whether this beat fires: with --leader, only while it holds the
 * "beat" election; without, always. A standby keeps its connections and
 * its LISTEN but loads and fires nothing; the slots it had sent are
 * settled by their keys, and the new leader fires what is still unhandled.
 */
#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/beat/beat.h"
#include "modules/leader/leader.h"

bool beat_elected(struct beat *b)
{
    struct server *s = b->loop->srv;
    return !leader_election_of(s, ELECTION_BEAT) || leader_election_is(s, ELECTION_BEAT);
}

void beat_lead_check(struct beat *b)
{
    bool now = beat_elected(b);
    if (now == b->leading || b->stopping)
        return;
    b->leading = now;
    if (now) {
        LOG(LOG_INFO, "beat active: firing schedules");
        beat_load_all(b);
        retention_start(&b->retention, b->loop, &b->pg, RETENTION_FIRES);
        return;
    }
    LOG(LOG_INFO, "beat standby: not firing");
    retention_stop(&b->retention);
    beat_due_stop(b);
    beat_fire_cancel(b);
    beat_fire_drop(b);
    beat_set_clear(&b->set);
    beat_load_forget(b);
}
