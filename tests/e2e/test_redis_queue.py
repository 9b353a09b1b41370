"""
test_redis_queue.py - the job queue on --queue-backend=redis against real
Redis servers: the /v1/jobs API and the CLI, progress and results, retries
then dead, delayed jobs (never early), results that expire, exactly-once
execution across two workers, no job lost when a worker is killed (its
entries are XAUTOCLAIMed after the lease) or when Redis restarts (AOF), the
SIGTERM drain handing jobs back at once, and 4xx JSON for bad input.

Each test starts its own redis-server (tests may restart it, and need no
cleanup); one test also runs on the harness' password-protected Redis
(TRIREME_TEST_REDIS_AUTH_URL) to cover AUTH and SELECT.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from conftest import free_port, run_cli

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402


class Redis:
    """A private redis-server for one test (optionally with AOF)."""

    def __init__(self, tmp_path, aof: bool = False):
        self.dir = tmp_path / f"redis-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir()
        self.port = free_port()
        self.aof = aof
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
                str(self.dir), "--save", "", "--logfile", str(self.dir / "redis.log")]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else \
            ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli("PING") == "PONG", 10, what="redis-server to answer")

    def cli(self, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def redis_aof(tmp_path):
    r = Redis(tmp_path, aof=True)
    yield r
    r.stop()


def env_for(url: str, **extra) -> dict[str, str]:
    e = {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}
    e.update({k: str(v) for k, v in extra.items()})
    return e


def start(trireme, url: str, *flags: str, roles="web,worker", threads=1, queues="default"):
    srv = trireme(f"--roles={roles}", f"--queues={queues}", *flags, threads=threads,
                  env=env_for(url))
    if "worker" in roles:
        srv.wait_log(r"worker listening for new jobs", count=threads, timeout=15)
    return srv


def completions(*servers) -> dict[int, int]:
    """job id -> how many times a 'job completed' line says it ran."""
    seen: dict[int, int] = {}
    for s in servers:
        for m in re.finditer(r"job completed job_id=(\d+)", s.log):
            seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
    return seen


def wait_status(port: int, jid: int, statuses, timeout: float) -> dict:
    if isinstance(statuses, str):
        statuses = (statuses,)
    box = {}

    def done():
        box["j"] = get_job(port, jid)
        return box["j"]["status"] in statuses

    wait_until(done, timeout, interval=0.05, what=lambda: f"job {jid} {statuses}: {box.get('j')}")
    return box["j"]


def will_expire(redis, jid: int) -> bool:
    """Whether a finished job's hash goes after --result-ttl: PEXPIREd, or
    listed in a done:<due> list for PROMOTE's sweep."""
    if int(redis.cli("PTTL", f"trireme:job:{jid}")) > 0:
        return True
    dues = redis.cli("ZRANGE", "trireme:done", "0", "-1").split()
    return any(str(jid) in redis.cli("LRANGE", f"trireme:done:{d}", "0", "-1").split()
               for d in dues)


