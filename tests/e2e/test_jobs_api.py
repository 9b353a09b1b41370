"""
test_jobs_api.py - the job API over HTTP against a real PostgreSQL:
enqueue (single, array, unique_key), status and progress, cancel and retry,
the 4xx answers, and /readyz.
"""
import re
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import (API_KEY, enqueue, get_job, http, pg_time, wait_until,  # noqa: E402
                     wait_worker_ready)

pytest_plugins = ["pgtools"]

ID_FIELDS = {"id", "status", "created"}
JOB_FIELDS = {"id", "queue", "kind", "payload", "status", "priority", "attempts", "max_attempts",
              "timeout_ms", "run_at", "progress_percent", "current_step", "result", "last_error",
              "unique_key", "worker_id", "lease_until", "created_at", "started_at",
              "finished_at", "updated_at"}


def web_worker(trireme, db, *flags, threads=2):
    srv = trireme("--roles=web,worker", *flags, threads=threads, env=db.env())
    wait_worker_ready(srv, threads)
    return srv


def web_only(trireme, db, *flags):
    srv = trireme("--roles=web", *flags, env=db.env())
    srv.wait_log(r"database connected")
    return srv


def wait_api_status(port, job_id, statuses, timeout):
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(
        get_job(port, job_id)), timeout, interval=0.05, what=f"job {job_id} → {statuses}")


# --- 1. enqueue, run, inspect ----------------------------------------------------

def test_enqueue_single_and_array_then_succeed(trireme, db):
    srv = web_worker(trireme, db)

    one = enqueue(srv.port, {"kind": "noop"})
    assert set(one) == ID_FIELDS and one["status"] == "pending" and one["created"] is True
    assert isinstance(one["id"], int) and one["id"] > 0

    many = enqueue(srv.port, [{"kind": "noop"}, {"kind": "sleep", "payload": {"ms": 10}},
                              {"kind": "noop", "queue": "default", "priority": 3}])
    assert list(many) == ["jobs"] and len(many["jobs"]) == 3
    ids = [j["id"] for j in many["jobs"]]
    assert all(set(j) == ID_FIELDS and j["created"] is True and j["status"] == "pending"
               for j in many["jobs"])
    assert len(set(ids + [one["id"]])) == 4, "every job gets its own id"
    assert ids == sorted(ids), "ids follow the array's order"

    for jid in [one["id"]] + ids:
        wait_api_status(srv.port, jid, "succeeded", timeout=15)

    noop = get_job(srv.port, one["id"])
    assert set(noop) == JOB_FIELDS, f"fields: {sorted(noop)}"
    assert noop["kind"] == "noop" and noop["queue"] == "default" and noop["payload"] == {}
    assert noop["attempts"] == 1 and noop["max_attempts"] == 5
    assert noop["progress_percent"] == 100
    assert noop["result"] is None and noop["last_error"] is None
    assert noop["lease_until"] is None
    assert noop["worker_id"] and noop["worker_id"].split(":")[1] == str(srv.proc.pid)
    created, started, finished = (pg_time(noop[k]) for k in
                                  ("created_at", "started_at", "finished_at"))
    assert created <= started <= finished <= pg_time(noop["updated_at"])
    assert pg_time(noop["run_at"]) <= started

    slept = get_job(srv.port, ids[1])
    assert slept["kind"] == "sleep" and slept["payload"] == {"ms": 10}
    assert slept["result"] == {"slept_ms": 10}
    assert slept["attempts"] == 1 and slept["last_error"] is None
    assert get_job(srv.port, ids[2])["priority"] == 3
    srv.wait_log(rf"job completed job_id={ids[1]} kind=sleep attempt=1")


def test_one_job_alone_is_stored_as_the_same_job_in_an_array(trireme, db):
    # A lone job without a unique_key takes enqueue_batch's one-row INSERT
    # (sql/014, part 1); in an array it takes the general path. Both must store the
    # same row: every field, its defaults, the delay and the pull flag.
    srv = web_only(trireme, db, "--pull-kinds=remote-eq")
    jobs = [
        {"kind": "sleep", "queue": "q-eq", "payload": {"ms": 5, "x": [1, "two"]}, "priority": -3,
         "delay": "1h", "max_attempts": 2, "timeout": "7s"},
        {"kind": "noop", "run_at": "2030-01-02T03:04:05.678Z"},
        {"kind": "noop"},
        {"kind": "remote-eq", "payload": {"n": 1}, "delay": 0},
    ]
    alone = [enqueue(srv.port, j)["id"] for j in jobs]
    together = [j["id"] for j in enqueue(srv.port, jobs)["jobs"]]
    cols = ("queue, kind, payload, status, priority, attempts, max_attempts, timeout_ms, pull,"
            " unique_key, run_at - created_at AS wait")
    for a, b, j in zip(alone, together, jobs):
        ra = db.rows(f"SELECT {cols}, run_at FROM trireme.jobs WHERE id = {a}")[0]
        rb = db.rows(f"SELECT {cols}, run_at FROM trireme.jobs WHERE id = {b}")[0]
        if "run_at" in j:
            assert ra.pop("run_at") == rb.pop("run_at"), j
            ra.pop("wait"), rb.pop("wait")
        else:
            del ra["run_at"], rb["run_at"]
        assert ra == rb, j
    assert db.job(alone[0])["payload"] == {"ms": 5, "x": [1, "two"]}
    assert db.rows(f"SELECT run_at - created_at AS w FROM trireme.jobs WHERE id = {alone[0]}")[0][
        "w"] == "01:00:00"
    assert db.job(alone[3])["pull"] is True and db.job(alone[2])["queue"] == "default"


