"""
test_sql_once.py - an `sql` job's statement takes effect once per job, on
both queue backends: its effect and the job's row in trireme.sql_effects
commit in one statement, so an attempt after a lost completion (the job
made to run again by hand here, or by real faults: every worker connection
terminated again and again while 1,500 jobs run) finds the row, is rolled
back whole, and succeeds with the first attempt's result.
"""
import subprocess
import threading
import time
import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, get_job, wait_until, wait_worker_ready  # noqa: E402

pytest_plugins = ["pgtools"]

STATEMENTS = ("add: INSERT INTO public.e2e_once (tag) VALUES ($1::int) RETURNING tag\n"
              "add_quiet: INSERT INTO public.e2e_once (tag) VALUES ($1::int)\n")


@pytest.fixture
def once_db(db, tmp_path):
    db.exec("CREATE TABLE public.e2e_once (tag int NOT NULL); TRUNCATE trireme.sql_effects;")
    stmts = tmp_path / "sql-jobs.txt"
    stmts.write_text(STATEMENTS)
    db.stmts = stmts
    return db


def rows(db, tag=None):
    where = "" if tag is None else f" WHERE tag = {int(tag)}"
    return int(db.scalar(f"SELECT count(*) FROM public.e2e_once{where}"))


def run_again(db, jid):
    """What a lost completion leaves: the job back to pending, its effect committed."""
    db.exec(f"UPDATE trireme.jobs SET status = 'pending', run_at = now(), finished_at = NULL, "
            f"worker_id = NULL, result = NULL WHERE id = {jid}")


@pytest.mark.parametrize("statement,result", [("add", [{"tag": 7}]), ("add_quiet", [])])
def test_a_rerun_after_a_lost_completion_changes_nothing(trireme, once_db, statement, result):
    db = once_db
    srv = trireme("--roles=web,worker", f"--sql-jobs={db.stmts}", threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    jid = enqueue(srv.port, {"kind": "sql", "payload": {"statement": statement, "params": [7]}})["id"]
    first = db.wait_status(jid, ("succeeded", "dead"), timeout=15)
    assert first["status"] == "succeeded" and first["result"] == result, first
    assert rows(db, 7) == 1
    run_again(db, jid)
    again = db.wait_status(jid, ("succeeded", "dead"), timeout=15)
    assert again["status"] == "succeeded" and again["attempts"] == 2, again
    assert again["result"] == result, "the first attempt's result stands"
    assert rows(db, 7) == 1, "the statement ran once"
    srv.wait_log(rf"sql job: an earlier attempt committed the statement; its result stands "
                 rf"job_id={jid} attempt=2")
    srv.check_clean_output()


def test_a_failing_statement_leaves_no_once_row_and_retries(trireme, once_db, tmp_path):
    db = once_db
    db.exec("ALTER TABLE public.e2e_once ADD CONSTRAINT small CHECK (tag < 100)")
    srv = trireme("--roles=web,worker", f"--sql-jobs={db.stmts}", threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    jid = enqueue(srv.port, {"kind": "sql", "payload": {"statement": "add", "params": [500]},
                             "max_attempts": 2})["id"]
    j = db.wait_status(jid, ("dead",), timeout=20)
    assert "small" in j["last_error"] and j["attempts"] == 2, j
    assert int(db.scalar(f"SELECT count(*) FROM trireme.sql_effects WHERE job_id = {jid}")) == 0
    assert rows(db) == 0


def terminate_workers(db, stop, rounds):
    """pg_terminate_backend of every trireme connection but the LISTENs, again and again."""
    while not stop.is_set():
        db.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' AND query NOT ILIKE 'LISTEN%'")
        rounds.append(1)
        stop.wait(0.3)


def test_terminated_connections_never_apply_a_statement_twice(trireme, once_db):
    db = once_db
    n = 1500
    srv = trireme("--roles=web,worker", f"--sql-jobs={db.stmts}", "--lease=3s", threads=2,
                  env=db.env())
    wait_worker_ready(srv, 2)
    ids = []
    for k in range(0, n, 250):
        batch = [{"kind": "sql", "payload": {"statement": "add", "params": [i]}, "max_attempts": 20}
                 for i in range(k, min(n, k + 250))]
        ids += [j["id"] for j in enqueue(srv.port, batch)["jobs"]]
    stop, rounds = threading.Event(), []
    t = threading.Thread(target=terminate_workers, args=(db, stop, rounds))
    t.start()
    try:
        time.sleep(3.0)
    finally:
        stop.set()
        t.join()
    db.wait_all("status = 'succeeded'", n, timeout=120)
    assert len(rounds) >= 5
    dup = db.rows("SELECT tag, count(*) AS n FROM public.e2e_once GROUP BY tag HAVING count(*) > 1")
    assert dup == [], f"statements applied twice: {dup[:5]}"
    assert rows(db) == n


def test_the_redis_backend_runs_each_statement_once_too(trireme, once_db, tmp_path):
    db = once_db
    port = None
    rdir = tmp_path / "redis"
    rdir.mkdir()
    from conftest import free_port
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir",
                             str(rdir), "--save", "", "--appendonly", "no"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "PING"],
                                          capture_output=True, text=True).stdout.strip() == "PONG",
                   10, what="redis-server")
        env = db.env(REDIS_URL=f"redis://127.0.0.1:{port}/0", QUEUE_BACKEND="redis")
        srv = trireme("--roles=web,worker", f"--sql-jobs={db.stmts}", threads=1, env=env)
        srv.wait_log(r"database connected", timeout=15)
        n = 600
        jobs = [{"kind": "sql", "payload": {"statement": "add", "params": [i]}, "max_attempts": 20}
                for i in range(n)]
        ids = [j["id"] for j in enqueue(srv.port, jobs)["jobs"]]
        stop, rounds = threading.Event(), []
        t = threading.Thread(target=terminate_workers, args=(db, stop, rounds))
        t.start()
        try:
            time.sleep(2.0)
        finally:
            stop.set()
            t.join()
        wait_until(lambda: all(get_job(srv.port, i)["status"] == "succeeded" for i in ids[-50:])
                   and rows(db) >= n, 90, what="every job done")
        wait_until(lambda: all(get_job(srv.port, i)["status"] == "succeeded" for i in ids), 90,
                   interval=0.5, what="every job succeeded")
        dup = db.rows("SELECT tag, count(*) AS n FROM public.e2e_once GROUP BY tag "
                      "HAVING count(*) > 1")
        assert dup == [], f"statements applied twice: {dup[:5]}"
        assert rows(db) == n
        assert get_job(srv.port, ids[0])["result"] == [{"tag": 0}]
    finally:
        proc.kill()
        proc.wait(timeout=10)
