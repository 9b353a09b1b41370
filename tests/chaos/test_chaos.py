"""
test_chaos.py - faults injected into real servers under a steady job load,
each followed by the same invariants (chaostools.check): no acknowledged
job lost, no `sql` effect applied twice, no more jobs started twice than
could have been in flight at the fault, and a recovery time measured and
bounded (generously: these are shared CI machines).

Scenarios (each runs CHAOS_RUNS times; CI runs each once):

  pg-restart-fast/immediate  pg_ctl restart -m fast / -m immediate
  pg-terminate               pg_terminate_backend of every connection, 3 rounds
  kill9-worker               kill -9 of one of two worker processes
  sigstop-worker             SIGSTOP of a worker past its lease, then SIGCONT
  redis-aof-restart          kill -9 of Redis (AOF, fsync always), restarted
  sigterm-drain              SIGTERM of the worker with jobs in flight
  web-pg-down                PostgreSQL stopped then started under the web role
  beat-leader-kill           kill -9 of the beat leader, again and again

Every PostgreSQL-backend scenario runs the web role in a process of its own,
so the load keeps going (and gets 503s, retried) while workers are hurt.
"""
from __future__ import annotations

import re
import signal
import time

import pytest

pytest.register_assert_rewrite("chaostools")
from beattools import add_schedule, fires  # noqa: E402
from chaostools import (RUNS, SCALE, Load, PgCount, RedisCount, check, pg_ctl,  # noqa: E402
                        recovery, setup_db)
from pgtools import http, wait_db_connected, wait_until, wait_worker_ready  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

JOBS = int(300 * SCALE)
SECONDS = 4.0 * SCALE ** 0.5
THREADS = 2  # worker loops per process
CONC = 8  # --concurrency (per process, shared by its loops)
CAPACITY = CONC  # jobs one worker process can have in flight (--concurrency is per process)
DONE_WITHIN = 90  # after the load ends, every job must finish within this
runs = pytest.mark.parametrize("run", range(RUNS))


def pg_web(trireme, db, stmts):
    web = trireme("--roles=web", f"--sql-jobs={stmts}", threads=1, env=db.env())
    wait_db_connected(web)
    return web


def pg_worker(trireme, db, stmts, *flags, lease="3s"):
    w = trireme("--roles=worker", f"--sql-jobs={stmts}", f"--concurrency={CONC}",
                f"--lease={lease}", *flags, threads=THREADS, env=db.env())
    wait_worker_ready(w, THREADS)
    return w


def first_after(c: PgCount, ids, t: float) -> float | None:
    later = [f for f in c.finished_at(ids) if f > t]
    return min(later) if later else None


def finish(record, c, load, scenario, **extra):
    """Wait for every acknowledged job, count, record, check."""
    c.wait_done(load.ids, DONE_WITHIN)
    rec = {"scenario": scenario, **c.counts(load), **extra}
    record(rec)
    check(rec)
    return rec


# --- PostgreSQL restarted under load ----------------------------------------

@runs
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_pg_restart(trireme, db, tmp_path, record, mode, run):
    """Recovery: from pg_ctl restart to the first job completed after it returned."""
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    pg_worker(trireme, db, stmts)
    c = PgCount(db)
    load = Load(web.port, JOBS, SECONDS).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running()
    t_fault = time.time()
    pg_ctl("-m", mode, "restart")
    t_back = time.time()
    load.join()
    c.wait_done(load.ids, DONE_WITHIN)
    first = first_after(c, load.ids, t_back)
    assert first is not None, "no job completed after the restart"
    finish(record, c, load, f"pg-restart-{mode}", in_flight=len(in_flight),
           dup_bound=CAPACITY, recovery_s=first - t_fault, refused=load.refused)


# --- every connection terminated -----------------------------------------------

def terminate_all(db) -> int:
    return int(db.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                         "AND backend_type = 'client backend'"))