def ms(ts: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


# --- the API -----------------------------------------------------------------

def test_enqueue_get_progress_and_result_over_http(trireme, redis):
    srv = start(trireme, redis.url)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 1500, "steps": 3}})["id"]
    assert isinstance(jid, int) and jid > 0
    j = wait_until(lambda: (lambda j: j if j["progress_percent"] else None)(get_job(srv.port, jid)),
                   10, what="progress")
    assert j["status"] == "running" and j["attempts"] == 1, j
    assert j["current_step"].startswith("step ") and 0 < j["progress_percent"] < 100, j
    assert j["worker_id"].split(":")[1] == str(srv.proc.pid), j
    done = wait_status(srv.port, jid, "succeeded", 15)
    assert done["result"] == {"slept_ms": 1500} and done["progress_percent"] == 100, done
    assert done["payload"] == {"ms": 1500, "steps": 3} and done["queue"] == "default"
    assert ms(done["finished_at"]) >= ms(done["started_at"]) >= ms(done["created_at"])
    # The same keys as the PostgreSQL backend's job JSON.
    assert set(done) >= {"id", "queue", "kind", "payload", "status", "priority", "attempts",
                         "max_attempts", "timeout_ms", "run_at", "progress_percent",
                         "current_step", "result", "last_error", "unique_key", "worker_id",
                         "lease_until", "created_at", "started_at", "finished_at", "updated_at"}

    # A batch, with a unique_key repeated inside it and against an existing job.
    batch = [{"kind": "noop", "queue": "other", "unique_key": "u-1"},
             {"kind": "noop", "queue": "other", "unique_key": "u-1"},
             {"kind": "noop", "queue": "other", "priority": 5, "max_attempts": 2}]
    r = http(srv.port, "POST", "/v1/jobs", batch)
    assert r.status == 201, r
    jobs = r.json["jobs"]
    assert [x["created"] for x in jobs] == [True, False, True]
    assert jobs[0]["id"] == jobs[1]["id"] != jobs[2]["id"]
    again = http(srv.port, "POST", "/v1/jobs", {"kind": "noop", "queue": "other",
                                                "unique_key": "u-1"})
    assert again.status == 200 and again.json == {"id": jobs[0]["id"], "status": "pending",
                                                  "created": False}, again
    # Nobody reads queue "other": they stay pending and list newest first.
    listed = http(srv.port, "GET", "/v1/jobs?queue=other&limit=1")
    assert listed.status == 200, listed
    assert [x["id"] for x in listed.json["jobs"]] == [jobs[2]["id"]]
    assert listed.json["jobs"][0]["priority"] == 5 and listed.json["jobs"][0]["max_attempts"] == 2
    nxt = http(srv.port, "GET", f"/v1/jobs?queue=other&cursor={listed.json['next_cursor']}")
    assert [x["id"] for x in nxt.json["jobs"]] == [jobs[0]["id"]] and \
        nxt.json["next_cursor"] is None, nxt
    by_status = http(srv.port, "GET", "/v1/jobs?status=succeeded").json["jobs"]
    assert [x["id"] for x in by_status] == [jid]
    # Cancel a pending job, then it cannot be cancelled again; retry brings it back.
    c = http(srv.port, "POST", f"/v1/jobs/{jobs[2]['id']}/cancel")
    assert c.status == 200 and c.json["status"] == "cancelled", c
    c2 = http(srv.port, "POST", f"/v1/jobs/{jobs[2]['id']}/cancel")
    assert c2.status == 409 and c2.json["error"] == "conflict", c2
    rt = http(srv.port, "POST", f"/v1/jobs/{jobs[2]['id']}/retry")
    assert rt.status == 200 and rt.json["status"] == "pending" and rt.json["attempts"] == 0, rt
    assert http(srv.port, "POST", f"/v1/jobs/{jid}/retry").status == 409
    ready = http(srv.port, "GET", "/readyz")
    assert ready.status == 200 and ready.json["redis"] == "ok", ready
    assert ready.json["database"] == "disabled"


def test_bad_input_gets_4xx_json(trireme, redis):
    srv = start(trireme, redis.url, roles="web")
    cases = [
        (b"{not json", 400, "invalid_json"),
        ({"kind": "no-such-kind"}, 400, "invalid_job"),
        ({"kind": "sleep", "payload": {"ms": -1}}, 400, "invalid_job"),
        ({"kind": "noop", "delay": "soon"}, 400, "invalid_job"),
        ({"kind": "noop", "bogus": 1}, 400, "invalid_job"),
        ([], 400, "invalid_job"),
        ([{"kind": "noop"}, {"kind": "noop", "max_attempts": 0}], 400, "invalid_job"),
    ]
    for body, status, code in cases:
        r = http(srv.port, "POST", "/v1/jobs", body)
        assert r.status == status and r.json["error"] == code, (body, r)
        assert r.json["message"], r
    assert "jobs[1].max_attempts" in http(srv.port, "POST", "/v1/jobs", cases[-1][0]).json["message"]
    for path, status in [("/v1/jobs/abc", 400), ("/v1/jobs/999999", 404),
                         ("/v1/jobs?status=bogus", 400), ("/v1/jobs?limit=0", 400),
                         ("/v1/jobs?cursor=x", 400)]:
        r = http(srv.port, "GET", path)
        assert r.status == status and "error" in r.json, (path, r)
    assert http(srv.port, "POST", "/v1/jobs/999999/cancel").status == 404
    assert http(srv.port, "POST", "/v1/jobs", {"kind": "noop"}, key=None).status == 401
    # Nothing reached Redis from the refused batch.
    assert redis.cli("GET", "trireme:seq") == ""