def test_progress_is_visible_while_running(trireme, db):
    srv = web_worker(trireme, db)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 1500, "steps": 3}})["id"]

    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        j = get_job(srv.port, jid)
        seen.add((j["status"], j["progress_percent"], j["current_step"]))
        if j["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert ("running", 33, "step 2 of 3") in seen, f"observed: {sorted(seen, key=str)}"
    assert ("running", 66, "step 3 of 3") in seen, f"observed: {sorted(seen, key=str)}"
    done = get_job(srv.port, jid)
    assert done["status"] == "succeeded" and done["progress_percent"] == 100
    assert done["result"] == {"slept_ms": 1500}
    running_j = [s for s in seen if s[0] == "running"]
    assert running_j, "the job was never seen running"
    took = pg_time(done["finished_at"]) - pg_time(done["started_at"])
    assert 1.4 <= took < 10, f"a 1.5 s sleep took {took:.2f} s"


def test_list_filters_and_pages(trireme, db):
    srv = web_only(trireme, db)
    ids = [j["id"] for j in enqueue(srv.port, [{"kind": "noop"}] * 5 +
                                    [{"kind": "noop", "queue": "mail"}] * 2)["jobs"]]
    r = http(srv.port, "GET", "/v1/jobs?status=pending&limit=3")
    assert r.status == 200, r
    page1 = r.json
    assert [j["id"] for j in page1["jobs"]] == sorted(ids, reverse=True)[:3]
    r = http(srv.port, "GET", f"/v1/jobs?status=pending&limit=3&cursor={page1['next_cursor']}")
    assert [j["id"] for j in r.json["jobs"]] == sorted(ids, reverse=True)[3:6]
    r = http(srv.port, "GET", "/v1/jobs?queue=mail")
    assert sorted(j["id"] for j in r.json["jobs"]) == ids[5:] and r.json["next_cursor"] is None
    assert http(srv.port, "GET", "/v1/jobs?status=succeeded").json["jobs"] == []
    bad = http(srv.port, "GET", "/v1/jobs?status=nope")
    assert bad.status == 400 and "status" in bad.json["message"]


# --- 5. cancel -------------------------------------------------------------------

def test_cancel_pending_job_never_runs(trireme, db):
    web = web_only(trireme, db)
    jid = enqueue(web.port, {"kind": "sleep", "payload": {"ms": 10}})["id"]
    r = http(web.port, "POST", f"/v1/jobs/{jid}/cancel")
    assert r.status == 200, r
    assert r.json["id"] == jid and r.json["status"] == "cancelled"
    assert r.json["finished_at"] is not None

    # A worker now starts; a job enqueued after the cancelled one runs, the
    # cancelled one does not.
    worker = trireme("--roles=worker", threads=1, env=db.env())
    wait_worker_ready(worker, 1)
    marker = enqueue(web.port, {"kind": "noop"})["id"]
    db.wait_status(marker, "succeeded", timeout=15)
    j = db.job(jid)
    assert j["status"] == "cancelled" and j["attempts"] == 0 and j["started_at"] is None
    assert f"job_id={jid} " not in worker.log

    again = http(web.port, "POST", f"/v1/jobs/{jid}/cancel")
    assert again.status == 409 and again.json["error"] == "conflict", again


def test_cancel_running_job_stops_it(trireme, db):
    srv = web_worker(trireme, db)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 20000}})["id"]
    wait_api_status(srv.port, jid, "running", timeout=10)
    t0 = time.monotonic()
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/cancel")
    assert r.status == 200 and r.json["status"] == "cancelled", r
    srv.wait_log(rf"job cancelled while running, stopping it job_id={jid}\b", timeout=5)
    srv.wait_log(rf"job stopped after cancellation job_id={jid}\b", timeout=5)
    assert time.monotonic() - t0 < 5, "the running job was not stopped promptly"
    # The stopped attempt writes nothing over the cancellation.
    time.sleep(0.5)
    j = db.job(jid)
    assert j["status"] == "cancelled" and j["last_error"] is None and j["result"] is None
    assert not re.search(rf"completion refused.*job_id={jid}\b", srv.log), srv.log[-2000:]
    # The worker's slot is free again: the next job runs at once.
    nxt = enqueue(srv.port, {"kind": "noop"})["id"]
    wait_api_status(srv.port, nxt, "succeeded", timeout=10)


