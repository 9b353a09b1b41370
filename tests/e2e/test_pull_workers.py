"""
test_pull_workers.py - external workers that pull (POST /v1/claim and the
job callbacks), against the real binary and a real store: the Python worker
loop of docs/operations.md (extracted from the document and run as is)
pulls and completes jobs; long-poll 204 and wake-up on arrival; two workers
pull 2,000 jobs with one killed mid-lease (every job succeeds once, the
dead worker's late completion gets 409); progress, heartbeat, fail with and
without retry; bad input; the built-in worker never takes a pull job.
Both queue backends; each test uses kinds of its own, so the shared Redis
needs no flush. Needs TRIREME_TEST_DATABASE_URL and TRIREME_TEST_REDIS_URL.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import HOST, REPO_ROOT

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]



def docs_worker(tmp_path: Path) -> Path:
    """The Python worker loop of docs/operations.md, as a file."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    m = re.search(r"A complete worker, Python standard library only.*?```python\n(.*?)```", text,
                  re.S)
    assert m, "docs/operations.md lost its pull worker example"
    code = m.group(1)
    assert len(code.splitlines()) <= 40
    p = tmp_path / "pull_worker.py"
    p.write_text(code)
    return p


@pytest.fixture(params=["postgres", "redis"])
def backend(request):
    if request.param == "postgres":
        return request.getfixturevalue("db").env()
    url = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set (tools/test.sh starts the servers)")
    return {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}


def start(trireme, backend, *flags, threads=1):
    """web+worker with two pull kinds of this test's own: srv.kind, srv.kind2."""
    tag = uuid.uuid4().hex[:8]
    kind, kind2 = f"render_{tag}", f"other_{tag}"
    srv = trireme("--roles=web,worker", f"--pull-kinds={kind},{kind2}", f"--queues=q{tag},default",
                  *flags, threads=threads, env=backend)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue, srv.kind, srv.kind2 = f"q{tag}", kind, kind2
    return srv


