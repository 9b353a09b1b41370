"""
test_kind_limits.py - --kind-limits: a job kind's starts are paced across
the whole fleet through Redis; jobs over the limit wait (no attempt spent).
Needs TRIREME_TEST_DATABASE_URL and TRIREME_TEST_REDIS_URL.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from conftest import run_cli


def env_url(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set (tools/test.sh starts the servers)")
    return v


def psql(sql: str) -> str:
    out = subprocess.run(["psql", env_url("TRIREME_TEST_DATABASE_URL"), "-qAtX", "-c", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_two_workers_share_one_kind_budget(trireme):
    db, redis = env_url("TRIREME_TEST_DATABASE_URL"), env_url("TRIREME_TEST_REDIS_URL")
    assert run_cli("migrate", env={"DATABASE_URL": db}).returncode == 0
    queue = "kl_" + uuid.uuid4().hex[:8]
    port = redis.rsplit(":", 1)[1].split("/")[0]
    subprocess.run(["redis-cli", "-p", port, "del", "trireme:kindlimit:sleep"], capture_output=True,
                   timeout=10)
    env = {"DATABASE_URL": db, "REDIS_URL": redis}
    for _ in range(2):
        trireme("--roles=worker", f"--queues={queue}", "--kind-limits=sleep 4/2s", env=env)
    psql(f"INSERT INTO trireme.jobs (queue, kind, payload) SELECT '{queue}', 'sleep', "
         f"'{{\"ms\": 1}}' FROM generate_series(1, 10)")
    time.sleep(0.8)
    done = int(psql(f"SELECT count(*) FROM trireme.jobs WHERE queue = '{queue}' AND status = 'succeeded'"))
    # 4 at once, then one per 500 ms across both workers: not all 10 yet.
    assert 4 <= done <= 6, done
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        done = int(psql(f"SELECT count(*) FROM trireme.jobs WHERE queue = '{queue}' AND status = 'succeeded'"))
        if done == 10:
            break
        time.sleep(0.1)
    assert done == 10
    # Waiting for the limit is not a failed attempt.
    assert psql(f"SELECT max(attempts) FROM trireme.jobs WHERE queue = '{queue}'") == "1"
