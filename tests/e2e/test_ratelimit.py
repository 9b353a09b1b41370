"""
test_ratelimit.py - --rate-limits: exactly N requests pass, then 429 with
Retry-After and a JSON body, and the budget is shared by every instance
through Redis. Needs TRIREME_TEST_REDIS_URL.
"""
from __future__ import annotations

import http.client
import json
import os
import uuid

import pytest


def redis_url() -> str:
    v = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not v:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set (tools/test.sh starts Redis)")
    return v


def get(port: int, path: str, headers: dict[str, str] | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def test_exactly_n_then_429_shared_across_instances(trireme):
    tenant = uuid.uuid4().hex  # a fresh bucket for this run
    rules = "--rate-limits=GET /healthz header:X-Tenant 6/1m"
    env = {"REDIS_URL": redis_url()}
    a = trireme("--roles=web", rules, env=env)
    b = trireme("--roles=web", rules, env=env)
    statuses = [get((a, b)[i % 2].port, "/healthz", {"X-Tenant": tenant})[0] for i in range(9)]
    assert statuses == [200] * 6 + [429] * 3, statuses
    status, headers, body = get(a.port, "/healthz", {"X-Tenant": tenant})
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    doc = json.loads(body)
    assert doc["error"] == "rate_limited" and doc["status"] == 429 and doc["request_id"]
    # Another key has its own budget; unmatched routes are not limited.
    assert get(a.port, "/healthz", {"X-Tenant": tenant + "x"})[0] == 200
    assert get(a.port, "/readyz")[0] == 200


def test_rules_need_redis_and_must_parse(trireme):
    from conftest import run_cli
    r = run_cli("run", "--rate-limits=GET /healthz ip 5/1s")
    assert r.returncode == 2 and "REDIS_URL" in r.stderr
    r = run_cli("run", "--rate-limits=GET /healthz ip five/1s", env={"REDIS_URL": redis_url()})
    assert r.returncode != 0 and "rate limit rule" in r.stderr


def test_redis_down_fails_open(trireme):
    srv = trireme("--roles=web", "--rate-limits=GET /healthz ip 1/1m",
                  env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert [get(srv.port, "/healthz")[0] for _ in range(3)] == [200, 200, 200]
    srv.wait_log("rate limit check failed")
