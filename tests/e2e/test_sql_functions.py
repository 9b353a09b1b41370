"""
test_sql_functions.py - the SQL functions of sql/009 (trireme.claim,
heartbeat, progress, complete, fail) against the real binary, which applies
the migrations, and a real PostgreSQL through psycopg: completion inside a
user transaction that rolls back leaves the job running (then retried after
the lease), one that commits finishes it with the user's row; a stale token
raises TR409 and changes nothing; fail with retry_in re-queues, at
max_attempts the job is dead; concurrent claimers never share a job; HTTP
callbacks and SQL functions finish each other's claims; the example worker
docs/examples/sql_worker.py runs 200 jobs. Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import REPO_ROOT

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, get_job, http, wait_until  # noqa: E402

try:
    import psycopg
except ImportError:  # Debian's python3-psycopg, seen from another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg

pytest_plugins = ["pgtools"]


@pytest.fixture
def srv(trireme, db):
    tag = uuid.uuid4().hex[:8]
    s = trireme("--roles=web,worker", f"--pull-kinds=sqlk_{tag}", "--lease=2s", env=db.env())
    s.wait_log(r"worker listening for new jobs", timeout=15)
    s.kind = f"sqlk_{tag}"
    return s


def conn(db):
    return psycopg.connect(db.url, autocommit=False)


def row(db, job_id):
    with psycopg.connect(db.url, autocommit=True) as c:
        r = c.execute("SELECT status, attempts, worker_id, result, last_error, run_at > now()"
                      " FROM trireme.jobs WHERE id = %s", (job_id,)).fetchone()
    return dict(zip(["status", "attempts", "worker_id", "result", "last_error", "later"], r))


def claim(c, kind, **kw):
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    q = f"SELECT id, attempt, token FROM trireme.claim(%(kinds)s{', ' + args if args else ''})"
    return c.execute(q, {"kinds": [kind], **kw}).fetchall()


def test_rollback_leaves_running_then_retried_commit_finishes(srv, db):
    job = enqueue(srv.port, {"kind": srv.kind, "payload": {"n": 1}})["id"]
    with conn(db) as c:
        c.execute("CREATE TABLE IF NOT EXISTS sqlfn_user (job_id bigint PRIMARY KEY)")
        c.commit()
        # Claim in its own transaction, as a worker would, then roll back the work.
        [(jid, attempt, token)] = claim(c, srv.kind, lease="2 s")
        c.commit()
        assert jid == job and attempt == 1
        c.execute("INSERT INTO sqlfn_user VALUES (%s)", (jid,))
        c.execute("SELECT trireme.complete(%s, %s, %s)", (jid, token, json.dumps({"ok": 1})))
        c.rollback()
        assert row(db, jid)["status"] == "running"
        assert c.execute("SELECT count(*) FROM sqlfn_user WHERE job_id = %s",
                         (jid,)).fetchone()[0] == 0
        c.rollback()
        # The lease runs out; the reaper gives the job back; a new claim gets attempt 2.
        def reclaim():
            got = claim(c, srv.kind)
            c.commit()  # each try its own transaction: now() moves on
            return got
        [(jid2, attempt2, token2)] = wait_until(reclaim, 30, interval=0.2,
                                                what="the expired lease to be reaped")
        assert (jid2, attempt2) == (jid, 2)
        # The stale token of attempt 1 is refused and changes nothing.
        before = row(db, jid)
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT trireme.complete(%s, %s, '{}')", (jid, token))
        assert e.value.sqlstate == "TR409"
        c.rollback()
        assert row(db, jid) == before
        c.execute("INSERT INTO sqlfn_user VALUES (%s)", (jid,))
        c.execute("SELECT trireme.complete(%s, %s, %s)", (jid, token2, json.dumps({"ok": 2})))
        c.commit()
    r = row(db, jid)
    assert r["status"] == "succeeded" and r["result"] == {"ok": 2}
    assert get_job(srv.port, jid)["status"] == "succeeded"
    with psycopg.connect(db.url) as c:
        assert c.execute("SELECT count(*) FROM sqlfn_user WHERE job_id = %s",
                         (jid,)).fetchone()[0] == 1
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT trireme.complete(%s, %s, '{}')", (jid + 10**9, token2))
        assert e.value.sqlstate == "TR404"


def test_heartbeat_progress_fail_retry_and_dead(srv, db):
    job = enqueue(srv.port, {"kind": srv.kind, "max_attempts": 2})["id"]
    with conn(db) as c:
        [(jid, _, token)] = claim(c, srv.kind, lease="5 s")
        exp = c.execute("SELECT trireme.heartbeat(%s, %s, '1 hour')", (jid, token)).fetchone()[0]
        c.execute("SELECT trireme.progress(%s, %s, 40, 'step 2/5')", (jid, token))
        c.commit()
        assert jid == job and exp.timestamp() > time.time() + 3000
        j = get_job(srv.port, jid)
        assert j["progress_percent"] == 40 and j["current_step"] == "step 2/5"
        st = c.execute("SELECT trireme.fail(%s, %s, 'boom', retry_in => '1 s')",
                       (jid, token)).fetchone()[0]
        c.commit()
        assert st == "pending"
        r = row(db, jid)
        assert r["status"] == "pending" and r["last_error"] == "boom" and r["later"]
        assert r["worker_id"] is None
        # The failed attempt's token is stale now.
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT trireme.heartbeat(%s, %s)", (jid, token))
        assert e.value.sqlstate == "TR409"
        c.rollback()
        def reclaim():
            got = claim(c, srv.kind)
            c.commit()
            return got
        got = wait_until(reclaim, 15, interval=0.2, what="the retried job")
        [(jid2, attempt2, token2)] = got
        assert (jid2, attempt2) == (jid, 2)
        st = c.execute("SELECT trireme.fail(%s, %s, 'boom again')", (jid, token2)).fetchone()[0]
        c.commit()
        assert st == "dead" and row(db, jid)["status"] == "dead"
        # No retry at all: failed at once.
        other = enqueue(srv.port, {"kind": srv.kind})["id"]
        [(jid3, _, token3)] = claim(c, srv.kind)
        assert jid3 == other
        st = c.execute("SELECT trireme.fail(%s, %s, 'bad input', retry => false)",
                       (jid3, token3)).fetchone()[0]
        c.commit()
        assert st == "failed"
        with pytest.raises(psycopg.Error) as e:
            claim(c, srv.kind, max=0)
        assert e.value.sqlstate == "22023"


def test_concurrent_claimers_never_share(srv, db):
    n = 300
    r = http(srv.port, "POST", "/v1/jobs",
             [{"kind": srv.kind, "payload": {"i": i}} for i in range(n)])
    assert r.status == 201, r
    seen: list[list[int]] = [[], [], [], []]

    def worker(k):
        with conn(db) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = claim(c, srv.kind, max=7)
                for jid, _, token in got:
                    c.execute("SELECT trireme.complete(%s, %s)", (jid, token))
                c.commit()
                if not got:
                    return
                seen[k] += [g[0] for g in got]

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    every = [j for s in seen for j in s]
    assert len(every) == n and len(set(every)) == n
    assert sum(1 for s in seen if s) >= 2, "the claimers did not run concurrently"
    with psycopg.connect(db.url) as c:
        assert c.execute("SELECT count(*) FROM trireme.jobs WHERE kind = %s AND status ="
                         " 'succeeded' AND attempts = 1", (srv.kind,)).fetchone()[0] == n


def test_http_and_sql_finish_each_other(srv, db):
    a = enqueue(srv.port, {"kind": srv.kind, "payload": {"a": 1}})["id"]
    # Claimed by SQL, completed over HTTP with the same token.
    with conn(db) as c:
        [(jid, _, token)] = claim(c, srv.kind)
        c.commit()
    assert jid == a
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/complete", {"token": token, "result": {"by": "http"}})
    assert r.status == 200, r
    assert row(db, jid)["status"] == "succeeded" and row(db, jid)["result"] == {"by": "http"}
    # ... and the used token is now refused on both paths.
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/complete", {"token": token})
    assert r.status == 409, r
    with conn(db) as c:
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT trireme.complete(%s, %s)", (jid, token))
        assert e.value.sqlstate == "TR409"
    # Claimed over HTTP, completed by SQL.
    b = enqueue(srv.port, {"kind": srv.kind, "payload": {"b": 1}})["id"]
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [srv.kind], "max": 1, "lease": 30})
    assert r.status == 200, r
    [j] = r.json["jobs"]
    assert j["id"] == b
    with conn(db) as c:
        c.execute("SELECT trireme.complete(%s, %s, %s)", (b, j["token"], json.dumps({"by": "sql"})))
        c.commit()
    assert get_job(srv.port, b)["result"] == {"by": "sql"}


def test_example_worker_runs_200_jobs(srv, db):
    n = 200
    r = http(srv.port, "POST", "/v1/jobs",
             [{"kind": srv.kind, "payload": {"i": i}} for i in range(n)])
    assert r.status == 201, r
    with psycopg.connect(db.url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS sql_worker_results")
    env = dict(os.environ, DATABASE_URL=db.url,
               PYTHONPATH=os.pathsep.join(p for p in [os.environ.get("PYTHONPATH"),
                                                      "/usr/lib/python3/dist-packages"] if p))
    p = subprocess.run([sys.executable, str(REPO_ROOT / "docs/examples/sql_worker.py"), srv.kind,
                        str(n)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"{n} jobs done" in p.stdout
    with psycopg.connect(db.url) as c:
        rows = c.execute("SELECT j.result->>'digest' = r.digest FROM trireme.jobs j"
                         " JOIN sql_worker_results r ON r.job_id = j.id"
                         " WHERE j.kind = %s AND j.status = 'succeeded'", (srv.kind,)).fetchall()
    assert len(rows) == n and all(ok for (ok,) in rows)