def test_cancel_conflicts_and_bad_ids(trireme, db):
    srv = web_worker(trireme, db)
    jid = enqueue(srv.port, {"kind": "noop"})["id"]
    wait_api_status(srv.port, jid, "succeeded", timeout=10)
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/cancel")
    assert r.status == 409 and r.json["error"] == "conflict", r
    assert db.job(jid)["status"] == "succeeded"

    r = http(srv.port, "POST", "/v1/jobs/987654321/cancel")
    assert r.status == 404 and r.json["error"] == "not_found", r
    assert http(srv.port, "GET", "/v1/jobs/987654321").status == 404
    for bad in ("abc", "-1", "1x", "9" * 19):
        r = http(srv.port, "POST", f"/v1/jobs/{bad}/cancel")
        assert r.status == 400 and r.json["error"] == "invalid_id", (bad, r)
        assert http(srv.port, "GET", f"/v1/jobs/{bad}").status == 400


def test_retry_redrives_and_refuses_unfinished(trireme, db):
    web = web_only(trireme, db)
    jid = enqueue(web.port, {"kind": "noop"})["id"]
    r = http(web.port, "POST", f"/v1/jobs/{jid}/retry")
    assert r.status == 409, f"retry of a pending job: {r}"
    assert http(web.port, "POST", "/v1/jobs/987654321/retry").status == 404
    assert http(web.port, "POST", f"/v1/jobs/{jid}/cancel").status == 200
    r = http(web.port, "POST", f"/v1/jobs/{jid}/retry")
    assert r.status == 200 and r.json["status"] == "pending" and r.json["attempts"] == 0, r
    assert r.json["finished_at"] is None
    worker = trireme("--roles=worker", threads=1, env=db.env())
    wait_worker_ready(worker, 1)
    db.wait_status(jid, "succeeded", timeout=15)
    r = http(web.port, "POST", f"/v1/jobs/{jid}/retry")
    assert r.status == 409 and r.json["error"] == "conflict", r


# --- 6. unique_key ---------------------------------------------------------------

def test_unique_key_returns_the_existing_job(trireme, db):
    srv = web_only(trireme, db)
    first = http(srv.port, "POST", "/v1/jobs", {"kind": "noop", "unique_key": "order-1"})
    assert first.status == 201 and first.json["created"] is True, first
    second = http(srv.port, "POST", "/v1/jobs", {"kind": "noop", "unique_key": "order-1"})
    assert second.status == 200, second
    assert second.json == {"id": first.json["id"], "status": "pending", "created": False}

    arr = http(srv.port, "POST", "/v1/jobs", [
        {"kind": "noop", "unique_key": "order-2"},
        {"kind": "noop", "unique_key": "order-2"},
        {"kind": "noop", "unique_key": "order-1"},
        {"kind": "noop"},
    ])
    assert arr.status == 201, arr
    jobs = arr.json["jobs"]
    assert [j["created"] for j in jobs] == [True, False, False, True]
    assert jobs[0]["id"] == jobs[1]["id"]
    assert jobs[2]["id"] == first.json["id"]
    assert len({jobs[0]["id"], jobs[2]["id"], jobs[3]["id"]}) == 3

    dup_only = http(srv.port, "POST", "/v1/jobs", [{"kind": "noop", "unique_key": "order-2"}])
    assert dup_only.status == 200 and dup_only.json["jobs"][0]["id"] == jobs[0]["id"], dup_only
    assert db.count("unique_key = 'order-1'") == 1
    assert db.count("unique_key = 'order-2'") == 1
    assert db.count() == 3


def test_unique_key_concurrent_requests_agree(trireme, db):
    """Many clients racing with one key (spread over the server's threads):
    one row, one creator, and every answer names that row."""
    import threading

    srv = web_only(trireme, db)
    for rnd in range(5):
        key = f"race-{rnd}"
        answers = []
        barrier = threading.Barrier(8)

        def post():
            barrier.wait(timeout=10)
            answers.append(http(srv.port, "POST", "/v1/jobs", {"kind": "noop", "unique_key": key}))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(answers) == 8
        assert all(a.status in (200, 201) for a in answers), answers
        bodies = [a.json for a in answers]
        row = db.scalar(f"SELECT id FROM trireme.jobs WHERE unique_key = '{key}'")
        assert {b["id"] for b in bodies} == {row}, bodies
        assert sum(b["created"] for b in bodies) == 1, bodies
        assert sum(a.status == 201 for a in answers) == 1, answers


