"""
test_worker_batches.py - claims beyond --concurrency (core.h): jobs that
finish within their own start (noop) are claimed a whole --batch-size at a
time, however few the slots; slow jobs such a batch brings wait parked,
leased but unstarted with their time limit not counting, never more than
--concurrency running; a drain hands parked jobs straight back. PostgreSQL
backend; the Redis backend shares the core and gets one test of its own.
"""
import re
import signal
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, pg_time, wait_worker_ready  # noqa: E402

pytest_plugins = ["pgtools"]


def insert(db, n, kind, payload="{}", timeout_ms=None):
    db.rows(f"INSERT INTO trireme.jobs (kind, payload, timeout_ms) SELECT '{kind}', "
            f"'{payload}', {timeout_ms or 'NULL'} FROM generate_series(1, {n}) RETURNING id")


def fetched(srv) -> list[int]:
    return [int(m) for m in re.findall(r"jobs fetched count=(\d+)", srv.log)]


def test_noop_jobs_are_claimed_a_batch_at_a_time(trireme, db):
    insert(db, 300, "noop")
    srv = trireme("--roles=worker", "--concurrency=2", "--batch-size=100", threads=1,
                  env=db.env())
    db.wait_all("status = 'succeeded'", 300, timeout=30)
    sizes = fetched(srv)
    # The first claim knows nothing of the jobs: the 2 free slots. Every
    # noop finished within its start, so then a whole batch.
    assert sizes[0] == 2, sizes
    assert 100 in sizes and max(sizes) == 100, sizes
    assert len(sizes) <= 6, sizes


def test_slow_jobs_of_a_batch_wait_for_a_slot_without_their_time_limit(trireme, db):
    insert(db, 2, "noop")
    # 300 ms each with a 600 ms limit, 2 at a time: the last pair starts
    # ~900 ms after its claim. Were the wait counted, it would be stopped.
    insert(db, 8, "sleep", '{"ms": 300}', timeout_ms=600)
    t0 = db.scalar("SELECT now()")
    srv = trireme("--roles=worker", "--concurrency=2", "--batch-size=50", threads=1,
                  env=db.env())
    db.wait_all("status = 'succeeded'", 10, timeout=30)
    assert fetched(srv)[:2] == [2, 8], fetched(srv)
    rows = db.rows("SELECT attempts, last_error, finished_at FROM trireme.jobs "
                   "WHERE kind = 'sleep'")
    assert all(r["attempts"] == 1 and r["last_error"] is None for r in rows), rows
    # Never more than 2 at once: 8 jobs of 300 ms need at least 4 rounds.
    last = max(pg_time(r["finished_at"]) for r in rows)
    assert last - pg_time(t0) >= 1.2, f"8 x 300 ms done in {last - pg_time(t0):.2f}s"
    assert "time limit" not in srv.log


def test_a_drain_hands_parked_jobs_straight_back(trireme, db):
    insert(db, 1, "noop")
    insert(db, 4, "sleep", '{"ms": 20000}')
    srv = trireme("--roles=worker", "--concurrency=1", "--batch-size=10", "--grace=2s",
                  threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    db.wait_all("status = 'running'", 4, timeout=10, interval=0.05)
    srv.wait_log(r"jobs fetched count=4")
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    # The three parked never started: back at once, attempt not spent,
    # well before the grace period ends.
    db.wait_all("status = 'pending' AND attempts = 0", 3, timeout=1.5, interval=0.05)
    assert time.monotonic() - t0 < 1.5
    srv.wait_log(r"jobs waiting for a slot handed back to the queue jobs=3")
    assert srv.wait(timeout=10) == 0
    # The one running is handed back at the end of grace, like any run.
    db.wait_all("status = 'pending' AND attempts = 0", 4, timeout=5)
    assert db.scalar("SELECT count(*) FROM trireme.jobs WHERE status = 'succeeded'") == 1


def test_redis_noop_jobs_are_claimed_a_batch_at_a_time(trireme, tmp_path):
    from test_redis_queue import Redis, start
    redis = Redis(tmp_path)
    try:
        web = start(trireme, redis.url, roles="web")
        ids = [j["id"] for j in enqueue(web.port, [{"kind": "noop"}] * 300)["jobs"]]
        w = start(trireme, redis.url, "--concurrency=2", "--batch-size=100", roles="worker",
                  threads=1)
        w.wait_log(rf"job completed job_id={ids[-1]} ", timeout=30)
        sizes = fetched(w)
        assert 100 in sizes and max(sizes) == 100, sizes
    finally:
        redis.stop()
