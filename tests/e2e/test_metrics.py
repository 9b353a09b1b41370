"""GET /metrics: the Prometheus text format, checked by prometheus_client's
parser and by `promtool check metrics`, with counters that move as jobs run
on both queue backends."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's python3-prometheus-client, from a non-Debian interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

from pgtools import API_KEY, db, enqueue, http, pg_url, wait_until, wait_worker_ready  # noqa: F401
from beattools import beat_db  # noqa: F401  (fixture)
from test_redis_queue import redis  # noqa: F401  (fixture)
from test_redis_queue import start as redis_start


def scrape(port: int, key: str | None = API_KEY) -> tuple[str, dict]:
    r = http(port, "GET", "/metrics", key=key)
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode("utf-8")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return text, families


def promtool(text: str):
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed (Debian package prometheus; tools/deps.sh test)"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def value(families: dict, family: str, sample: str, **labels) -> float:
    total = 0.0
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def check_histograms(families: dict):
    for f in families.values():
        if f.type != "histogram":
            continue
        series: dict = {}
        for s in f.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None})
            if s.name.endswith("_bucket"):
                series[key]["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                series[key]["count"] = s.value
        for key, h in series.items():
            counts = [v for _, v in sorted(h["buckets"])]
            assert counts == sorted(counts), f"{f.name}{key}: buckets not monotone"
            assert counts[-1] == h["count"], f"{f.name}{key}: +Inf != _count"


def job_counts(families, queue, kind) -> dict:
    return {n: value(families, f"trireme_jobs_{n}", f"trireme_jobs_{n}_total", queue=queue,
                     kind=kind)
            for n in ("enqueued", "started", "succeeded", "failed", "retried", "dead")}


def run_jobs(port: int):
    for _ in range(3):
        enqueue(port, {"kind": "noop", "payload": {}})
    # The same unique_key twice: one job created, one counted.
    key = f"metrics-{time.monotonic_ns()}"
    enqueue(port, {"kind": "noop", "unique_key": key}, expect=201)
    assert enqueue(port, {"kind": "noop", "unique_key": key}, expect=200)["created"] is False
    # An array: each job counted under its own queue.
    enqueue(port, [{"kind": "noop", "queue": "metrics_q"}, {"kind": "noop", "queue": "metrics_q"}])
    # Fails twice: one retry, then dead.
    enqueue(port, {"kind": "sleep", "payload": {"ms": 1, "fail": "boom"}, "max_attempts": 2})
    # A bad payload at run time fails for good at once.
    enqueue(port, {"kind": "sleep", "payload": {"ms": 1, "fail": 7}, "max_attempts": 5},
            expect=None)


def check_backend(port: int):
    text, fam = scrape(port)
    promtool(text)
    before = job_counts(fam, "default", "noop")
    run_jobs(port)

    def done():
        _, f = scrape(port)
        return (job_counts(f, "default", "noop")["succeeded"] >= before["succeeded"] + 4
                and job_counts(f, "default", "sleep")["dead"] >= 1)
    wait_until(done, timeout=20, what="jobs to finish")
    text, fam = scrape(port)
    promtool(text)
    check_histograms(fam)
    noop = job_counts(fam, "default", "noop")
    assert noop["succeeded"] - before["succeeded"] == 4
    assert noop["started"] - before["started"] == 4
    assert noop["enqueued"] - before["enqueued"] == 4
    assert job_counts(fam, "metrics_q", "noop")["enqueued"] == 2
    assert noop["failed"] == noop["dead"] == noop["retried"] == 0
    sleep = job_counts(fam, "default", "sleep")
    assert sleep["enqueued"] == 1  # the bad payload was refused at enqueue (400)
    assert sleep["retried"] == 1
    assert sleep["dead"] >= 1
    assert sleep["failed"] == sleep["retried"] + sleep["dead"]
    # Run time observed once per finished attempt.
    assert value(fam, "trireme_job_run_seconds", "trireme_job_run_seconds_count",
                 kind="noop") == noop["succeeded"]
    # The wait (due to start) observed once per started attempt, and short
    # on an idle worker: the bulk under a second.
    waits = value(fam, "trireme_job_wait_seconds", "trireme_job_wait_seconds_count", kind="noop")
    assert waits == noop["started"], (waits, noop)
    under_1s = value(fam, "trireme_job_wait_seconds", "trireme_job_wait_seconds_bucket",
                     kind="noop", queue="default", le="1")
    assert under_1s >= noop["started"] - before["started"] - 1, under_1s
    # HTTP by route pattern, never the raw path.
    assert value(fam, "trireme_http_requests", "trireme_http_requests_total", route="/v1/jobs",
                 method="POST", status="201") >= 4
    for s in fam["trireme_http_requests"].samples:
        assert "{" in s.labels["route"] or not s.labels["route"][-1].isdigit()
    assert value(fam, "trireme_worker_slots", "trireme_worker_slots") > 0
    rss = value(fam, "process_resident_memory_bytes", "process_resident_memory_bytes")
    assert 1 << 20 < rss < 1 << 34
    assert 0 < value(fam, "process_open_fds", "process_open_fds") < value(
        fam, "process_max_fds", "process_max_fds")
    assert value(fam, "process_start_time_seconds", "process_start_time_seconds") > 1.6e9
    return fam


def test_metrics_postgres(trireme, db):
    srv = trireme("--roles=web,worker", threads=2, env=db.env())
    wait_worker_ready(srv, 2)
    fam = check_backend(srv.port)
    assert value(fam, "trireme_pg_connections_up", "trireme_pg_connections_up") >= 1
    assert value(fam, "trireme_pg_connects", "trireme_pg_connects_total") >= 1


def test_metrics_redis(trireme, redis):  # noqa: F811
    srv = redis_start(trireme, redis.url, threads=2)
    fam = check_backend(srv.port)
    assert value(fam, "trireme_redis_connections_up", "trireme_redis_connections_up") >= 1


def test_metrics_auth_and_public(trireme, db):
    srv = trireme("--roles=web", env=db.env())
    assert http(srv.port, "GET", "/metrics", key=None).status == 401
    assert http(srv.port, "GET", "/metrics", key="wrong").status == 403
    scrape(srv.port)
    pub = trireme("--roles=web", "--metrics-public", env=db.env())
    scrape(pub.port, key=None)
    off = trireme("--roles=web", "--metrics=false", env=db.env())
    assert http(off.port, "GET", "/metrics").status == 404


def test_label_cardinality_is_bounded(trireme, db):
    srv = trireme("--roles=web", "--metrics-max-series=2", threads=1, env=db.env())
    for i in range(10):
        http(srv.port, "GET", f"/v1/jobs/{i + 1}")          # route /v1/jobs/{id}, 404
        http(srv.port, "GET", f"/v1/jobs/x{i}")              # 400
        http(srv.port, "GET", f"/v1/jobs/{i + 1}", key=None)  # 401
        http(srv.port, "GET", "/healthz")                    # 200
        http(srv.port, "GET", f"/nope/{i}")                  # unmatched, 404
    text, fam = scrape(srv.port)
    promtool(text)
    samples = fam["trireme_http_requests"].samples
    assert len(samples) <= 3, samples  # 2 label sets and "other"
    assert any(s.labels["route"] == "other" for s in samples)
    assert sum(s.value for s in samples) == 50  # nothing lost: the rest is under "other"
    assert not any(s.labels["route"].startswith("/nope") for s in samples)


def test_beat_fires_and_lateness(trireme, beat_db):  # noqa: F811
    from beattools import add_schedule
    add_schedule(beat_db, "metrics-tick", "@every 1s")
    srv = trireme("--roles=web,beat", threads=1, env=beat_db.env())
    srv.wait_log(r"beat: schedules loaded", timeout=15)
    wait_until(lambda: value(scrape(srv.port)[1], "trireme_beat_fired",
                             "trireme_beat_fired_total") >= 2, timeout=15, what="two fires")
    text, fam = scrape(srv.port)
    promtool(text)
    check_histograms(fam)
    fired = value(fam, "trireme_beat_fired", "trireme_beat_fired_total")
    late = value(fam, "trireme_beat_lateness_seconds", "trireme_beat_lateness_seconds_count")
    assert 1 <= late <= fired
    # Fired on time: well under a second late (the 10 s bucket holds them all).
    assert value(fam, "trireme_beat_lateness_seconds", "trireme_beat_lateness_seconds_bucket",
                 le="10") == late
    assert value(fam, "trireme_beat_skipped", "trireme_beat_skipped_total") == 0