@runs
def test_pg_terminate_backend(trireme, db, tmp_path, record, run):
    """Every client connection of the database (workers' pools and LISTENs,
    the web role's) terminated three times 0.3 s apart. Recovery: from the
    first round to the last job that was running then finished."""
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    w = pg_worker(trireme, db, stmts)
    c = PgCount(db)
    load = Load(web.port, JOBS, SECONDS).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running()
    t_fault = time.time()
    killed = 0
    for _ in range(3):
        killed += terminate_all(db)
        time.sleep(0.3)
    assert killed >= 3, "no connection was terminated"
    load.join()
    c.wait_done(load.ids, DONE_WITHIN)
    # the LISTEN is back: a job enqueued now is picked up without a poll
    w.wait_log(r"worker listening for new jobs", count=THREADS + 1, timeout=20)
    finish(record, c, load, "pg-terminate", in_flight=len(in_flight), dup_bound=CAPACITY,
           recovery_s=recovery(c.finished_at(in_flight), t_fault), note=f"terminated={killed}")


# --- worker processes killed and stopped -----------------------------------

@runs
def test_kill_9_one_of_two_workers(trireme, db, tmp_path, record, run):
    """Recovery: from the kill to the last of the killed worker's running
    jobs finished by the other (the lease, 3 s, is how a dead worker is
    noticed, so it is at least that)."""
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    a = pg_worker(trireme, db, stmts)
    pg_worker(trireme, db, stmts)
    c = PgCount(db)
    load = Load(web.port, JOBS, SECONDS, sleep_ms=(200, 600)).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running(a.proc.pid)
    t_fault = time.time()
    a.proc.kill()
    a.expected_rc = None
    a.wait(10)
    load.join()
    c.wait_done(load.ids, DONE_WITHIN)
    assert in_flight, "the killed worker ran nothing at the kill"
    finish(record, c, load, "kill9-worker", in_flight=len(in_flight), dup_bound=CAPACITY,
           recovery_s=recovery(c.finished_at(in_flight), t_fault))


@runs
def test_sigstop_worker_past_its_lease(trireme, db, tmp_path, record, run):
    """One of two workers stopped for 2.5 leases, then continued: the other
    takes its jobs over after the lease; what the stopped one finishes late
    is refused (fencing), so nothing counts twice and no sql effect repeats.
    Recovery: from SIGSTOP to the last of its running jobs finished."""
    lease = 2.0
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    a = pg_worker(trireme, db, stmts, lease="2s")
    pg_worker(trireme, db, stmts, lease="2s")
    c = PgCount(db)
    load = Load(web.port, JOBS, SECONDS, sleep_ms=(200, 600)).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running(a.proc.pid)
    t_fault = time.time()
    a.signal(signal.SIGSTOP)
    try:
        time.sleep(2.5 * lease)
    finally:
        a.signal(signal.SIGCONT)
    load.join()
    c.wait_done(load.ids, DONE_WITHIN)
    assert in_flight, "the stopped worker ran nothing at the stop"
    time.sleep(0.5)  # its late completions reach the log
    refused = len(re.findall(r"completion refused", a.log))
    finish(record, c, load, "sigstop-worker", in_flight=len(in_flight), dup_bound=CAPACITY,
           recovery_s=recovery(c.finished_at(in_flight), t_fault), note=f"refused={refused}")
    assert a.running, "SIGCONT did not bring the worker back"


# --- Redis restarted (AOF) ----------------------------------------------------

def fill(r: Redis, keys: int):
    """Data that makes the AOF take a moment to load, as a real one would
    (Redis answers LOADING meanwhile)."""
    out = r.cli("EVAL", f"for i=1,{keys} do redis.call('SET','chaos:fill:'..i,"
                "string.rep('x',100)) end return 1", "0")
    assert out == "1", out


