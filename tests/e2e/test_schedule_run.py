"""
test_schedule_run.py - POST /v1/schedules/{name}/run ("run now"), on both
queue backends (schedules live in PostgreSQL; the job goes to the queue
backend): each run enqueues the schedule's job at once, a disabled
schedule included, and the worker runs it; the schedule itself does not
change; an unknown schedule is 404, a credential without schedules:write
403.
"""
from __future__ import annotations

import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import get_job, http, wait_until  # noqa: E402
from test_bulk_retry import env  # noqa: E402,F401  (fixture: both queue backends, a reader key)

pytest_plugins = ["pgtools"]


def test_run_now(trireme, env):
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--queues={queue}", threads=1, env=env)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    name = "nightly-" + uuid.uuid4().hex[:6]
    r = http(srv.port, "POST", "/v1/schedules",
             {"name": name, "cron": "0 3 * * *", "kind": "noop", "queue": queue,
              "payload": {"report": "daily"}, "priority": 5, "max_attempts": 2,
              "timeout": "20s", "enabled": False})
    assert r.status == 201, r
    before = http(srv.port, "GET", f"/v1/schedules/{name}").json
    ids = []
    for _ in range(2):
        r = http(srv.port, "POST", f"/v1/schedules/{name}/run")
        assert r.status == 201 and r.json["created"] is True, r
        ids.append(r.json["id"])
    assert ids[0] != ids[1]
    for jid in ids:
        wait_until(lambda: get_job(srv.port, jid)["status"] == "succeeded", 20,
                   what=lambda: get_job(srv.port, jid))
        j = get_job(srv.port, jid)
        assert (j["kind"], j["queue"], j["payload"], j["priority"], j["max_attempts"]) == \
            ("noop", queue, {"report": "daily"}, 5, 2), j
    after = http(srv.port, "GET", f"/v1/schedules/{name}").json
    assert after == before  # a manual run is not a slot: nothing recorded
    assert http(srv.port, "POST", f"/v1/schedules/no-{name}/run").status == 404
    assert http(srv.port, "POST", f"/v1/schedules/{name}/run", key="reader").status == 403