def test_bad_backend_settings_exit_2(trireme):
    r = run_cli("run", "--queue-backend=mongodb", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert r.returncode == 2 and "--queue-backend" in r.stderr, r.stderr
    r = run_cli("run", "--queue-backend=redis")
    assert r.returncode == 2 and "REDIS_URL" in r.stderr, r.stderr
    r = run_cli("run", "--queue-backend=redis", "--result-ttl=0",
                env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert r.returncode == 2 and "--result-ttl" in r.stderr, r.stderr
    h = run_cli("run", "--help")
    assert "--queue-backend" in h.stdout and "--result-ttl" in h.stdout
    assert "transactional" in h.stdout


def test_cli_enqueue_and_jobs(trireme, redis):
    srv = start(trireme, redis.url, roles="worker", queues="cli")
    env = env_for(redis.url)
    r = run_cli("enqueue", "sleep", "--payload={\"ms\": 50}", "--queue=cli", env=env)
    assert r.returncode == 0, r.stderr
    jid = __import__("json").loads(r.stdout)["id"]
    wait_until(lambda: '"status":"succeeded"' in run_cli("jobs", "get", str(jid), env=env).stdout,
               15, what="the CLI-enqueued job to succeed")
    got = __import__("json").loads(run_cli("jobs", "get", str(jid), env=env).stdout)
    assert got["result"] == {"slept_ms": 50} and got["queue"] == "cli", got
    lst = __import__("json").loads(run_cli("jobs", "list", "--queue=cli", env=env).stdout)
    assert [j["id"] for j in lst["jobs"]] == [jid]
    # Cancel a job nobody reads, retry it; errors exit non-zero with one line.
    r = run_cli("enqueue", "noop", "--queue=nobody", env=env)
    other = __import__("json").loads(r.stdout)["id"]
    assert __import__("json").loads(run_cli("jobs", "cancel", str(other), env=env).stdout)[
        "status"] == "cancelled"
    again = run_cli("jobs", "cancel", str(other), env=env)
    assert again.returncode == 1 and "already finished" in again.stderr
    assert run_cli("jobs", "retry", str(other), env=env).returncode == 0
    missing = run_cli("jobs", "get", "987654", env=env)
    assert missing.returncode == 1 and "no job 987654" in missing.stderr
    bad = run_cli("enqueue", "no-such-kind", env=env)
    assert bad.returncode == 2 and "kind" in bad.stderr
    down = run_cli("jobs", "get", "1", env=env_for("redis://127.0.0.1:1/0"))
    assert down.returncode == 1 and "cannot connect to Redis" in down.stderr
    assert completions(srv) == {jid: 1}


def test_auth_and_select_from_the_url(trireme):
    base = os.environ.get("TRIREME_TEST_REDIS_AUTH_URL")
    if not base:
        pytest.fail("TRIREME_TEST_REDIS_AUTH_URL is not set (tools/test.sh starts it)")
    url = re.sub(r"/\d*$", "", base) + "/5"
    q = "auth_" + uuid.uuid4().hex[:8]
    srv = start(trireme, url, queues=q)
    jid = enqueue(srv.port, {"kind": "noop", "queue": q})["id"]
    assert wait_status(srv.port, jid, "succeeded", 15)["attempts"] == 1
    r = run_cli("jobs", "get", str(jid), env=env_for(url))
    assert r.returncode == 0 and '"succeeded"' in r.stdout, r.stderr


# --- retries, delays, expiry -----------------------------------------------------

def test_failing_job_retries_with_backoff_then_dies(trireme, redis):
    srv = start(trireme, redis.url)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 1, "fail": "nope"},
                             "max_attempts": 3})["id"]
    dead = wait_status(srv.port, jid, "dead", 30)
    assert dead["attempts"] == 3 and dead["last_error"] == "nope", dead
    assert dead["finished_at"] and dead["worker_id"] is None, dead
    lines = srv.wait_log(rf"job failed job_id={jid} ", count=3)
    assert "will_retry=true" in lines[0] and "will_retry=true" in lines[1]
    assert "will_retry=false" in lines[2]
    # A permanent failure (bad payload at run time) is not retried.
    perm = enqueue(srv.port, {"kind": "sql", "payload": {"statement": "x"}})["id"]
    failed = wait_status(srv.port, perm, ("failed", "dead"), 15)
    assert failed["status"] == "failed" and failed["attempts"] == 1, failed
    # Redrive: a fresh set of attempts.
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/retry")
    assert r.status == 200 and r.json["attempts"] == 0
    assert wait_status(srv.port, jid, "dead", 30)["attempts"] == 3