@runs
def test_redis_aof_restart(trireme, db, tmp_path, record, run):
    """kill -9 of Redis (appendonly, fsync always: nothing acknowledged is
    lost), started again 0.5 s later. Jobs finished while it was down or
    loading are recorded once it answers, not a lease later. Recovery: from
    the kill to the last job running then finished; bounded well below the
    10 s lease."""
    lease = 10.0
    stmts = setup_db(db, tmp_path)
    r = Redis(tmp_path, aof=True)
    try:
        fill(r, 200_000)
        env = db.env(REDIS_URL=r.url, QUEUE_BACKEND="redis")
        web = trireme("--roles=web", f"--sql-jobs={stmts}", threads=1, env=env)
        w = trireme("--roles=worker", f"--sql-jobs={stmts}", f"--concurrency={CONC}",
                    "--lease=10s", threads=THREADS, env=env)
        w.wait_log(r"worker listening for new jobs", count=THREADS, timeout=15)
        c = RedisCount(web.port)
        load = Load(web.port, JOBS, SECONDS).start()
        load.wait_started(JOBS // 2)
        in_flight = c.running()
        t_fault = time.time()
        r.kill()
        time.sleep(0.5)
        r.start()
        load.join()
        c.wait_done(load.ids, DONE_WITHIN)
        loading = len(re.findall(r"LOADING", w.log))
        rec = {"scenario": "redis-aof-restart", **c.counts(load, db), "in_flight": len(in_flight),
               "dup_bound": CAPACITY, "recovery_s": recovery(c.finished_at(in_flight), t_fault),
               "note": f"LOADING replies={loading}"}
        record(rec)
        check(rec)
        assert rec["recovery_s"] < lease / 2, f"re-delivery waited for the lease: {rec}"
    finally:
        for s in (locals().get("w"), locals().get("web")):
            if s is not None and s.running:
                s.stop()
        r.stop()


# --- SIGTERM drain -------------------------------------------------------------

@runs
def test_sigterm_drain(trireme, db, tmp_path, record, run):
    """SIGTERM with jobs running (--grace=2s): short jobs finish, jobs longer
    than the grace are handed back with their attempt returned; a new worker
    runs them at once, not after the 20 s lease. No job starts twice.
    Recovery: from SIGTERM to the worker's exit."""
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    a = pg_worker(trireme, db, stmts, "--grace=2s", lease="20s")
    c = PgCount(db)
    long_ids = [j["id"] for j in http(web.port, "POST", "/v1/jobs",
                                      [{"kind": "sleep", "payload": {"ms": 6000}}] * 3).json["jobs"]]
    load = Load(web.port, JOBS, SECONDS).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running(a.proc.pid)
    assert set(long_ids) <= set(in_flight), "the long jobs are not running"
    t_fault = time.time()
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=20) == 0, a.log[-3000:]
    t_exit = time.time()
    a.wait_log(r"jobs handed back")
    b = pg_worker(trireme, db, stmts, lease="20s")
    load.join()
    c.wait_done(load.ids + long_ids, DONE_WITHIN)
    long_done = c.finished_at(long_ids)
    assert len(long_done) == 3 and max(long_done) - t_exit < 15, \
        "handed-back jobs waited for their lease"
    assert b.running
    load.ids += long_ids
    finish(record, c, load, "sigterm-drain", in_flight=len(in_flight), dup_bound=0,
           recovery_s=t_exit - t_fault)


# --- the web role while PostgreSQL is down ----------------------------------------

