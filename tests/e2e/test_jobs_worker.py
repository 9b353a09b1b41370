"""
test_jobs_worker.py - the worker role against a real PostgreSQL: retries
with backoff and dead jobs, priorities and run_at, exactly-once execution
across two worker processes, leases (a killed worker's jobs rerun; a paused
worker cannot overwrite the rerun), and the SIGTERM drain with hand-back.
"""
import os
import re
import signal
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import (enqueue, http, log_time, pg_time, wait_until,  # noqa: E402
                     wait_worker_ready)

pytest_plugins = ["pgtools"]


def start_web(trireme, db, *flags):
    srv = trireme("--roles=web", *flags, env=db.env())
    srv.wait_log(r"database connected")
    return srv


def start_worker(trireme, db, *flags, threads=1, roles="worker"):
    srv = trireme(f"--roles={roles}", *flags, threads=threads, env=db.env())
    wait_worker_ready(srv, threads)
    return srv


def pid_of(worker_id: str) -> int:
    return int(worker_id.split(":")[1])


# --- 4. retries, backoff, dead, redrive ------------------------------------------

def test_failing_job_retries_with_backoff_then_dies(trireme, db):
    srv = start_worker(trireme, db, threads=2, roles="web,worker")
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 10, "fail": "boom"},
                             "max_attempts": 3})["id"]
    j = db.wait_status(jid, "dead", timeout=20)
    assert j["attempts"] == 3 and j["last_error"] == "boom", j
    assert j["finished_at"] is not None and j["worker_id"] is None and j["lease_until"] is None
    assert j["result"] is None

    fails = srv.wait_log(rf"job failed job_id={jid} kind=sleep attempt=\d", count=3)
    assert len(fails) == 3, fails
    for n, line in enumerate(fails, 1):
        assert f"attempt={n} max_attempts=3 error=boom will_retry={'true' if n < 3 else 'false'}" \
            in line, line
    t = [log_time(ln) for ln in fails]
    # 1 s then 2 s, each +-25%: at least 0.75 s and 1.5 s apart.
    assert t[1] - t[0] >= 0.7, f"retry 1 after {t[1] - t[0]:.3f}s: {fails}"
    assert t[2] - t[1] >= 1.4, f"retry 2 after {t[2] - t[1]:.3f}s: {fails}"
    assert t[2] - t[1] > t[1] - t[0], "backoff grows"
    assert t[2] - t[0] < 8, f"retries far slower than their backoff: {fails}"

    # Redrive: fresh attempts, runs again.
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/retry")
    assert r.status == 200, r
    assert r.json["status"] == "pending" and r.json["attempts"] == 0, r.json
    assert r.json["last_error"] is None and r.json["finished_at"] is None
    wait_until(lambda: db.job(jid)["attempts"] >= 1, 10, what="the redriven job runs again")
    srv.wait_log(rf"job failed job_id={jid} kind=sleep attempt=1 ", count=2)

    ok = enqueue(srv.port, {"kind": "noop"})["id"]
    db.wait_status(ok, "succeeded", timeout=10)
    r = http(srv.port, "POST", f"/v1/jobs/{ok}/retry")
    assert r.status == 409 and r.json["error"] == "conflict", r


def test_time_limit_stops_a_job_on_the_loops_timer(trireme, db):
    """A job past its timeout is asked to stop by the worker's timer (the job
    does not have to check a clock); the attempt fails with the kind's
    reason and is retried like any failure."""
    srv = start_worker(trireme, db, roles="web,worker")
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 60000}, "timeout": "300ms",
                             "max_attempts": 2})["id"]
    j = db.wait_status(jid, "dead", timeout=20)
    assert j["attempts"] == 2 and "stopped before the sleep ended" in j["last_error"], j
    assert len(srv.wait_log(rf"job reached its time limit, asking it to stop job_id={jid} "
                            r"timeout_ms=300", count=2)) == 2


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_idle_worker_sleeps(trireme, db):
    """With nothing to do, a worker waits for NOTIFY, the next due job or its
    poll: it does not spin claiming nothing."""
    srv = start_worker(trireme, db, threads=2)
    before = db.scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    time.sleep(0.5)
    c0 = cpu_seconds(srv.proc.pid)
    time.sleep(2.0)
    used = cpu_seconds(srv.proc.pid) - c0
    assert used < 0.4, f"an idle worker used {used:.2f}s of CPU in 2s"
    time.sleep(1.2)  # backends publish their statistics at most once a second
    commits = db.scalar("SELECT xact_commit FROM pg_stat_database "
                        "WHERE datname = current_database()") - before
    assert commits < 200, f"{commits} transactions in ~3.7s from an idle worker"
    # and it still reacts at once
    jid = db.scalar("INSERT INTO trireme.jobs (kind) VALUES ('noop') RETURNING id")
    db.wait_status(jid, "succeeded", timeout=5)


