"""
test_queue_counts.py - jobs by queue and status: GET /v1/queues and the
trireme_queue_jobs gauge of /metrics, on both backends, against the real
binary and a real store (a fresh database, a private Redis).

Checks the counts as jobs move (pending, delayed counted as pending, then
succeeded on PostgreSQL; gone from pending and running on Redis, which
does not count finished jobs), that a sample serves QUEUE_COUNTS_TTL_MS
(2 s) and is then taken again, that /metrics shows the same numbers and
passes promtool, and that the route wants a credential.
"""
from __future__ import annotations

import time

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, db, enqueue, http, pg_url, wait_until, wait_worker_ready  # noqa: F401,E402
from test_metrics import promtool, scrape, value  # noqa: E402
from test_redis_queue import redis  # noqa: F401,E402  (fixture)
from test_redis_queue import start as redis_start  # noqa: E402

TTL_S = 2.0  # QUEUE_COUNTS_TTL_MS


def counts(port) -> dict:
    r = http(port, "GET", "/v1/queues")
    assert r.status == 200, r
    assert r.json["sampled_at"].endswith("Z") and r.json["capped"] == []
    return r.json


def of(doc, queue) -> dict:
    return next((q for q in doc["queues"] if q["queue"] == queue), {})


def fill(port):
    for _ in range(3):
        enqueue(port, {"kind": "noop", "queue": "qc_a"})
    enqueue(port, [{"kind": "noop", "queue": "qc_b", "delay": 3600} for _ in range(2)])


def check_sampling(port):
    """A sample serves TTL_S: the same answer meanwhile, a new one after."""
    first = counts(port)
    enqueue(port, {"kind": "noop", "queue": "qc_c", "delay": 3600})
    again = counts(port)
    if time.monotonic() - check_sampling.t0 < TTL_S - 0.3:
        assert again["sampled_at"] == first["sampled_at"] and not of(again, "qc_c")
    wait_until(lambda: of(counts(port), "qc_c").get("pending") == 1, 10,
               what=lambda: counts(port))


def check_metrics(port, queue, status, n):
    text, fam = scrape(port)
    promtool(text)
    assert value(fam, "trireme_queue_jobs", "trireme_queue_jobs", queue=queue,
                 status=status) == n, text
    assert value(fam, "trireme_queue_jobs_capped", "trireme_queue_jobs_capped") == 0


def test_counts_postgres(trireme, db):  # noqa: F811
    web = trireme("--roles=web", threads=1, env=db.env())
    assert http(web.port, "GET", "/v1/queues", key=None).status == 401
    fill(web.port)
    doc = counts(web.port)
    assert of(doc, "qc_a") == {"queue": "qc_a", "pending": 3, "running": 0, "succeeded": 0,
                               "failed": 0, "dead": 0, "cancelled": 0}, doc
    assert of(doc, "qc_b")["pending"] == 2  # delayed jobs are pending until due
    check_metrics(web.port, "qc_a", "pending", 3)
    check_sampling.t0 = time.monotonic()
    check_sampling(web.port)
    w = trireme("--roles=worker", "--queues=qc_a", threads=1, env=db.env())
    wait_worker_ready(w, 1)
    wait_until(lambda: of(counts(web.port), "qc_a").get("succeeded") == 3, 20,
               what=lambda: counts(web.port))
    assert of(counts(web.port), "qc_a")["pending"] == 0
    check_metrics(web.port, "qc_a", "succeeded", 3)


def test_counts_redis(trireme, redis):  # noqa: F811
    web = redis_start(trireme, redis.url, roles="web")
    fill(web.port)
    doc = counts(web.port)
    # no worker has read qc_a yet: every entry of its stream waits
    assert of(doc, "qc_a") == {"queue": "qc_a", "pending": 3, "running": 0}, doc
    assert of(doc, "qc_b") == {"queue": "qc_b", "pending": 2, "running": 0}, doc
    check_metrics(web.port, "qc_a", "pending", 3)
    check_sampling.t0 = time.monotonic()
    check_sampling(web.port)
    redis_start(trireme, redis.url, roles="worker", queues="qc_a")
    wait_until(lambda: of(counts(web.port), "qc_a").get("pending") == 0, 20,
               what=lambda: counts(web.port))
    assert of(counts(web.port), "qc_a")["running"] == 0
    # and with the group made, new entries count by its lag
    check_metrics(web.port, "qc_a", "pending", 0)


def test_counts_without_a_store(trireme):
    dead = "postgresql://trireme@127.0.0.1:9/trireme?connect_timeout=1"
    srv = trireme("--roles=web", "--migrate=off", threads=1,
                  env={"DATABASE_URL": dead, "TRIREME_API_KEYS": API_KEY})
    r = http(srv.port, "GET", "/v1/queues")
    assert r.status == 503 and r.header("Retry-After") == "1", r
    text, fam = scrape(srv.port)  # a scrape still answers, without the gauge
    assert "trireme_queue_jobs{" not in text