# --- 12. refusals ----------------------------------------------------------------

def test_bad_requests_are_refused_with_json(trireme, db):
    srv = web_only(trireme, db)

    r = http(srv.port, "POST", "/v1/jobs", b'{"kind": "noop",')
    assert r.status == 400 and r.json["error"] == "invalid_json", r
    assert "JSON" in r.json["message"] and r.json["status"] == 400

    r = http(srv.port, "POST", "/v1/jobs", {"kind": "no_such_kind"})
    assert r.status == 400 and r.json["error"] == "invalid_job", r
    assert r.json["message"].startswith("kind ") and "noop" in r.json["message"], r

    for job, field in [({"kind": "noop", "priority": "x"}, "priority"),
                       ({"kind": "noop", "run_at": "tomorrow"}, "run_at"),
                       ({"kind": "noop", "delay": "soon"}, "delay"),
                       ({"kind": "noop", "max_attempts": 0}, "max_attempts"),
                       ({"kind": "noop", "timeout": -1}, "timeout"),
                       ({"kind": "noop", "queue": 7}, "queue"),
                       ({"kind": "sleep", "payload": {"ms": "long"}}, "payload"),
                       ({"kind": "noop", "colour": "red"}, "colour"),
                       ({}, "kind"),
                       ([{"kind": "noop"}, {"kind": "noop", "priority": 1.5}], "jobs[1].priority")]:
        r = http(srv.port, "POST", "/v1/jobs", job)
        assert r.status == 400, (job, r)
        assert r.json["message"].startswith(field + " "), (job, r.json)

    r = http(srv.port, "POST", "/v1/jobs", [{"kind": "noop"}] * 1001)
    assert r.status == 400 and "1000" in r.json["message"].replace(",", ""), r
    assert http(srv.port, "POST", "/v1/jobs", []).status == 400

    r = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"}, key=None)
    assert r.status == 401 and r.json["error"] == "unauthorized", r
    assert r.header("WWW-Authenticate") == "Bearer"
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"}, key="not-the-key")
    assert r.status == 403 and r.json["error"] == "forbidden", r
    assert http(srv.port, "GET", "/v1/jobs/1", key="not-the-key").status == 403
    assert http(srv.port, "GET", "/v1/jobs", key=None).status == 401

    assert db.count() == 0, "no refused request may insert anything"
    ok = http(srv.port, "POST", "/v1/jobs", [{"kind": "noop"}] * 1000)
    assert ok.status == 201 and len(ok.json["jobs"]) == 1000
    assert db.count() == 1000


def test_without_database_the_job_api_is_unavailable(trireme):
    srv = trireme("--roles=web", env={"TRIREME_API_KEYS": API_KEY})
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"})
    assert r.status == 503 and r.json["error"] == "unavailable", r
    assert "DATABASE_URL" in r.json["message"]
    assert http(srv.port, "GET", "/v1/jobs/1").status == 503
    r = http(srv.port, "GET", "/readyz", key=None)
    assert r.status == 200, r
    assert r.json["status"] == "ok" and r.json["database"] == "disabled", r
    assert trireme_refuses_worker_without_db()


def trireme_refuses_worker_without_db():
    from conftest import run_cli
    p = run_cli("run", "--roles=worker", "--port=1", timeout=20)
    assert p.returncode == 2, p
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert any("DATABASE_URL" in ln for ln in lines), p.stderr
    return True


# --- 13. /readyz -----------------------------------------------------------------

def test_readyz_with_live_database(trireme, db):
    srv = web_only(trireme, db)
    r = http(srv.port, "GET", "/readyz", key=None)
    assert r.status == 200, r
    assert r.json["status"] == "ok" and r.json["database"] == "ok", r
    assert r.header("Cache-Control") == "no-store"


def test_readyz_with_unreachable_database(trireme, db):
    from conftest import free_port
    url = f"postgresql://trireme@127.0.0.1:{free_port()}/trireme?connect_timeout=2"
    srv = trireme("--roles=web", "--migrate=off", env={"DATABASE_URL": url,
                                                       "TRIREME_API_KEYS": API_KEY})
    t0 = time.monotonic()
    r = http(srv.port, "GET", "/readyz", key=None)
    took = time.monotonic() - t0
    assert r.status == 503, r
    assert took < 6.5, f"/readyz took {took:.1f}s"
    body = r.json
    assert body["status"] == "unavailable" and body["database"].startswith("error: "), body
    srv.wait_log(r"database connection failed")
    # liveness does not depend on the database
    assert http(srv.port, "GET", "/healthz", key=None).status == 200