def jobs_of(port, kind, status=None):
    """Every job of a kind, through GET /v1/jobs (both backends)."""
    out, cursor = [], None
    while True:
        q = f"/v1/jobs?kind={kind}&limit=500" + (f"&status={status}" if status else "")
        r = http(port, "GET", q + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        out += r.json["jobs"]
        cursor = r.json.get("next_cursor")
        if not cursor:
            return out


def claim(port, body, timeout=15.0):
    return http(port, "POST", "/v1/claim", body, timeout=timeout)


def cb(port, jid, what, body):
    return http(port, "POST", f"/v1/jobs/{jid}/{what}", body)


def run_worker(script: Path, port: int, kind: str, *, lease=30):
    env = dict(os.environ, TRIREME_URL=f"http://{HOST}:{port}", TRIREME_API_KEY=API_KEY,
               TRIREME_LEASE_S=str(lease))
    return subprocess.Popen([sys.executable, str(script), kind], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)


def test_the_documented_worker_pulls_and_completes(trireme, backend, tmp_path):
    srv = start(trireme, backend)
    ids = [enqueue(srv.port, {"kind": srv.kind, "queue": q, "payload": {"n": i}})["id"]
           for i, q in enumerate(["default"] * 20)]
    noop = [enqueue(srv.port, {"kind": "noop", "queue": srv.queue})["id"] for _ in range(5)]
    for jid in noop:  # the built-in worker runs its own kinds meanwhile
        wait_until(lambda: get_job(srv.port, jid)["status"] == "succeeded", 20)
    for jid in ids:  # and never took a pull job
        assert get_job(srv.port, jid)["status"] == "pending"
    w = run_worker(docs_worker(tmp_path), srv.port, srv.kind)
    try:
        for i, jid in enumerate(ids):
            wait_until(lambda: get_job(srv.port, jid)["status"] == "succeeded", 30,
                       what=lambda: get_job(srv.port, jid))
            j = get_job(srv.port, jid)
            assert j["result"] == {"echo": {"n": i}, "attempt": 1}
            assert j["attempts"] == 1 and j["worker_id"].startswith("pull:")
    finally:
        stop(w)


def test_long_poll_204_after_the_wait_and_at_once_on_arrival(trireme, backend):
    srv = start(trireme, backend)
    t0 = time.monotonic()
    r = claim(srv.port, {"kinds": [srv.kind], "wait": 1})
    took = time.monotonic() - t0
    assert r.status == 204, r
    assert 0.9 <= took < 10, took
    r = claim(srv.port, {"kinds": [srv.kind]})  # no wait: 204 at once
    assert r.status == 204
    box = {}

    def waiter():
        t = time.monotonic()
        box["r"] = claim(srv.port, {"kinds": [srv.kind], "wait": 30, "max": 5}, timeout=40)
        box["end"] = time.monotonic()

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(1.0)  # it waits (no job yet)
    assert "r" not in box
    jid = enqueue(srv.port, {"kind": srv.kind, "payload": {"x": 1}})["id"]
    sent = time.monotonic()
    th.join(35)
    r = box["r"]
    assert r.status == 200, r
    assert box["end"] - sent < 5, box["end"] - sent
    jobs = r.json["jobs"]
    assert [j["id"] for j in jobs] == [jid]
    j = jobs[0]
    assert j["kind"] == srv.kind and j["queue"] == "default" and j["attempt"] == 1
    assert j["max_attempts"] == 5 and j["payload"] == {"x": 1}
    assert re.fullmatch(r"1\.[0-9a-f-]{32,36}", j["token"]) and j["lease_expires_at"]
    # the stored worker_id never shows the token's secret
    assert j["token"].split(".")[1] not in json.dumps(get_job(srv.port, jid))


def test_a_client_gone_while_waiting_is_forgotten(trireme, backend):
    srv = start(trireme, backend)
    s = socket.create_connection((HOST, srv.port), timeout=5)
    body = json.dumps({"kinds": [srv.kind], "wait": 30}).encode()
    s.sendall(b"POST /v1/claim HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              API_KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.5)
    s.close()
    time.sleep(0.5)
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    time.sleep(1.0)
    assert get_job(srv.port, jid)["status"] == "pending"  # nobody took it for the ghost
    r = claim(srv.port, {"kinds": [srv.kind]})
    assert r.status == 200 and r.json["jobs"][0]["attempt"] == 1


def test_two_workers_2000_jobs_one_killed_mid_lease(trireme, backend, tmp_path):
    # 2,000 (not the 5,000): 2 cores shared by several sessions.
    n = 2000
    srv = start(trireme, backend, "--lease=2s")  # the reaper looks every 0.5-1 s
    for b in range(0, n, 1000):
        r = http(srv.port, "POST", "/v1/jobs",
                 [{"kind": srv.kind, "payload": {"i": i}} for i in range(b, b + 1000)])
        assert r.status == 201
    # A worker that claims and dies before completing: the test itself.
    stale = claim(srv.port, {"kinds": [srv.kind], "max": 50, "lease": 2}).json["jobs"]
    assert len(stale) == 50
    script = docs_worker(tmp_path)
    t0 = time.monotonic()
    a = run_worker(script, srv.port, srv.kind, lease=30)
    b = run_worker(script, srv.port, srv.kind, lease=3)
    try:
        wait_until(lambda: len(jobs_of(srv.port, srv.kind, "succeeded")) >= 200, 60)
        b.send_signal(signal.SIGKILL)  # mid-run: whatever it held waits for its lease
        b.wait(10)
        wait_until(lambda: len(jobs_of(srv.port, srv.kind, "succeeded")) == n, 240, interval=0.5,
                   what=lambda: len(jobs_of(srv.port, srv.kind, "succeeded")))
        took = time.monotonic() - t0
    finally:
        stop(a)
        stop(b)
    every = jobs_of(srv.port, srv.kind)
    assert len(every) == n
    assert all(j["status"] == "succeeded" and j["attempts"] <= 2 and j["result"] for j in every)
    assert all(j["worker_id"].startswith("pull:") for j in every)  # never the built-in worker
    assert sorted(j["result"]["echo"]["i"] for j in every) == list(range(n))
    assert sum(j["attempts"] == 2 for j in every) >= 50  # the stale claims were retried
    for j in stale[:10]:
        r = cb(srv.port, j["id"], "complete", {"token": j["token"], "result": {"late": True}})
        assert r.status == 409, r
        assert r.json["error"] == "stale_token"
        assert get_job(srv.port, j["id"])["result"]["attempt"] == 2
    r = outcomes(srv.port, {"outcomes": [{"id": j["id"], "token": j["token"], "ok": True,
                                          "result": {"late": True}} for j in stale[10:]]})
    assert r.status == 200 and all(a.get("error") == "stale_token" for a in r.json["outcomes"]), r
    print(f"{n} jobs through two pullers in {took:.1f}s")


def test_progress_and_heartbeat_keep_a_job_past_its_lease(trireme, backend):
    srv = start(trireme, backend, "--lease=2s")
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    j = claim(srv.port, {"kinds": [srv.kind], "lease": 2}).json["jobs"][0]
    tok = j["token"]
    r = cb(srv.port, jid, "progress", {"token": tok, "percent": 45, "step": "chunk 5/10"})
    assert r.status == 200 and r.json["status"] == "running"
    g = get_job(srv.port, jid)
    assert g["progress_percent"] == 45 and g["current_step"] == "chunk 5/10"
    end = time.monotonic() + 5  # well past the 2 s lease and the reaper's turns
    while time.monotonic() < end:
        r = cb(srv.port, jid, "heartbeat", {"token": tok, "lease": 2})
        assert r.status == 200, r
        time.sleep(0.4)
    assert get_job(srv.port, jid)["status"] == "running"
    r = cb(srv.port, jid, "complete", {"token": tok, "result": [1, 2]})
    assert r.status == 200 and r.json["status"] == "succeeded"
    g = get_job(srv.port, jid)
    assert g["status"] == "succeeded" and g["result"] == [1, 2] and g["attempts"] == 1
    # after the end, every call with that token is refused and changes nothing
    for what in ("progress", "heartbeat", "complete", "fail"):
        r = cb(srv.port, jid, what, {"token": tok})
        assert r.status == 409, (what, r)
    assert get_job(srv.port, jid)["result"] == [1, 2]


def test_a_lease_that_expires_moves_on_and_the_old_token_is_refused(trireme, backend):
    srv = start(trireme, backend, "--lease=2s")
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    old = claim(srv.port, {"kinds": [srv.kind], "lease": 1}).json["jobs"][0]
    wait_until(lambda: get_job(srv.port, jid)["status"] == "pending", 15)
    assert "lease expired" in get_job(srv.port, jid)["last_error"]
    new = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    assert new["attempt"] == 2 and new["token"] != old["token"]
    assert cb(srv.port, jid, "complete", {"token": old["token"]}).status == 409
    assert cb(srv.port, jid, "progress", {"token": old["token"], "percent": 5}).status == 409
    assert cb(srv.port, jid, "complete", {"token": new["token"], "result": 1}).status == 200


def test_fail_with_retry_then_dead_and_without_retry_failed(trireme, backend):
    srv = start(trireme, backend)
    jid = enqueue(srv.port, {"kind": srv.kind, "max_attempts": 2})["id"]
    j = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    r = cb(srv.port, jid, "fail", {"token": j["token"], "error": "boom", "retry_in": 0})
    assert r.status == 200 and r.json["status"] == "pending"
    g = get_job(srv.port, jid)
    assert g["status"] == "pending" and g["last_error"] == "boom"
    j = claim(srv.port, {"kinds": [srv.kind], "wait": 10}).json["jobs"][0]
    assert j["attempt"] == 2
    r = cb(srv.port, jid, "fail", {"token": j["token"], "error": "boom again", "retry": True})
    assert r.status == 200 and r.json["status"] == "dead"
    assert get_job(srv.port, jid)["status"] == "dead"

    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    j = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    r = cb(srv.port, jid, "fail", {"token": j["token"], "error": "bad input", "retry": False})
    assert r.status == 200 and r.json["status"] == "failed"
    g = get_job(srv.port, jid)
    assert g["status"] == "failed" and g["attempts"] == 1 and g["last_error"] == "bad input"

    # a retry later than now is not claimed before its time
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    j = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    assert cb(srv.port, jid, "fail", {"token": j["token"], "retry_in": 60}).status == 200
    assert claim(srv.port, {"kinds": [srv.kind]}).status == 204


def test_bad_input(trireme, backend):
    srv = start(trireme, backend)
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "rendr"})
    assert r.status == 400 and srv.kind in r.json["message"] and srv.kind2 in r.json["message"]
    r = claim(srv.port, {"kinds": ["noop"]})
    assert r.status == 400 and "not a pull kind" in r.json["message"]
    for body in ({}, {"kinds": []}, {"kinds": [srv.kind], "max": 0}, {"kinds": [srv.kind], "max": 1001},
                 {"kinds": [srv.kind], "lease": 0}, {"kinds": [srv.kind], "wait": 61},
                 {"kinds": [srv.kind], "nope": 1}, {"kinds": [srv.kind], "queues": "default"}):
        r = claim(srv.port, body)
        assert r.status == 400, (body, r)
    assert http(srv.port, "POST", "/v1/claim", {"kinds": [srv.kind]}, key=None).status == 401
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    j = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    assert cb(srv.port, jid, "complete", {}).status == 400  # no token
    assert cb(srv.port, jid, "complete", {"token": 5}).status == 400
    assert cb(srv.port, jid, "progress", {"token": j["token"], "percent": 101}).status == 400
    assert cb(srv.port, jid, "complete", {"token": "1.nope"}).status == 409
    assert cb(srv.port, jid, "complete", {"token": "garbage"}).status == 409
    assert cb(srv.port, 999999, "complete", {"token": j["token"]}).status == 404
    assert get_job(srv.port, jid)["status"] == "running"
    assert cb(srv.port, jid, "complete", {"token": j["token"]}).status == 200