def test_time_limit_stops_a_job_on_the_loops_timer(trireme, redis):
    srv = start(trireme, redis.url)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 60000}, "timeout": "300ms",
                             "max_attempts": 2})["id"]
    dead = wait_status(srv.port, jid, "dead", 20)
    assert dead["attempts"] == 2 and "stopped before the sleep ended" in dead["last_error"], dead
    assert len(srv.wait_log(rf"job reached its time limit, asking it to stop job_id={jid} "
                            r"timeout_ms=300", count=2)) == 2


def test_delayed_jobs_run_on_time_not_early(trireme, redis):
    srv = start(trireme, redis.url)
    t = enqueue(srv.port, [{"kind": "noop", "delay": "1500ms"}, {"kind": "noop", "delay": 0},
                           {"kind": "noop", "run_at": "2001-01-01T00:00:00Z"},
                           {"kind": "noop", "run_at": "2100-01-01T00:00:00Z"}])
    late, now_, past, future = (j["id"] for j in t["jobs"])
    for jid in (now_, past):
        wait_status(srv.port, jid, "succeeded", 10)
    j = get_job(srv.port, late)
    assert j["status"] == "pending", j
    j = wait_status(srv.port, late, "succeeded", 15)
    assert ms(j["run_at"]) - ms(j["created_at"]) == pytest.approx(1500, abs=2), j
    assert ms(j["started_at"]) >= ms(j["run_at"]), f"started before it was due: {j}"
    assert get_job(srv.port, future)["status"] == "pending"
    assert redis.cli("ZCARD", "trireme:delayed:default") == "1"


def test_results_expire_after_the_ttl(trireme, redis):
    srv = start(trireme, redis.url, "--result-ttl=1s")
    ok = enqueue(srv.port, {"kind": "noop", "unique_key": "once"})["id"]
    bad = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 1, "fail": "x"},
                             "max_attempts": 1})["id"]
    done = wait_status(srv.port, ok, "succeeded", 10)
    wait_status(srv.port, bad, "dead", 10)
    # A dead job's hash is PEXPIREd; a success is listed for PROMOTE's sweep
    # in the bucket of the first whole second at least the ttl away.
    ttl = int(redis.cli("PTTL", f"trireme:job:{bad}"))
    assert 0 < ttl <= 1000, ttl
    due = int(redis.cli("ZRANGE", "trireme:done", "0", "0"))
    assert due % 1000 == 0 and 1000 <= due - ms(done["finished_at"]) < 2000, (due, done)
    assert redis.cli("LRANGE", f"trireme:done:{due}", "0", "-1") == str(ok)
    ttl = int(redis.cli("PTTL", "trireme:uniq:once"))
    assert 0 < ttl <= 1000, ttl
    assert enqueue(srv.port, {"kind": "noop", "unique_key": "once"}, expect=200)["id"] == ok
    for jid in (ok, bad):
        wait_until(lambda: http(srv.port, "GET", f"/v1/jobs/{jid}").status == 404, 10,
                   what=f"job {jid} to expire")
        assert redis.cli("EXISTS", f"trireme:job:{jid}") == "0"
    r = http(srv.port, "GET", f"/v1/jobs/{ok}")
    assert r.status == 404 and r.json["error"] == "not_found", r
    # The unique key went with it: the same key makes a new job.
    again = enqueue(srv.port, {"kind": "noop", "unique_key": "once"})
    assert again["created"] and again["id"] != ok