def test_retry_is_picked_up_when_due_even_if_the_failure_commits_late(trireme, db):
    """The worker learns when a retry is due from a query it sends when it
    goes idle. If the failed attempt's write commits after that query ran
    (here: a lock holds it back, as a busy row or connection would), the
    worker must still wake for the retry, not sleep until --poll-interval."""
    srv = start_worker(trireme, db, "--poll-interval=30s", roles="web,worker")
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 1500, "fail": "boom"},
                             "max_attempts": 2})["id"]
    db.wait_status(jid, "running", timeout=10)
    with db.session() as s:
        s.execute("BEGIN;")
        s.execute(f"SELECT id FROM trireme.jobs WHERE id = {jid} FOR UPDATE;")
        srv.wait_log(rf"job failed job_id={jid} kind=sleep attempt=1 ", timeout=10)
        time.sleep(0.5)  # the worker went idle and asked when work is due
        assert db.job(jid)["status"] == "running"
        s.execute("COMMIT;")
    t0 = time.monotonic()
    j = db.wait_status(jid, "pending", timeout=5)
    assert j["attempts"] == 1 and j["last_error"] == "boom", j
    j = db.wait_status(jid, "dead", timeout=10)
    assert j["attempts"] == 2, j
    took = time.monotonic() - t0
    assert took < 5, f"the retry due after ~1 s ran after {took:.1f}s"


def test_bad_payload_and_unknown_kind_fail_without_retry(trireme, db):
    srv = start_worker(trireme, db)
    bad = db.scalar("INSERT INTO trireme.jobs (kind, payload) VALUES ('sleep', '{\"ms\": \"x\"}') "
                    "RETURNING id")
    unknown = db.scalar("INSERT INTO trireme.jobs (kind) VALUES ('martian') RETURNING id")
    for jid in (bad, unknown):
        j = db.wait_status(jid, ("failed", "dead"), timeout=10)
        assert j["status"] == "failed" and j["attempts"] == 1, j
    assert "martian" in db.job(unknown)["last_error"]
    srv.wait_log(rf"job failed job_id={unknown} .*will_retry=false")


def test_sql_kind_runs_declared_statements(trireme, db, tmp_path):
    db.exec("CREATE TABLE public.e2e_exec (tag int NOT NULL)")
    stmts = tmp_path / "sql-jobs.txt"
    stmts.write_text("record: INSERT INTO public.e2e_exec (tag) VALUES ($1::int)\n"
                     "record_ret: INSERT INTO public.e2e_exec (tag) VALUES ($1::int) RETURNING tag\n"
                     "echo: SELECT $1::int AS n, $2::text AS s, $3::jsonb AS j\n"
                     "bump: UPDATE public.e2e_exec SET tag = tag + 100 WHERE tag = $1::int\n")
    srv = start_worker(trireme, db, f"--sql-jobs={stmts}", roles="web,worker")
    srv.wait_log(r"named SQL statements loaded .*count=4")
    jobs = enqueue(srv.port, [
        {"kind": "sql", "payload": {"statement": "record", "params": [1]}},
        {"kind": "sql", "payload": {"statement": "record_ret", "params": [2]}},
        {"kind": "sql", "payload": {"statement": "echo", "params": [7, "x", {"a": [1]}]}},
        {"kind": "sql", "payload": {"statement": "nope"}},
    ])["jobs"]
    ids = [j["id"] for j in jobs]
    for jid in ids[:3]:
        j = db.wait_status(jid, ("succeeded", "failed", "dead"), timeout=15)
        assert j["status"] == "succeeded", j
    assert db.job(ids[0])["result"] == []
    assert db.job(ids[1])["result"] == [{"tag": 2}]
    assert db.job(ids[2])["result"] == [{"n": 7, "s": "x", "j": {"a": [1]}}]
    j = db.wait_status(ids[3], ("failed", "dead"), timeout=15)
    assert j["status"] == "failed" and "nope" in j["last_error"], j
    bump = enqueue(srv.port, {"kind": "sql", "payload": {"statement": "bump", "params": [1]}})
    assert db.wait_status(bump["id"], ("succeeded", "dead"), timeout=15)["result"] == []
    assert sorted(r["tag"] for r in db.rows("SELECT tag FROM public.e2e_exec")) == [2, 101]


# --- 7. priorities and run_at ----------------------------------------------------