def test_no_pull_kinds_no_claim(trireme, backend):
    srv = trireme("--roles=web", threads=1, env=backend)
    r = claim(srv.port, {"kinds": ["render"]})
    assert r.status == 404 and "no pull kinds" in r.json["message"]


def test_pull_kind_in_the_kinds_file(trireme, backend, tmp_path):
    env = backend
    kind = "orchestrate_" + uuid.uuid4().hex[:8]
    kinds = tmp_path / "kinds.json"
    kinds.write_text(json.dumps({"kinds": {kind: {"type": "pull"}}}))
    srv = trireme("--roles=web,worker", f"--kinds={kinds}", threads=1, env=env)
    jid = enqueue(srv.port, {"kind": kind})["id"]
    time.sleep(0.5)
    assert get_job(srv.port, jid)["status"] == "pending"
    r = claim(srv.port, {"kinds": [kind]})
    assert r.status == 200 and r.json["jobs"][0]["id"] == jid
    kinds.write_text(json.dumps({"kinds": {"x": {"type": "pull", "argv": ["a"]}}}))
    from conftest import run_cli
    out = run_cli("run", f"--kinds={kinds}", "--roles=web", env=env, timeout=20)
    assert out.returncode != 0 and "field 'argv'" in out.stderr


def test_a_drain_answers_waiting_claims_at_once(trireme, backend):
    srv = start(trireme, backend)
    box = {}

    def waiter():
        box["r"] = claim(srv.port, {"kinds": [srv.kind], "wait": 60}, timeout=70)
        box["end"] = time.monotonic()

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    th.join(30)
    assert box["r"].status == 204
    assert box["end"] - t0 < 10, box["end"] - t0  # not the 60 s wait
    assert srv.wait(30) == 0