def test_expired_results_are_swept_beyond_one_calls_budget(trireme, redis):
    """More successes than one PROMOTE may delete (DONE_SWEEP_MAX, 2000):
    every hash goes, the done lists and their index with them, and a job
    still within its ttl stays."""
    srv = start(trireme, redis.url, "--result-ttl=1s")
    ids = []
    for _ in range(5):
        t = enqueue(srv.port, [{"kind": "noop"} for _ in range(1000)])
        ids += [j["id"] for j in t["jobs"]]
    assert wait_status(srv.port, ids[-1], "succeeded", 20)["attempts"] == 1
    left = ["EVAL", "local n = 0 for i = 1, #ARGV do "
            "n = n + redis.call('EXISTS', 'trireme:job:' .. ARGV[i]) end return n", "0",
            *map(str, ids)]
    wait_until(lambda: redis.cli(*left) == "0", 20, what="every hash to be swept")
    assert srv.log.count("job completed") == 5000
    assert redis.cli("ZCARD", "trireme:done") == "0"
    assert redis.cli("KEYS", "trireme:done:*") == ""
    srv2 = start(trireme, redis.url, "--result-ttl=1h", queues="long")
    kept = enqueue(srv2.port, {"kind": "noop", "queue": "long"})["id"]
    wait_status(srv2.port, kept, "succeeded", 10)
    time.sleep(0.5)  # a few promote ticks
    assert get_job(srv2.port, kept)["status"] == "succeeded"
    assert redis.cli("ZCARD", "trireme:done") == "1"


def test_cancel_stops_a_running_job_at_once(trireme, redis):
    srv = start(trireme, redis.url)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 20000}})["id"]
    wait_status(srv.port, jid, "running", 10)
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/cancel")
    assert r.status == 200 and r.json["status"] == "cancelled"
    srv.wait_log(rf"job cancelled while running, stopping it job_id={jid}", timeout=5)
    srv.wait_log(rf"job stopped after cancellation job_id={jid}", timeout=5)
    # Its delivery is spent at once, not left for a takeover after the lease.
    wait_until(lambda: redis.cli("XPENDING", "trireme:q:default", "trireme").split("\n")[0] == "0",
               5, what="the cancelled job's entry to be acknowledged")
    time.sleep(0.5)
    assert get_job(srv.port, jid)["status"] == "cancelled"


# --- two workers, kill -9, SIGTERM, Redis restart -----------------------------------

def test_two_workers_run_each_job_exactly_once(trireme, redis):
    a = start(trireme, redis.url, "--concurrency=200", "--batch-size=50", roles="worker",
              threads=2)
    b = start(trireme, redis.url, "--concurrency=200", "--batch-size=50", roles="worker",
              threads=2)
    web = start(trireme, redis.url, roles="web")
    n = 3000
    ids = []
    for base in range(0, n, 500):
        batch = [{"kind": "sleep", "payload": {"ms": 1}}] * 250 + [{"kind": "noop"}] * 250
        ids += [j["id"] for j in enqueue(web.port, batch)["jobs"]]
    assert len(set(ids)) == n
    wait_until(lambda: sum(completions(a, b).values()) >= n, 60, interval=0.2,
               what=lambda: f"{n} completions, have {sum(completions(a, b).values())}")
    time.sleep(0.3)
    seen = completions(a, b)
    assert sorted(seen) == sorted(ids) and set(seen.values()) == {1}, \
        [k for k, v in seen.items() if v != 1][:20]
    assert completions(a) and completions(b), "one worker did everything"
    for jid in ids[::97]:
        j = get_job(web.port, jid)
        assert j["status"] == "succeeded" and j["attempts"] == 1, j