@runs
def test_web_role_with_postgres_stopped(trireme, db, tmp_path, record, run):
    """PostgreSQL stopped for 2 s under the enqueue load: every answer is a
    201 or a 503 with Retry-After, each within 1 s (fail fast; the target is
    50 ms); enqueues succeed again once it is back. Recovery: from pg_ctl
    start returning to the first 201."""
    stmts = setup_db(db, tmp_path)
    web = pg_web(trireme, db, stmts)
    pg_worker(trireme, db, stmts)
    c = PgCount(db)
    load = Load(web.port, JOBS, SECONDS).start()
    load.wait_started(JOBS // 2)
    in_flight = c.running()
    pg_ctl("-m", "fast", "stop")
    t_down = time.time()
    try:
        time.sleep(2.0)
    finally:
        pg_ctl("start")
    t_up = time.time()
    load.join()
    bad = [a for a in load.answers if a[1] not in (201, 503)]
    assert not bad, bad[:5]
    refused = [a for a in load.answers if a[1] == 503]
    assert refused, "no request was refused while PostgreSQL was down"
    assert all(a[3] for a in refused), "a 503 without Retry-After"
    during = [a for a in refused if t_down <= a[0] <= t_up]
    slowest = max(a[2] for a in during) if during else 0.0
    assert slowest < 1.0, f"a 503 took {slowest:.3f}s while PostgreSQL was known down"
    ok_after = [a[0] for a in load.answers if a[1] == 201 and a[0] > t_up]
    assert ok_after, "no enqueue succeeded after PostgreSQL came back"
    finish(record, c, load, "web-pg-down", in_flight=len(in_flight), dup_bound=CAPACITY,
           recovery_s=min(ok_after) - t_up,
           note=f"503s={len(refused)} slowest_503_ms={slowest * 1000:.1f}")


# --- beat leader kills -------------------------------------------------------------

def leading(srv) -> bool:
    log = srv.log
    a = log.rfind("Acquired leader lock election=beat")
    return srv.running and a >= 0 and a > log.rfind("Lost leader lock election=beat")


@runs
def test_beat_leader_kills(trireme, beat_db, record, run):
    """Two beats (PostgreSQL election, 1 s TTL), schedules @every 1s with
    fire_all; the leader is killed with SIGKILL every 3 s and replaced.
    Every slot from first to last has exactly one job. Recovery: from a kill
    to the next slot fired (by the new leader), the worst of the kills."""
    db = beat_db
    kills = max(2, int(2 * SCALE))
    names = [f"chaos{i}" for i in range(3)]

    def beat():
        s = trireme("--roles=beat", "--leader=postgres", "--leader-ttl=1s", threads=1,
                    env=db.env())
        s.wait_log(r"leader election started election=beat", timeout=10)
        return s

    beats = [beat(), beat()]
    wait_until(lambda: sum(leading(s) for s in beats) == 1, 15, what="one beat leader")
    for n in names:
        add_schedule(db, n, "@every 1s", queue=f"beat_{n}", misfire="fire_all")
    wait_until(lambda: all(len(fires(db, n)) >= 2 for n in names), 15, what="firing")
    worst = 0.0
    for _ in range(kills):
        time.sleep(3.0)
        old = wait_until(lambda: next((s for s in beats if leading(s)), None), 15,
                         what="a leader to kill")
        t_kill = time.time()
        old.proc.send_signal(signal.SIGKILL)
        old.expected_rc = None
        old.wait(10)
        beats.remove(old)
        beats.append(beat())
        q = f"SELECT extract(epoch FROM min(fired_at))::float8 AS at FROM trireme.schedule_fires " \
            f"WHERE fired_at > to_timestamp({t_kill})"
        nxt = wait_until(lambda: db.scalar(q), 20, what="a slot fired after the kill")
        worst = max(worst, float(nxt) - t_kill)
    time.sleep(2.0)
    for s in beats:
        assert s.stop() == 0
    slots = lost = dup = 0
    for n in names:
        rows = fires(db, n)
        ss = [r["slot"] for r in rows]
        slots += len(ss)
        lost += sum(b - a - 1 for a, b in zip(ss, ss[1:]))
        ids = [r["job_id"] for r in rows]
        lost += sum(1 for i in ids if not i)
        dup += len(ids) - len(set(ids)) + max(0, db.count(f"queue = 'beat_{n}'") - len(ss))
    rec = {"scenario": "beat-leader-kill", "jobs": slots, "lost": lost, "duplicated": dup,
           "sql_dup": 0, "in_flight": 0, "dup_bound": 0, "recovery_s": worst,
           "note": f"kills={kills}"}
    record(rec)
    check(rec)