def outcomes(port, body):
    return http(port, "POST", "/v1/outcomes", body)


def test_many_outcomes_at_once(trireme, backend):
    """POST /v1/outcomes: 300 jobs claimed in three claims, finished in one
    request; each outcome is fenced by its own token and answered in order;
    the same outcomes again change nothing."""
    srv = start(trireme, backend)
    r = http(srv.port, "POST", "/v1/jobs",
             [{"kind": srv.kind, "payload": {"i": i}, "max_attempts": 2} for i in range(300)])
    assert r.status == 201
    jobs = []
    for _ in range(3):
        jobs += claim(srv.port, {"kinds": [srv.kind], "max": 100}).json["jobs"]
    assert len(jobs) == 300 and len({j["id"] for j in jobs}) == 300
    outs = []
    for n, j in enumerate(jobs):
        o = {"id": j["id"], "token": j["token"]}
        if n % 10 == 1:
            o.update(ok=False, error=f"boom é {n}", retry_in=0)
        elif n % 10 == 2:
            o.update(ok=False, error="bad input", retry=False)
        elif n % 10 == 3:
            o.update(ok=True, token="1.not-the-secret")
        else:
            o.update(ok=True, result={"n": n, "text": "ünïcode \"quoted\""})
        outs.append(o)
    outs.append({"id": 987654321, "token": jobs[0]["token"], "ok": True})
    r = outcomes(srv.port, {"outcomes": outs})
    assert r.status == 200, r
    got = r.json["outcomes"]
    assert [a["id"] for a in got] == [o["id"] for o in outs]
    for n, (o, a) in enumerate(zip(outs[:300], got)):
        want = {1: "pending", 2: "failed"}.get(n % 10, "succeeded")
        if n % 10 == 3:
            assert a == {"id": o["id"], "error": "stale_token"}, a
        else:
            assert a["status"] == want, (n, a)
    assert got[300] == {"id": 987654321, "error": "not_found"}
    for n in (0, 1, 2, 3, 4):
        j = get_job(srv.port, outs[n]["id"])
        if n == 0 or n == 4:
            assert j["status"] == "succeeded" and j["result"] == outs[n]["result"], j
            assert j["progress_percent"] == 100
        elif n == 1:
            assert j["status"] == "pending" and j["last_error"] == "boom é 1", j
        elif n == 2:
            assert j["status"] == "failed" and j["last_error"] == "bad input", j
        else:
            assert j["status"] == "running", j
    # the same outcomes again: every token is spent
    r = outcomes(srv.port, {"outcomes": outs[:300]})
    assert r.status == 200 and all(a.get("error") == "stale_token" for a in r.json["outcomes"]), r
    assert len(jobs_of(srv.port, srv.kind, "succeeded")) == 210
    # the retried ones come back with a new attempt, and a fail then makes them dead
    again = claim(srv.port, {"kinds": [srv.kind], "max": 100, "wait": 5}).json["jobs"]
    assert len(again) == 30 and all(j["attempt"] == 2 for j in again)
    r = outcomes(srv.port, {"outcomes": [{"id": j["id"], "token": j["token"], "ok": False}
                                         for j in again]})
    assert r.status == 200 and {a["status"] for a in r.json["outcomes"]} == {"dead"}, r
    assert get_job(srv.port, again[0]["id"])["last_error"] == "failed by its worker"


