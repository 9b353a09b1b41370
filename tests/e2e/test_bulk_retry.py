"""
test_bulk_retry.py - POST /v1/jobs/retry: the finished jobs a filter
selects retried at once (the dashboard's "retry all"), on both queue
backends: dead jobs of one kind come back pending with fresh attempts, a
limit takes the newest and says more remain, another kind's and other
statuses' jobs are left alone, bad filters are 400 and need jobs:write.
Redis is a private server per test: a listing on Redis reads at most
RQ_LIST_BUDGET job ids per call and says "more" when it stopped there, so
"no more" can only be asserted on a server holding this test's jobs alone.
"""
from __future__ import annotations

import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

pytest_plugins = ["pgtools"]


@pytest.fixture(params=["postgres", "redis"])
def env(request, db, tmp_path):
    e = db.env(TRIREME_API_KEYS=f"{API_KEY},reader:jobs:read")
    if request.param == "redis":
        r = Redis(tmp_path)
        request.addfinalizer(r.stop)
        e.update(REDIS_URL=r.url, QUEUE_BACKEND="redis")
    return e


def finish(srv, kind, n, retry):
    """n jobs of a pull kind, claimed and failed: dead (retry at the last
    attempt) or failed (no retry)."""
    ids = [enqueue(srv.port, {"kind": kind, "max_attempts": 1})["id"] for _ in range(n)]
    jobs = http(srv.port, "POST", "/v1/claim", {"kinds": [kind], "max": n}).json["jobs"]
    r = http(srv.port, "POST", "/v1/outcomes", {"outcomes": [
        {"id": j["id"], "token": j["token"], "ok": False, "error": "boom", "retry": retry}
        for j in jobs]})
    assert r.status == 200, r
    return ids


def test_retry_many(trireme, env):
    tag = uuid.uuid4().hex[:6]
    a, b = f"a_{tag}", f"b_{tag}"
    srv = trireme("--roles=web", f"--pull-kinds={a},{b}", threads=1, env=env)
    dead = finish(srv, a, 5, True)
    failed = finish(srv, a, 2, False)
    other = finish(srv, b, 2, True)
    assert {get_job(srv.port, i)["status"] for i in dead} == {"dead"}
    r = http(srv.port, "POST", "/v1/jobs/retry", {"kind": a, "limit": 3})
    assert r.status == 200 and r.json["retried"] == 3 and r.json["more"] is True, r
    assert sorted(r.json["ids"]) == sorted(dead)[2:]  # newest first
    r = http(srv.port, "POST", "/v1/jobs/retry", {"kind": a})
    assert r.status == 200 and r.json["retried"] == 2 and r.json["more"] is False, r
    for i in dead:
        j = get_job(srv.port, i)
        assert j["status"] == "pending" and j["attempts"] == 0 and not j["last_error"], j
    assert {get_job(srv.port, i)["status"] for i in failed} == {"failed"}
    assert {get_job(srv.port, i)["status"] for i in other} == {"dead"}
    r = http(srv.port, "POST", "/v1/jobs/retry", {"kind": a, "status": "failed"})
    assert r.status == 200 and sorted(r.json["ids"]) == sorted(failed), r
    r = http(srv.port, "POST", "/v1/jobs/retry", {"kind": a})
    assert r.json == {"retried": 0, "ids": [], "more": False}, r
    for body in ({"status": "running"}, {"limit": 0}, {"limit": 501}, {"kind": ""},
                 {"nope": 1}, {"limit": 1.5}):
        assert http(srv.port, "POST", "/v1/jobs/retry", body).status == 400, body
    assert http(srv.port, "POST", "/v1/jobs/retry", {"kind": b}, key="reader").status == 403
    assert {get_job(srv.port, i)["status"] for i in other} == {"dead"}