def test_high_priority_jobs_start_first(trireme, db):
    web = start_web(trireme, db)
    low = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 20},
                                                "priority": -5}] * 10)["jobs"]]
    high = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 20},
                                                 "priority": 10}] * 10)["jobs"]]
    start_worker(trireme, db, "--concurrency=1", "--batch-size=1")
    db.wait_all("status = 'succeeded'", 20, timeout=30)
    rows = {r["id"]: r for r in db.rows("SELECT id, started_at, finished_at FROM trireme.jobs")}
    last_high = max(pg_time(rows[i]["started_at"]) for i in high)
    first_low = min(pg_time(rows[i]["started_at"]) for i in low)
    assert last_high < first_low, "a low-priority job started before a high-priority one"
    # --concurrency=1: one at a time, so starts are at least a 20 ms sleep apart
    # (finished_at is when the batched completion was written, which may be later)
    order = sorted(rows.values(), key=lambda r: r["started_at"])
    for a, b in zip(order, order[1:]):
        assert pg_time(b["started_at"]) - pg_time(a["started_at"]) >= 0.015, (a, b)
    # equal priority: oldest run_at (then id) first
    assert [r["id"] for r in order] == high + low


def test_run_at_and_delay_are_honoured(trireme, db):
    srv = start_worker(trireme, db, threads=2, roles="web,worker")
    at = db.scalar("SELECT to_char((now() + interval '2 s') AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
    a = enqueue(srv.port, {"kind": "noop", "run_at": at})["id"]
    b = enqueue(srv.port, {"kind": "noop", "delay": 2})["id"]
    c = enqueue(srv.port, {"kind": "noop", "delay": "2s"})["id"]
    now = enqueue(srv.port, {"kind": "noop"})["id"]
    db.wait_status(now, "succeeded", timeout=10)
    # Until its run_at (by the database's clock) a job stays pending.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = db.rows(f"SELECT id, status, now() < run_at AS early FROM trireme.jobs "
                       f"WHERE id IN ({a}, {b}, {c})")
        assert all(r["status"] == "pending" for r in rows if r["early"]), rows
        if not any(r["early"] for r in rows):
            break
        time.sleep(0.1)
    assert pg_time(db.job(a)["run_at"]) == pg_time(at.replace("Z", "+00:00"))
    for jid in (a, b, c):
        j = db.wait_status(jid, "succeeded", timeout=10)
        run_at, started = pg_time(j["run_at"]), pg_time(j["started_at"])
        if jid != a:
            assert abs(run_at - pg_time(j["created_at"]) - 2.0) < 0.01, j
        assert started >= run_at, f"started {run_at - started:.3f}s early"
        assert started - run_at < 1.5, f"started {started - run_at:.3f}s after run_at"


# --- 8. two worker processes, exactly once ---------------------------------------

def test_two_workers_run_each_job_exactly_once(trireme, db, tmp_path):
    db.exec("CREATE TABLE public.e2e_exec (tag int NOT NULL)")
    stmts = tmp_path / "sql-jobs.txt"
    stmts.write_text("# e2e\nrecord: INSERT INTO public.e2e_exec (tag) VALUES ($1::int)\n")
    flags = (f"--sql-jobs={stmts}",)
    w1 = start_worker(trireme, db, *flags, threads=2)
    w2 = start_worker(trireme, db, *flags, threads=2)
    web = start_web(trireme, db)
    n = 5000
    ids = []
    for base in range(0, n, 1000):
        batch = [{"kind": "sql", "payload": {"statement": "record", "params": [i]}}
                 for i in range(base, base + 1000)]
        ids += [j["id"] for j in enqueue(web.port, batch)["jobs"]]
    assert len(set(ids)) == n
    db.wait_all("status = 'succeeded'", n, timeout=90, interval=0.5)
    assert db.count("status <> 'succeeded'") == 0, db.status_counts()
    got = db.rows("SELECT count(*) AS n, count(DISTINCT tag) AS d, min(tag) AS lo, "
                  "max(tag) AS hi FROM public.e2e_exec")[0]
    assert got == {"n": n, "d": n, "lo": 0, "hi": n - 1}, got
    assert db.count("attempts <> 1") == 0, "a job ran twice"
    assert db.count("result <> '[]'::jsonb") == 0
    by_pid = {r["pid"]: r["n"] for r in db.rows(
        "SELECT split_part(worker_id, ':', 2)::int AS pid, count(*) AS n "
        "FROM trireme.jobs GROUP BY 1")}
    assert set(by_pid) == {w1.proc.pid, w2.proc.pid}, by_pid
    assert all(v > 0 for v in by_pid.values()), by_pid


# --- 9. leases: a killed worker, a paused worker ---------------------------------