def test_many_outcomes_bad_input_applies_none(trireme, backend):
    srv = start(trireme, backend)
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    j = claim(srv.port, {"kinds": [srv.kind]}).json["jobs"][0]
    good = {"id": jid, "token": j["token"], "ok": True}
    for body, says in (
            ({}, "outcomes"), ({"outcomes": []}, "1 to 1000"),
            ({"outcomes": [good], "extra": 1}, "outcomes"),
            ({"outcomes": [good] * 1001}, "1 to 1000"),
            ({"outcomes": [good, dict(good)]}, f"job {jid} has more than one outcome"),
            ({"outcomes": [good, {"id": 5, "ok": True}]}, "outcomes[1]: token is required"),
            ({"outcomes": [good, {"id": 0, "token": "1.x", "ok": True}]}, "outcomes[1]: id"),
            ({"outcomes": [good, {"id": 5, "token": "1.x"}]}, "outcomes[1]: ok must be"),
            ({"outcomes": [good, {"id": 5, "token": "1.x", "ok": True, "retry": True}]},
             "outcomes[1]: retry is not a field"),
            ({"outcomes": [good, {"id": 5, "token": "1.x", "ok": False, "retry_in": -1}]},
             "outcomes[1]: retry_in must be"),
            ({"outcomes": [good, "x"]}, "outcomes[1]: must be an object")):
        r = outcomes(srv.port, body)
        assert r.status == 400 and says in r.json["message"], (body, r)
    assert get_job(srv.port, jid)["status"] == "running"  # none was applied
    assert http(srv.port, "POST", "/v1/outcomes", {"outcomes": [good]}, key=None).status == 401
    r = outcomes(srv.port, {"outcomes": [good]})
    assert r.status == 200 and r.json["outcomes"][0]["status"] == "succeeded", r