def test_killed_worker_loses_no_job(trireme, redis):
    web = start(trireme, redis.url, roles="web")
    n = 40
    ids = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 1500}}] * n)
           ["jobs"]]
    a = start(trireme, redis.url, "--lease=2s", "--concurrency=10", roles="worker")
    wait_until(lambda: len(re.findall(r"jobs fetched", a.log)) >= 1 and
               get_job(web.port, ids[0])["status"] in ("running", "succeeded"), 10,
               what="worker a to start jobs")
    time.sleep(2.0)  # some finish, some run, most wait
    a.kill()
    a.expected_rc = None
    b = start(trireme, redis.url, "--lease=2s", "--concurrency=10", roles="worker")
    wait_until(lambda: all(get_job(web.port, i)["status"] == "succeeded" for i in ids), 60,
               interval=0.3, what="every job to succeed after the kill")
    b.wait_log(r"lease expired, jobs taken over from a stopped worker")
    by_a, by_b = completions(a), completions(b)
    assert set(by_a) | set(by_b) == set(ids)
    assert all(v == 1 for v in by_b.values())
    retaken = [i for i in ids if get_job(web.port, i)["attempts"] == 2]
    assert retaken, "no job was running when the worker died"
    for i in retaken:
        j = get_job(web.port, i)
        assert j["worker_id"].split(":")[1] == str(b.proc.pid), j
    assert redis.cli("XPENDING", "trireme:q:default", "trireme").split("\n")[0] == "0"


def test_sigterm_hands_unfinished_jobs_back(trireme, redis):
    web = start(trireme, redis.url, roles="web")
    ids = [j["id"] for j in enqueue(web.port, [{"kind": "sleep", "payload": {"ms": 8000}}] * 3)
           ["jobs"]]
    a = start(trireme, redis.url, "--grace=2s", roles="worker")
    for i in ids:
        wait_status(web.port, i, "running", 10)
    t0 = time.monotonic()
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=10) == 0, a.log[-3000:]
    assert time.monotonic() - t0 < 5
    a.wait_log(r"unfinished jobs handed back to the queue jobs=3")
    for i in ids:
        j = get_job(web.port, i)
        assert j["status"] == "pending" and j["attempts"] == 0, j
        assert "handed back" in j["last_error"], j
    # The default lease is 30 s: the next worker starts them now, not then.
    b = start(trireme, redis.url, roles="worker")
    t1 = time.monotonic()
    for i in ids:
        wait_status(web.port, i, "running", 10)
    assert time.monotonic() - t1 < 10
    for i in ids:
        j = wait_status(web.port, i, "succeeded", 20)
        assert j["attempts"] == 1 and j["worker_id"].split(":")[1] == str(b.proc.pid), j


def test_redis_restart_mid_run_loses_nothing(trireme, redis_aof):
    r = redis_aof
    w = start(trireme, r.url, "--concurrency=20", roles="web,worker")
    n = 300
    ids = [j["id"] for j in enqueue(w.port, [{"kind": "sleep", "payload": {"ms": 40}}] * n)
           ["jobs"]]
    wait_until(lambda: sum(completions(w).values()) >= 30, 20, what="some progress")
    r.kill()  # kill -9: AOF with appendfsync always keeps what was acknowledged
    w.wait_log(r"redis connection lost", timeout=10)
    time.sleep(0.5)
    r.start()
    wait_until(lambda: http(w.port, "GET", "/readyz").status == 200, 20, what="redis back")

    def all_done():
        done = 0
        for i in ids:
            rr = http(w.port, "GET", f"/v1/jobs/{i}")
            if rr.status == 200 and rr.json["status"] == "succeeded":
                done += 1
        return done == n

    wait_until(all_done, 90, interval=0.5, what="every job to succeed after the restart")
    seen = completions(w)
    assert set(ids) <= set(seen)
    # More work after the restart is picked up too.
    jid = enqueue(w.port, {"kind": "noop"})["id"]
    wait_status(w.port, jid, "succeeded", 15)


