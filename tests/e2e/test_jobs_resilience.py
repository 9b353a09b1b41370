"""
test_jobs_resilience.py - the job queue when the database misbehaves or
sits behind a transaction pooler: PostgreSQL restarted under load (no
acknowledged job is lost, requests fail with a JSON 503 at worst, the
server reconnects by itself), and PgBouncer in transaction mode with and
without a direct URL for LISTEN.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from conftest import REPO_ROOT, free_port  # noqa: E402
from pgtools import enqueue, http, url_port, wait_until, wait_worker_ready  # noqa: E402

pytest_plugins = ["pgtools"]


# --- 10. PostgreSQL restarted under load -----------------------------------------

def pg_ctl_restart(data_dir: str):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                  key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    assert bins, "pg_ctl not found under /usr/lib/postgresql"
    # -l: the restarted postmaster must not inherit our pipes.
    cmd = [bins[-1], "-D", data_dir, "-l", os.path.join(data_dir, "server.log"), "-m", "fast",
           "-w", "-t", "60", "restart"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=90)
    assert p.returncode == 0, f"pg_ctl restart failed: {p.stderr}"


def test_postgres_restart_under_load_loses_no_acknowledged_job(trireme, db):
    data_dir = os.environ.get("TRIREME_TEST_PG_DIR")
    if not data_dir:
        pytest.fail("TRIREME_TEST_PG_DIR is not set: this test restarts the test PostgreSQL "
                    "(its data directory)", pytrace=False)
    srv = trireme("--roles=web,worker", "--lease=3s", threads=2, env=db.env())
    wait_worker_ready(srv, 2)

    acked, refused, errors = [], [], []
    stop = threading.Event()

    def client():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = http(srv.port, "POST", "/v1/jobs",
                         [{"kind": "sleep", "payload": {"ms": 5}}] * 3, timeout=20)
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                errors.append(repr(e))
                time.sleep(0.05)
                continue
            if r.status == 201:
                acked.extend(j["id"] for j in r.json["jobs"])
            else:
                refused.append(r)
            time.sleep(0.01)

    t = threading.Thread(target=client, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        time.sleep(2.5)
        before = len(acked)
        pg_ctl_restart(data_dir)
        restarted = time.monotonic()
        # keep the load on for ~10 s in all, and at least 3 s after the restart
        time.sleep(max(10 - (restarted - t0), 3))
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive(), "the client thread hung"
    assert before > 0, "nothing was enqueued before the restart"
    assert len(acked) > before, "nothing was enqueued after the restart"
    assert not errors, f"requests failed without an HTTP answer: {errors[:5]}"
    for r in refused:
        assert r.status == 503, r
        body = r.json
        assert body["error"] == "unavailable" and body["status"] == 503, body
        assert "json" in (r.header("Content-Type") or ""), r.headers

    srv.wait_log(r"database connection lost", timeout=10)
    lost_at = min(i for i, ln in enumerate(srv.log_lines()) if "database connection lost" in ln)
    wait_until(lambda: any("database connected" in ln
                           for ln in srv.log_lines()[lost_at:]), 20,
               what="the server logs that it reconnected")

    ids = ",".join(map(str, acked))
    wait_until(lambda: db.count(f"id IN ({ids}) AND status = 'succeeded'") == len(acked), 40,
               interval=0.5,
               what=lambda: f"all {len(acked)} acknowledged jobs succeed; "
                            f"{db.rows(f'SELECT status, count(*) FROM trireme.jobs WHERE id IN ({ids}) GROUP BY 1')}")
    assert db.count(f"id IN ({ids})") == len(set(acked)), "an acknowledged job is missing"

    r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(
        http(srv.port, "GET", "/readyz", key=None)), 15, interval=0.2, what="/readyz is ok again")
    assert r.json["status"] == "ok" and r.json["database"] == "ok", r
    # and the API works normally again
    jid = enqueue(srv.port, {"kind": "noop"})["id"]
    db.wait_status(jid, "succeeded", timeout=15)


def test_worker_drains_promptly_without_database(trireme):
    """An idle worker whose database is unreachable exits at once on SIGTERM
    instead of waiting out --grace for queries that can never be sent."""
    url = f"postgresql://trireme@127.0.0.1:{free_port()}/trireme"
    srv = trireme("--roles=worker", "--migrate=off", "--grace=10s", threads=2,
                  env={"DATABASE_URL": url})
    srv.wait_log(r"database connection failed", count=2)
    time.sleep(2.2)  # the start-up claim and the first reap are queued by now
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait(timeout=20)
    took = time.monotonic() - t0
    assert rc == 0, srv.log[-2000:]
    assert took < 3, f"SIGTERM took {took:.1f}s with nothing running"
    assert "grace period over" not in srv.log
    srv.wait_log(r"worker drained", count=2)


# --- 14. PgBouncer in transaction mode -------------------------------------------

@pytest.fixture
def pgbouncer(pg_url):
    """A transaction-mode PgBouncer in front of the test PostgreSQL; its URL."""
    if not shutil.which("pgbouncer"):
        pytest.fail("pgbouncer is not installed (tools/deps.sh test installs it)", pytrace=False)
    d = tempfile.mkdtemp(prefix="trireme-e2e-pgbouncer-", dir="/tmp")
    os.chmod(d, 0o755)  # it runs as the postgres user when we are root
    script = str(REPO_ROOT / "tools" / "pgbouncer-local.sh")
    try:
        p = subprocess.run([script, "start", d, str(free_port()), str(url_port(pg_url))],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"pgbouncer-local.sh start failed: {p.stderr}"
        url = p.stdout.strip().splitlines()[-1]
        assert url.startswith("postgresql://") and "pgbouncer=true" in url, url
        yield url
    finally:
        subprocess.run([script, "stop", d], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def test_pgbouncer_with_direct_url_for_listen(pgbouncer, trireme, db):
    # pgbouncer first: set up before, torn down after the servers using it
    srv = trireme("--roles=web,worker", "--poll-interval=30s", threads=2,
                  env=db.env(DATABASE_URL=pgbouncer, DATABASE_DIRECT_URL=db.url))
    wait_worker_ready(srv, 2)
    assert "polling every --poll-interval" not in srv.log
    time.sleep(0.3)
    ids = [j["id"] for j in enqueue(srv.port, [{"kind": "noop"}] * 200)["jobs"]]
    assert len(set(ids)) == 200
    # --poll-interval=30s: only LISTEN (over the direct URL) makes this quick
    db.wait_all("status = 'succeeded'", 200, timeout=15)
    one = http(srv.port, "GET", f"/v1/jobs/{ids[0]}")
    assert one.status == 200 and one.json["status"] == "succeeded", one
    assert http(srv.port, "GET", "/readyz", key=None).json["database"] == "ok"


def test_pgbouncer_without_direct_url_polls(pgbouncer, trireme, db):
    srv = trireme("--roles=web,worker", "--poll-interval=500ms", threads=2,
                  env=db.env(DATABASE_URL=pgbouncer))
    line = srv.wait_log(r"polling every --poll-interval", timeout=10)[0]
    assert "DATABASE_DIRECT_URL" in line and "poll_interval_ms=500" in line, line
    srv.wait_log(r"database connected", timeout=10)
    ids = [j["id"] for j in enqueue(srv.port, [{"kind": "sleep", "payload": {"ms": 1}}] * 200)
           ["jobs"]]
    db.wait_all("status = 'succeeded'", 200, timeout=20)
    # later work is still found by the poll
    time.sleep(1.0)
    jid = enqueue(srv.port, {"kind": "noop"})["id"]
    db.wait_status(jid, "succeeded", timeout=5)
    assert db.count(f"id IN ({','.join(map(str, ids))}) AND attempts = 1") == 200