def test_killed_workers_jobs_rerun_after_lease_expiry(trireme, db):
    web = start_web(trireme, db)
    ids = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 3000}}] * 3)
           ["jobs"]]
    a = start_worker(trireme, db, "--lease=2s")
    db.wait_all("status = 'running' AND attempts = 1", 3, timeout=10, interval=0.05)
    a.kill()
    a.expected_rc = None
    killed_at = time.monotonic()
    assert db.count("status = 'running'") == 3

    b = start_worker(trireme, db, "--lease=2s")
    db.wait_all("status = 'succeeded'", 3, timeout=25)
    took = time.monotonic() - killed_at
    assert took < 15, f"the rerun took {took:.1f}s"
    for j in db.rows("SELECT * FROM trireme.jobs ORDER BY id"):
        assert j["status"] == "succeeded" and j["attempts"] == 2, j
        assert pid_of(j["worker_id"]) == b.proc.pid, j
        assert j["result"] == {"slept_ms": 3000}
    assert sorted(r["id"] for r in db.rows("SELECT id FROM trireme.jobs")) == sorted(ids)
    b.wait_log(r"lease expired, job returned to the queue", count=1)


def test_paused_worker_cannot_overwrite_the_rerun(trireme, db):
    web = start_web(trireme, db)
    jid = enqueue(web.port, {"kind": "sleep", "payload": {"ms": 3000}})["id"]
    a = start_worker(trireme, db, "--lease=2s")
    db.wait_status(jid, "running", timeout=10)
    a.signal(signal.SIGSTOP)
    try:
        first = db.job(jid)
        assert pid_of(first["worker_id"]) == a.proc.pid and first["attempts"] == 1
        b = start_worker(trireme, db, "--lease=2s")
        done = db.wait_status(jid, "succeeded", timeout=25)
        assert pid_of(done["worker_id"]) == b.proc.pid and done["attempts"] == 2, done
        b.wait_log(r"lease expired, job returned to the queue")
    finally:
        a.signal(signal.SIGCONT)
    a.wait_log(r"completion refused: job no longer held by this worker|job lease lost",
               timeout=10)
    time.sleep(1.0)  # time for anything else the resumed worker might write
    after = db.job(jid)
    assert after == done, f"the paused worker changed the rerun's row:\n{done}\n{after}"
    refused = re.search(rf"completion refused: job no longer held by this worker job_id={jid}"
                        rf" attempt=1", a.log)
    lost = re.search(rf"job lease lost .*job_id={jid}\b", a.log)
    assert refused or lost, a.log[-2000:]
    # The resumed worker is healthy: it runs new work.
    nxt = enqueue(web.port, {"kind": "noop"})["id"]
    db.wait_status(nxt, "succeeded", timeout=10)


# --- 11. SIGTERM drain with hand-back --------------------------------------------

def test_sigterm_hands_unfinished_jobs_back(trireme, db):
    web = start_web(trireme, db)
    ids = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 5000}}] * 3)
           ["jobs"]]
    a = start_worker(trireme, db, "--grace=2s", threads=2)
    db.wait_all("status = 'running'", 3, timeout=10, interval=0.05)
    t0 = time.monotonic()
    a.signal(signal.SIGTERM)
    rc = a.wait(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0, a.log[-3000:]
    assert took < 4, f"drain took {took:.1f}s with --grace=2s"
    a.wait_log(r"unfinished jobs handed back to the queue")
    for j in db.rows("SELECT * FROM trireme.jobs"):
        assert j["status"] == "pending" and j["attempts"] == 0, j
        assert "handed back" in j["last_error"], j
        assert j["worker_id"] is None and j["lease_until"] is None, j

    b = start_worker(trireme, db, threads=2)
    db.wait_all("status = 'running'", 3, timeout=10)
    db.wait_all("status = 'succeeded'", 3, timeout=20)
    for j in db.rows("SELECT * FROM trireme.jobs"):
        assert j["attempts"] == 1 and pid_of(j["worker_id"]) == b.proc.pid, j
    assert sorted(r["id"] for r in db.rows("SELECT id FROM trireme.jobs")) == sorted(ids)


def test_sigterm_lets_short_jobs_finish(trireme, db):
    web = start_web(trireme, db)
    jid = enqueue(web.port, {"kind": "sleep", "payload": {"ms": 800}})["id"]
    a = start_worker(trireme, db, "--grace=10s")
    db.wait_status(jid, "running", timeout=10)
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=10) == 0
    a.wait_log(r"worker drained")
    j = db.job(jid)
    assert j["status"] == "succeeded" and j["attempts"] == 1, j