def test_kind_limits_pace_starts_without_spending_attempts(trireme, redis):
    srv = start(trireme, redis.url, "--kind-limits=sleep 4/2s")
    ids = [j["id"] for j in enqueue(srv.port, [{"kind": "sleep", "payload": {"ms": 1}}] * 10)
           ["jobs"]]
    time.sleep(0.8)
    done = sum(get_job(srv.port, i)["status"] == "succeeded" for i in ids)
    # 4 at once, then one per 500 ms: not all 10 yet.
    assert 4 <= done <= 6, done
    for i in ids:
        j = wait_status(srv.port, i, "succeeded", 20)
        assert j["attempts"] == 1, j  # waiting for the limit is not an attempt


def test_redis_down_gives_503_json_and_readyz_unavailable(trireme, redis):
    srv = start(trireme, redis.url, roles="web")
    assert http(srv.port, "GET", "/readyz").status == 200
    redis.kill()
    srv.wait_log(r"redis connection lost", timeout=10)
    r = http(srv.port, "GET", "/readyz")
    assert r.status == 503 and r.json["status"] == "unavailable", r
    assert r.json["redis"].startswith("error"), r
    e = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"})
    assert e.status == 503 and e.json["error"] == "unavailable", e
    assert "redis" in e.json["message"]


def test_stopped_workers_consumers_are_forgotten(trireme, redis):
    def consumers():
        out = redis.cli("XINFO", "CONSUMERS", "trireme:q:default", "trireme")
        return re.findall(r"^name\n(\S+)$", out, re.M)

    web = start(trireme, redis.url, roles="web")
    a = start(trireme, redis.url, roles="worker")
    wait_status(web.port, enqueue(web.port, {"kind": "noop"})["id"], "succeeded", 10)
    a.stop()
    b = start(trireme, redis.url, "--lease=1s", roles="worker")
    wait_status(web.port, enqueue(web.port, {"kind": "noop"})["id"], "succeeded", 10)
    assert len(consumers()) == 2, consumers()
    # b forgets a's consumer (owning nothing) once it was idle 10 leases (10 s).
    wait_until(lambda: len(consumers()) == 1, 30, interval=0.5,
               what=lambda: f"one consumer left, have {consumers()}")
    assert consumers()[0].split(":")[1] == str(b.proc.pid)
    b.wait_log(r"forgot consumers of stopped workers count=1")


def test_jobs_in_flight_across_the_fence_upgrade_still_run(trireme, redis):
    """Hashes and Stream entries written before the `fence` field and the
    packed `j` entry field (status + entry; k p a m t) are run and finished."""
    redis.cli("XGROUP", "CREATE", "trireme:q:default", "trireme", "0", "MKSTREAM")
    now = str(int(time.time() * 1000))
    for jid, uk in ((1, ""), (2, "old-u")):
        e = redis.cli("XADD", "trireme:q:default", "*", "id", str(jid), "k", "noop", "p", "{}",
                      "a", "0", "m", "5", "t", "")
        redis.cli("HSET", f"trireme:job:{jid}", "id", str(jid), "queue", "default", "kind", "noop",
                  "payload", "{}", "status", "pending", "priority", "0", "attempts", "0",
                  "max_attempts", "5", "timeout_ms", "", "run_at", now, "unique_key", uk,
                  "created_at", now, "updated_at", now, "entry", e)
        redis.cli("ZADD", "trireme:jobs", str(jid), str(jid))
    redis.cli("SET", "trireme:uniq:old-u", "2")
    redis.cli("SET", "trireme:seq", "2")
    srv = start(trireme, redis.url)
    for jid in (1, 2):
        j = wait_status(srv.port, jid, "succeeded", 10)
        assert j["attempts"] == 1 and j["progress_percent"] == 100 and j["worker_id"], j
        assert j["started_at"] and j["finished_at"] and j["updated_at"] == j["finished_at"], j
        assert will_expire(redis, jid)
    assert int(redis.cli("PTTL", "trireme:uniq:old-u")) > 0  # finished: its key expires too
    assert completions(srv) == {1: 1, 2: 1}
