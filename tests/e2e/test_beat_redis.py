"""
test_beat_redis.py - beat on --queue-backend=redis, against real Redis and
PostgreSQL servers: slots' jobs go to Redis (where Redis-backend workers
run them), each with the unique key beat:<schedule id>:<slot> and recorded
in trireme.schedule_fires; exactly one Redis job per slot through repeated
kill -9 failovers of two beats; slots due while Redis is down fire once it
is back; skip_if_running reads the previous job's status from its hash;
jitter moves the job's run_at, never the slot.

Each test starts its own redis-server (test_redis_queue.Redis), so a restart
or a count of keys sees only its own jobs.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

pytest.register_assert_rewrite("pgtools", "beattools")
from beattools import add_schedule, fired_count, fires, gaps  # noqa: E402
from pgtools import API_KEY, get_job, http, wait_until  # noqa: E402
from test_beat_failover import pg_ctl  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

pytest_plugins = ["pgtools", "beattools"]


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path, aof=True)  # AOF: a restart keeps the jobs (and their unique keys)
    yield r
    r.stop()


def env(db, redis) -> dict[str, str]:
    return db.env(REDIS_URL=redis.url, QUEUE_BACKEND="redis", TRIREME_API_KEYS=API_KEY)


def start(trireme, db, redis, *flags, roles="beat", wait_loaded=True):
    srv = trireme(f"--roles={roles}", *flags, threads=1, env=env(db, redis))
    if wait_loaded:
        srv.wait_log(r"beat: schedules loaded", timeout=15)
    return srv


def job_hash(redis, jid) -> dict:
    out = redis.cli("HGETALL", f"trireme:job:{jid}").splitlines()
    return dict(zip(out[0::2], out[1::2]))


def check_slots_in_redis(db, redis, name: str, queue: str) -> list[dict]:
    """Every handled slot of `name` has one job, and that job is in Redis
    under the slot's unique key; the queue's stream holds exactly those."""
    rows = fires(db, name)
    slots = [r["slot"] for r in rows]
    assert rows and not gaps(slots), (name, gaps(slots))
    ids = [r["job_id"] for r in rows]
    assert all(ids) and len(set(ids)) == len(ids), (name, rows)
    sid = db.scalar(f"SELECT id FROM trireme.schedules WHERE name = '{name}'")
    for r in rows:
        h = job_hash(redis, r["job_id"])
        assert h.get("unique_key") == f"beat:{sid}:{r['slot']}", (name, r, h)
        assert h.get("queue") == queue, (name, r, h)
        assert redis.cli("GET", f"trireme:uniq:beat:{sid}:{r['slot']}") == str(r["job_id"])
    # No job without its slot row (nor a second one for a slot): each job
    # was added to its queue's stream once, and nothing else was.
    assert int(redis.cli("XLEN", f"trireme:q:{queue}")) == len(rows), name
    assert db.count(f"queue = '{queue}'") == 0, "a beat job went to PostgreSQL"
    return rows


def test_fires_into_redis_and_a_redis_worker_runs_the_jobs(trireme, beat_db, redis):
    add_schedule(beat_db, "r-tick", "@every 1s", queue="beat_rtick")
    srv = start(trireme, beat_db, redis, "--queues=beat_rtick", roles="web,worker,beat")
    srv.wait_log(r"Sending due task r-tick slot=\S+ job=\d+", timeout=10, count=3)
    wait_until(lambda: fired_count(beat_db, "r-tick") >= 3, 10, what="three slots")
    rows = fires(beat_db, "r-tick")
    for r in rows[:3]:
        wait_until(lambda: get_job(srv.port, r["job_id"])["status"] == "succeeded", 10,
                   what=f"job {r['job_id']} succeeded")
        j = get_job(srv.port, r["job_id"])
        assert (j["kind"], j["queue"]) == ("noop", "beat_rtick"), j
    assert srv.stop() == 0
    rows = fires(beat_db, "r-tick")
    assert all(r["reason"] == "due" for r in rows[1:]), rows
    sid = beat_db.scalar("SELECT id FROM trireme.schedules WHERE name = 'r-tick'")
    last = beat_db.rows(f"SELECT extract(epoch FROM last_fire)::bigint AS lf, last_job_id "
                        f"FROM trireme.schedules WHERE id = {sid}")[0]
    assert (last["lf"], last["last_job_id"]) == (rows[-1]["slot"], rows[-1]["job_id"])
    assert beat_db.count("queue = 'beat_rtick'") == 0, "a beat job went to PostgreSQL"
    for r in rows:
        h = job_hash(redis, r["job_id"])
        assert h.get("unique_key") == f"beat:{sid}:{r['slot']}", (r, h)
        assert h.get("status") in ("pending", "running", "succeeded"), h


def test_jitter_delays_run_at_but_not_the_slot(trireme, beat_db, redis):
    add_schedule(beat_db, "r-jitter", "@every 1s", queue="beat_rjitter", jitter_ms=900)
    srv = start(trireme, beat_db, redis)
    wait_until(lambda: fired_count(beat_db, "r-jitter") >= 6, 15, what="six slots")
    assert srv.stop() == 0
    rows = fires(beat_db, "r-jitter")
    assert not gaps([r["slot"] for r in rows])
    offsets = []
    for r in rows:
        h = job_hash(redis, r["job_id"])
        offsets.append(int(h["run_at"]) - r["slot"] * 1000)
    assert all(0 <= o <= 900 for o in offsets), offsets
    assert len(set(offsets)) > 1, offsets  # drawn per slot, not one constant


def test_skip_if_running_reads_the_previous_jobs_redis_status(trireme, beat_db, redis):
    """Each job sleeps 2.5 s on a 1 s schedule: slots whose previous job is
    pending or running in Redis are recorded as skipped, the others fire."""
    add_schedule(beat_db, "r-slow", "@every 1s", kind="sleep", queue="beat_rslow",
                 payload=json.dumps({"ms": 2500}), overlap="skip_if_running")
    srv = start(trireme, beat_db, redis, "--queues=beat_rslow", roles="worker,beat")
    srv.wait_log(r"Skipping due task r-slow slot=\S+ reason=\S+.* running_job=\d+", timeout=15,
                 count=2)
    wait_until(lambda: sum(1 for r in fires(beat_db, "r-slow") if r["job_id"]) >= 3, 20,
               what="three slow jobs fired")
    assert srv.stop() == 0
    rows = fires(beat_db, "r-slow")
    assert not gaps([r["slot"] for r in rows])
    fired = [r for r in rows if r["job_id"]]
    assert sum(1 for r in rows if r["reason"] == "overlap" and r["job_id"] is None) >= 2
    # A job fires only after the one before it finished: never two at once.
    hashes = [job_hash(redis, r["job_id"]) for r in fired]
    for prev, nxt in zip(hashes, hashes[1:]):
        assert prev.get("finished_at"), prev
        assert int(nxt["created_at"]) >= int(prev["finished_at"]), (prev, nxt)


def test_a_slot_enqueued_but_not_recorded_keeps_its_job(trireme, beat_db, redis):
    """What a beat killed between its two steps leaves: a job in Redis under
    the slot's unique key and no schedule_fires row. The beat that fires the
    slot next records that job and makes none."""
    sid = add_schedule(beat_db, "r-crash", "@every 1s", queue="beat_rcrash", enabled=False)
    web = trireme("--roles=web", threads=1, env=env(beat_db, redis))
    slot = int(time.time()) + 4
    r = http(web.port, "POST", "/v1/jobs", {"kind": "noop", "queue": "beat_rcrash",
                                            "unique_key": f"beat:{sid}:{slot}"})
    assert r.status == 201, r
    orphan = r.json["id"]
    beat_db.exec(f"UPDATE trireme.schedules SET enabled = true WHERE id = {sid}")
    srv = start(trireme, beat_db, redis)
    wait_until(lambda: fired_count(beat_db, "r-crash") and
               max(x["slot"] for x in fires(beat_db, "r-crash")) >= slot + 1, 15,
               what="the slot and the one after it fired")
    srv.wait_log(rf"the slot's job is already in Redis; recording that one schedule_id={sid} "
                 rf"slot=\S+ job={orphan}", timeout=1)
    assert srv.stop() == 0
    rows = check_slots_in_redis(beat_db, redis, "r-crash", "beat_rcrash")
    assert [x["job_id"] for x in rows if x["slot"] == slot] == [orphan], rows


SCHEDULES = 6
RUN_SECONDS = 24
KILL_EVERY = 4.0


def leading(srv) -> bool:
    log = srv.log
    a = log.rfind("Acquired leader lock election=beat")
    return srv.running and a >= 0 and a > log.rfind("Lost leader lock election=beat")


def test_two_beats_kill_9_leader_every_slot_one_redis_job(trireme, beat_db, redis):
    """Two beats on the Redis backend (Redis lease), the leader killed -9
    every few seconds and replaced, over >= 100 one-second slots: every slot
    has exactly one job in Redis, no gaps. A leader killed between its
    Redis enqueue and its PostgreSQL record leaves a job the next leader
    finds again by its unique key."""
    def beat():
        srv = start(trireme, beat_db, redis, "--leader=redis", "--leader-ttl=1s",
                    wait_loaded=False)
        srv.wait_log(r"leader election started election=beat", timeout=10)
        return srv

    beats = [beat(), beat()]
    wait_until(lambda: sum(leading(s) for s in beats) == 1, 15, what="one beat leader")
    names = [f"rk{i}" for i in range(SCHEDULES)]
    for n in names:
        add_schedule(beat_db, n, "@every 1s", queue=f"beat_{n}", misfire="fire_all")
    wait_until(lambda: all(fired_count(beat_db, n) >= 2 for n in names), 15,
               what="every schedule firing")
    kills = 0
    t_end = time.monotonic() + RUN_SECONDS
    while time.monotonic() < t_end:
        time.sleep(KILL_EVERY)
        leaders = [s for s in beats if leading(s)]
        if not leaders:
            continue
        old = leaders[0]
        old.proc.send_signal(signal.SIGKILL)
        old.expected_rc = None
        old.wait(10)
        kills += 1
        beats.remove(old)
        beats.append(beat())
    wait_until(lambda: sum(leading(s) for s in beats) == 1, 15, what="a leader at the end")
    time.sleep(2.0)
    for s in beats:
        assert s.stop() == 0
    assert kills >= RUN_SECONDS // KILL_EVERY - 2, kills
    total = sum(len(check_slots_in_redis(beat_db, redis, n, f"beat_{n}")) for n in names)
    assert total >= 100, total


def test_slots_due_while_redis_is_down_fire_once_it_is_back(trireme, beat_db, redis):
    add_schedule(beat_db, "r-outage", "@every 1s", queue="beat_routage")
    srv = start(trireme, beat_db, redis)
    wait_until(lambda: fired_count(beat_db, "r-outage") >= 2, 10, what="firing")
    t_down = time.time()
    redis.kill()
    try:
        time.sleep(4.5)
        srv.wait_log(r"redis connection lost.*client=beat|client=beat.*connection lost|"
                     r"enqueueing due slots in Redis failed", timeout=10)
    finally:
        redis.start()
    t_back = time.time()
    wait_until(lambda: max(r["slot"] for r in fires(beat_db, "r-outage")) >= t_back + 2, 30,
               what="firing after Redis is back")
    assert srv.stop() == 0
    # No gaps from before the outage to after it: each slot due while Redis
    # was down fired once it was back.
    rows = check_slots_in_redis(beat_db, redis, "r-outage", "beat_routage")
    assert rows[0]["slot"] < t_down - 1 and rows[-1]["slot"] > t_back + 1, (t_down, t_back, rows)
    assert sum(1 for r in rows if t_down < r["slot"] < t_back) >= 3, rows
    srv.wait_log(r"beat: Redis is unreachable; due slots wait for it", timeout=1)


def test_slots_due_while_postgres_is_down_are_recorded_once_it_is_back(trireme, beat_db, redis):
    """PostgreSQL stopped under a beat on Redis, longer than the record
    statement's 10 s deadline: the jobs are enqueued in Redis (and run, and
    expire: --result-ttl=1s) but cannot be recorded; the record is retried
    with the same job ids, not by enqueueing again (which, their unique keys
    gone with their hashes, would make second jobs). Once the database is
    back every slot has one job, and Redis made no other."""
    data_dir = os.environ.get("TRIREME_TEST_PG_DIR")
    if not data_dir:
        pytest.fail("TRIREME_TEST_PG_DIR is not set: this test stops the test PostgreSQL "
                    "(tools/test.sh sets it)")
    add_schedule(beat_db, "r-pgdown", "@every 1s", queue="beat_rpgdown")
    srv = start(trireme, beat_db, redis, "--queues=beat_rpgdown", "--result-ttl=1s",
                roles="worker,beat")
    wait_until(lambda: fired_count(beat_db, "r-pgdown") >= 2, 10, what="firing")
    t_down = time.time()
    pg_ctl(data_dir, "-m", "fast", "stop")
    try:
        srv.wait_log(r"beat: recording due slots failed; retrying the record", timeout=20)
    finally:
        pg_ctl(data_dir, "start")
    t_back = time.time()
    wait_until(lambda: max(r["slot"] for r in fires(beat_db, "r-pgdown")) >= t_back + 2, 30,
               what="firing after the restart")
    assert srv.stop() == 0
    rows = fires(beat_db, "r-pgdown")
    slots = [r["slot"] for r in rows]
    assert not gaps(slots), gaps(slots)
    ids = [r["job_id"] for r in rows]
    assert all(ids) and len(set(ids)) == len(ids), rows
    assert sum(1 for r in rows if t_down < r["slot"] < t_back) >= 5, rows
    # Every job this Redis made ran (noop, worker here) and is one of the
    # slots'. (Ids are not dense, they follow the clock: docs/reliability.md,
    # so INCR trireme:seq no longer counts the jobs.)
    ran = [int(x) for x in re.findall(r"job completed job_id=(\d+)", srv.log)]
    assert set(ran) <= set(ids) and len(set(ran)) >= len(rows) - 1, (ran, rows)
    assert srv.log.count("job completed") >= len(rows) - 1
