"""
test_exec_kinds.py - `exec` kinds declared in --kinds: real Python programs
(written into the test's tmp dir) run by the real worker, on both queue
backends, seen through the real HTTP API: progress seen by a polling client
while the program runs, then its result; exit 75 retries; exit 1 fails with
the stderr tail; the soft and hard time limits kill the whole process group
(a grandchild included) and leave no zombie; the SIGTERM drain lets a
running program finish; bad kinds files stop the start with a message
naming file, kind and field; an undeclared kind gets 400; a payload larger
than the pipe reaches a slow reader whole, in both modes.
Needs TRIREME_TEST_DATABASE_URL and TRIREME_TEST_REDIS_URL.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import free_port, run_cli

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]

PY = sys.executable


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def kinds_file(tmp_path: Path, kinds: dict) -> Path:
    return write(tmp_path / f"kinds-{uuid.uuid4().hex[:6]}.json", json.dumps({"kinds": kinds}))


@pytest.fixture(params=["postgres", "redis"])
def backend(request):
    """The environment of a web+worker server on one queue backend."""
    if request.param == "postgres":
        db = request.getfixturevalue("db")
        return db.env()
    url = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set (tools/test.sh starts the servers)")
    return {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}


def start(trireme, env, kinds: Path, *flags, queue=None):
    queue = queue or "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds}", f"--queues={queue}", *flags,
                  threads=1, env=env)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = queue
    return srv


def wait_status(port, jid, statuses, timeout):
    if isinstance(statuses, str):
        statuses = (statuses,)
    box = {}

    def done():
        box["j"] = get_job(port, jid)
        return box["j"]["status"] in statuses

    wait_until(done, timeout, interval=0.05, what=lambda: f"job {jid} {statuses}: {box.get('j')}")
    return box["j"]


def state(pid: int) -> str | None:
    """The process' state letter, or None when it is gone."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def children(ppid: int) -> list[tuple[int, str]]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[1]) == ppid:
                out.append((int(d), f[0]))
    return out


PROGRESS_PROG = r'''
import json, os, sys, time
job = json.load(sys.stdin)
fd = int(os.environ["TRIREME_PROGRESS_FD"])
os.write(fd, b"10 starting\n")
print("working on", job["id"], file=sys.stderr, flush=True)
os.write(fd, json.dumps({"percent": 45, "step": "Processing chunk 5/10"}).encode() + b"\n")
go = os.path.join(os.path.dirname(__file__), "go-%d" % job["id"])
deadline = time.time() + 30
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.02)
os.write(fd, b"90 Processing chunk 9/10\n")
json.dump({"echo": job["payload"], "queue": job["queue"], "attempt": job["attempt"],
           "kind": job["kind"], "env_kind": os.environ["TRIREME_JOB_KIND"],
           "greeting": os.environ.get("GREETING")}, sys.stdout)
'''


def test_progress_seen_while_running_then_the_result(trireme, backend, tmp_path):
    prog = write(tmp_path / "progress.py", PROGRESS_PROG)
    kinds = kinds_file(tmp_path, {"pdf": {"type": "exec", "argv": [PY, str(prog)],
                                          "env": {"GREETING": "hello"}}})
    srv = start(trireme, backend, kinds)
    jid = enqueue(srv.port, {"kind": "pdf", "queue": srv.queue, "payload": {"file": "a.pdf"}})["id"]
    seen = wait_until(lambda: (lambda j: j if j["progress_percent"] == 45 else None)(
        get_job(srv.port, jid)), 15, what="progress 45 while the program runs")
    assert seen["status"] == "running" and seen["current_step"] == "Processing chunk 5/10", seen
    (tmp_path / f"go-{jid}").touch()
    done = wait_status(srv.port, jid, "succeeded", 15)
    assert done["result"] == {"echo": {"file": "a.pdf"}, "queue": srv.queue, "attempt": 1,
                              "kind": "pdf", "env_kind": "pdf", "greeting": "hello"}, done
    assert srv.wait_log(rf"job stderr job_id={jid} kind=pdf pid=\d+ line=.*working on {jid}")
    # Text that is not JSON is stored as a string.
    text = write(tmp_path / "text.py", "print('plain words')\n")
    kinds2 = kinds_file(tmp_path, {"txt": {"type": "exec", "argv": [PY, str(text)]}})
    srv2 = start(trireme, backend, kinds2)
    jid = enqueue(srv2.port, {"kind": "txt", "queue": srv2.queue})["id"]
    assert wait_status(srv2.port, jid, "succeeded", 15)["result"] == "plain words"


RETRY_PROG = r'''
import json, sys
job = json.load(sys.stdin)
if job["attempt"] == 1:
    print("try again later", file=sys.stderr)
    sys.exit(75)
for i in range(50):
    print("noise line", i, file=sys.stderr)
print("the real reason: disk full", file=sys.stderr)
sys.exit(1)
'''


def test_exit_75_retries_and_exit_1_fails_with_the_stderr_tail(trireme, backend, tmp_path):
    prog = write(tmp_path / "retry.py", RETRY_PROG)
    kinds = kinds_file(tmp_path, {"flaky": {"type": "exec", "argv": [PY, str(prog)],
                                            "stderr_tail": 200}})
    srv = start(trireme, backend, kinds)
    jid = enqueue(srv.port, {"kind": "flaky", "queue": srv.queue, "max_attempts": 5})["id"]
    j = wait_status(srv.port, jid, ("failed", "dead"), 20)
    # Attempt 1 exited 75 (retried), attempt 2 exited 1: failed for good, attempts left unused.
    assert j["status"] == "failed", j
    assert j["attempts"] == 2, j
    err = j["last_error"]
    assert err.startswith("exit status 1; stderr: ") and err.endswith("the real reason: disk full"), err
    assert len(err) < 260 and "noise line 0\n" not in err, err
    assert srv.wait_log(rf"job failed job_id={jid} kind=flaky attempt=1 .*exit status 75")


def group_prog(ignore_term: bool) -> str:
    return (r'''
import json, os, signal, subprocess, sys, time
job = json.load(sys.stdin)
IGN = %s
if IGN:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time\nif %%s: signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)" %% IGN])
open(os.path.join(os.path.dirname(__file__), "pids-%%d" %% job["id"]), "w").write(
    "%%d %%d" %% (os.getpid(), child.pid))
time.sleep(120)
''' % ignore_term)


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_time_limits_kill_the_whole_process_group(trireme, backend, tmp_path, hard):
    prog = write(tmp_path / "group.py", group_prog(hard))
    kinds = kinds_file(tmp_path, {"stuck": {"type": "exec", "argv": [PY, str(prog)],
                                            "timeout": "1s", "kill_after": "1s"}})
    srv = start(trireme, backend, kinds)
    jid = enqueue(srv.port, {"kind": "stuck", "queue": srv.queue, "max_attempts": 1})["id"]
    pidfile = tmp_path / f"pids-{jid}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 15, what="the pids")
    leader, grandchild = map(int, pidfile.read_text().split())
    assert state(grandchild) not in (None, "Z")
    j = wait_status(srv.port, jid, "dead", 20)
    assert "time limit" in j["last_error"] or "stopped" in j["last_error"], j
    sig = "SIGKILL" if hard else "SIGTERM"
    assert f"killed by signal {sig}" in j["last_error"] or "hard time limit" in j["last_error"], j
    if hard:
        srv.wait_log(rf"exec: program still running after SIGTERM, killing its process group "
                     rf"job_id={jid}")
    for pid in (leader, grandchild):
        wait_until(lambda: state(pid) in (None, "Z"), 10, what=f"process {pid} to die")
    wait_until(lambda: not children(srv.proc.pid), 10,
               what=lambda: f"no child of trireme left: {children(srv.proc.pid)}")


DRAIN_PROG = r'''
import json, sys, time
job = json.load(sys.stdin)
time.sleep(job["payload"]["s"])
print(json.dumps({"slept": job["payload"]["s"]}))
'''


def test_sigterm_drain_waits_for_a_running_program(trireme, backend, tmp_path):
    prog = write(tmp_path / "drain.py", DRAIN_PROG)
    kinds = kinds_file(tmp_path, {"nap": {"type": "exec", "argv": [PY, str(prog)]}})
    srv = start(trireme, backend, kinds, "--grace=20s")
    web = trireme("--roles=web", f"--kinds={kinds}", threads=1, env=backend)
    jid = enqueue(srv.port, {"kind": "nap", "queue": srv.queue, "payload": {"s": 1.5}})["id"]
    wait_status(srv.port, jid, "running", 10)
    srv.signal(signal.SIGTERM)
    assert srv.wait(15) == 0
    j = wait_status(web.port, jid, "succeeded", 10)
    assert j["result"] == {"slept": 1.5}, j
    assert not children(srv.proc.pid)


def test_drain_past_grace_kills_the_program(trireme, backend, tmp_path):
    prog = write(tmp_path / "group.py", group_prog(True))
    kinds = kinds_file(tmp_path, {"stuck": {"type": "exec", "argv": [PY, str(prog)],
                                            "kill_after": "30s"}})
    srv = start(trireme, backend, kinds, "--grace=2s")
    jid = enqueue(srv.port, {"kind": "stuck", "queue": srv.queue})["id"]
    pidfile = tmp_path / f"pids-{jid}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 15, what="the pids")
    pids = list(map(int, pidfile.read_text().split()))
    srv.signal(signal.SIGTERM)
    srv.wait(15)
    srv.expected_rc = None  # a forced exit at the end of --grace
    for pid in pids:
        wait_until(lambda: state(pid) in (None, "Z"), 10, what=f"process {pid} to die")
    assert srv.wait_log(r"exec: program still running at exit, killing its process group")


def test_undeclared_kind_is_400_naming_the_known_kinds(trireme, backend, tmp_path):
    kinds = kinds_file(tmp_path, {"resize": {"type": "exec", "argv": ["true"]}})
    srv = trireme("--roles=web", f"--kinds={kinds}", threads=1, env=backend)
    srv.wait_log(r"kinds file loaded")
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "resise"})
    assert r.status == 400 and r.json["error"] == "invalid_job", r
    assert "kind is not a known job kind (known: noop, sleep, sql, resize)" in r.json["message"], r
    assert http(srv.port, "POST", "/v1/jobs", {"kind": "resize"}).status == 201


BAD_FILES = [
    ("{", "not a readable JSON file"),
    ('{"kinds": []}', 'expected {'),
    ('{"kinds": {"a": {"argv": ["true"]}}}', "kind 'a': field 'type': is required"),
    ('{"kinds": {"a": {"type": "ftp"}}}', "kind 'a': field 'type': unknown type 'ftp' (known: exec, pull, http)"),
    ('{"kinds": {"a": {"type": "exec"}}}', "kind 'a': field 'argv': must be a non-empty array"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["no-such-program-x"]}}}',
     "kind 'a': field 'argv': 'no-such-program-x' is not an executable file found in PATH"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "cwd": "/no/such/dir"}}}',
     "kind 'a': field 'cwd': must name an existing directory"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "concurrency": 0}}}',
     "kind 'a': field 'concurrency': must be an integer from 1"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "timeout": "soon"}}}',
     "kind 'a': field 'timeout': must be a duration"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "memory_limit": "lots"}}}',
     "kind 'a': field 'memory_limit': must be a size"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "argvv": []}}}',
     "kind 'a': field 'argvv': is not an exec field"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"], "env": {"TRIREME_X": "1"}}}}',
     "kind 'a': field 'env': names are letters"),
    ('{"kinds": {"sleep": {"type": "exec", "argv": ["true"]}}}',
     "kind 'sleep': the name of a built-in kind"),
    ('{"kinds": {"a b": {"type": "exec", "argv": ["true"]}}}', "kind 'a b': the name must be"),
    ('{"kinds": {"a": {"type": "exec", "argv": ["true"]}, "a": {"type": "exec", "argv": ["true"]}}}',
     "duplicate object key"),
]


@pytest.mark.parametrize("text,message", BAD_FILES)
def test_bad_kinds_file_stops_the_start(pg_url, tmp_path, text, message):
    path = write(tmp_path / "kinds.json", text)
    r = run_cli("run", "--roles=web,worker", f"--port={free_port()}", f"--kinds={path}",
                env={"DATABASE_URL": pg_url, "TRIREME_API_KEYS": API_KEY})
    assert r.returncode != 0, r
    assert str(path) in r.stderr and message in r.stderr, r.stderr


# --- pool mode -----------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def enqueue_many(port, queue, kind, n, payload=lambda i: {"n": i}):
    ids = []
    for start in range(0, n, 1000):
        batch = [{"kind": kind, "queue": queue, "payload": payload(i)}
                 for i in range(start, min(n, start + 1000))]
        r = http(port, "POST", "/v1/jobs", batch)
        assert r.status == 201, r
        ids += [j["id"] for j in r.json["jobs"]]
    return ids


def wait_all(port, ids, timeout, status="succeeded"):
    """Every job reached `status`; returns the jobs."""
    left, done = list(ids), {}
    deadline = time.monotonic() + timeout
    while left:
        # The last job is among the last to run: poll it until it is done, then check the rest.
        j = get_job(port, left[-1])
        if j["status"] != status:
            assert time.monotonic() < deadline, f"job {left[-1]} not {status} in {timeout}s: {j}"
            time.sleep(0.1)
            continue
        done[left.pop()] = j
        while left:
            j = get_job(port, left[-1])
            if j["status"] != status:
                break
            done[left.pop()] = j
    return done


def test_pool_survives_a_killed_process_and_loses_nothing(trireme, backend, tmp_path):
    kinds = kinds_file(tmp_path, {"hash": {
        "type": "exec", "mode": "pool", "processes": 2,
        "argv": [PY, str(REPO / "docs/examples/pool_worker.py")]}})
    srv = start(trireme, backend, kinds, "--concurrency=16")
    srv.wait_log(r"pool process started kind=hash pid=\d+", count=2)
    n = 10000
    ids = enqueue_many(srv.port, srv.queue, "hash", n)
    wait_until(lambda: get_job(srv.port, ids[n // 5])["status"] == "succeeded", 60,
               what="a fifth of the jobs done")
    victim = children(srv.proc.pid)[0][0]
    os.kill(victim, signal.SIGKILL)
    done = wait_all(srv.port, ids, 180)
    assert len(done) == n
    import hashlib
    for i in (0, n // 2, n - 1):
        want = hashlib.sha256(json.dumps({"n": i}, sort_keys=True).encode()).hexdigest()
        assert done[ids[i]]["result"] == {"sha256": want}, done[ids[i]]
    assert srv.wait_log(rf"pool process ended kind=hash pid={victim} how=\"?killed by signal "
                        r"SIGKILL")
    srv.wait_log(r"pool process started kind=hash pid=\d+", count=3)
    assert len(children(srv.proc.pid)) == 2
    srv.stop()
    assert not children(srv.proc.pid)


# The program waits before it reads, so the payload (several pipe buffers)
# fills stdin and the worker must finish writing it on POLLOUT.
SLOW_READER_ONESHOT = r'''
import hashlib, json, sys, time
time.sleep(0.3)
raw = sys.stdin.buffer.read()
job = json.loads(raw)
print(json.dumps({"n": len(job["payload"]["blob"]),
                  "sha": hashlib.sha256(job["payload"]["blob"].encode()).hexdigest()}))
'''

SLOW_READER_POOL = r'''
import hashlib, json, sys, time
time.sleep(0.3)
for line in sys.stdin:
    job = json.loads(line)
    blob = job["payload"]["blob"]
    print(json.dumps({"id": job["id"], "ok": True, "result": {
        "n": len(blob), "sha": hashlib.sha256(blob.encode()).hexdigest()}}), flush=True)
    time.sleep(0.1)
'''


@pytest.mark.parametrize("mode", ["oneshot", "pool"])
def test_a_payload_larger_than_the_pipe_reaches_the_program_whole(trireme, backend, tmp_path,
                                                                  mode):
    import hashlib
    prog = write(tmp_path / "slow.py", SLOW_READER_POOL if mode == "pool" else SLOW_READER_ONESHOT)
    spec = {"type": "exec", "argv": [PY, str(prog)]}
    if mode == "pool":
        spec.update({"mode": "pool", "processes": 1, "jobs_per_process": 3})
    srv = start(trireme, backend, kinds_file(tmp_path, {"big": spec}))
    blobs = [("%d-" % i) * 60000 for i in range(1, 4)]  # 180 to 240 kB each
    ids = [enqueue(srv.port, {"kind": "big", "queue": srv.queue, "payload": {"blob": b}})["id"]
           for b in blobs]
    for jid, b in zip(ids, blobs):
        res = wait_status(srv.port, jid, ("succeeded", "failed"), 30)
        assert res["status"] == "succeeded", res
        assert res["result"] == {"n": len(b), "sha": hashlib.sha256(b.encode()).hexdigest()}


RECYCLE_PROG = r'''
import json, os, sys
for line in sys.stdin:
    job = json.loads(line)
    if job["payload"].get("fail"):
        print(json.dumps({"id": job["id"], "ok": False, "error": "bad input", "retry": False}),
              flush=True)
        continue
    print(json.dumps({"id": job["id"], "progress": 50, "step": "half"}), flush=True)
    print(json.dumps({"id": job["id"], "ok": True, "result": {"pid": os.getpid()}}), flush=True)
'''


def test_pool_recycles_after_max_jobs_per_process(trireme, backend, tmp_path):
    prog = write(tmp_path / "recycle.py", RECYCLE_PROG)
    kinds = kinds_file(tmp_path, {"rec": {"type": "exec", "mode": "pool", "processes": 1,
                                          "max_jobs_per_process": 10, "argv": [PY, str(prog)]}})
    srv = start(trireme, backend, kinds)
    ids = enqueue_many(srv.port, srv.queue, "rec", 35)
    done = wait_all(srv.port, ids, 60)
    pids = [done[i]["result"]["pid"] for i in ids]
    assert len(set(pids)) == 4, pids
    assert all(pids.count(p) <= 10 for p in set(pids)), pids
    srv.wait_log(r"pool process ended kind=rec pid=\d+ how=\"?exit status 0", count=3)
    bad = enqueue(srv.port, {"kind": "rec", "queue": srv.queue, "payload": {"fail": True}})["id"]
    j = wait_status(srv.port, bad, "failed", 15)
    assert j["last_error"] == "bad input" and j["attempts"] == 1, j


def test_node_pool_worker_with_jobs_in_flight_at_once(trireme, backend, tmp_path):
    kinds = kinds_file(tmp_path, {"nodehash": {
        "type": "exec", "mode": "pool", "processes": 1, "jobs_per_process": 4,
        "argv": ["node", str(REPO / "docs/examples/pool_worker.js")]}})
    srv = start(trireme, backend, kinds)
    ids = enqueue_many(srv.port, srv.queue, "nodehash", 200)
    done = wait_all(srv.port, ids, 60)
    assert all(len(j["result"]["sha256"]) == 64 for j in done.values())
    srv.stop()
    assert not children(srv.proc.pid)


def test_pool_job_past_its_time_limit_restarts_the_process(trireme, backend, tmp_path):
    prog = write(tmp_path / "hang.py", "import sys, time\nfor line in sys.stdin:\n"
                                       "    time.sleep(120)\n")
    kinds = kinds_file(tmp_path, {"hang": {"type": "exec", "mode": "pool", "processes": 1,
                                           "timeout": "1s", "kill_after": "1s",
                                           "argv": [PY, str(prog)]}})
    srv = start(trireme, backend, kinds)
    srv.wait_log(r"pool process started kind=hang")
    first = children(srv.proc.pid)[0][0]
    jid = enqueue(srv.port, {"kind": "hang", "queue": srv.queue, "max_attempts": 1})["id"]
    j = wait_status(srv.port, jid, "dead", 20)
    assert "time limit" in j["last_error"] or "stopped" in j["last_error"], j
    srv.wait_log(r"pool process started kind=hang", count=2)
    wait_until(lambda: state(first) in (None, "Z") and len(children(srv.proc.pid)) == 1, 10,
               what="the old process gone, a new one running")


def test_a_killed_worker_takes_its_programs_along(trireme, backend, tmp_path):
    prog = write(tmp_path / "group.py", group_prog(False))
    pool = write(tmp_path / "pool.py", "import sys\nfor line in sys.stdin:\n    pass\n")
    kinds = kinds_file(tmp_path, {"stuck": {"type": "exec", "argv": [PY, str(prog)]},
                                  "p": {"type": "exec", "mode": "pool", "processes": 1,
                                        "argv": [PY, str(pool)]}})
    srv = start(trireme, backend, kinds)
    jid = enqueue(srv.port, {"kind": "stuck", "queue": srv.queue})["id"]
    pidfile = tmp_path / f"pids-{jid}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 15, what="the pids")
    leader = int(pidfile.read_text().split()[0])
    kids = [pid for pid, _ in children(srv.proc.pid)]
    assert leader in kids and len(kids) == 2, kids
    srv.kill()
    srv.expected_rc = None
    for pid in kids:
        wait_until(lambda: state(pid) in (None, "Z"), 10, what=f"process {pid} to die")


def test_the_job_names_its_own_queue_when_the_worker_takes_several(trireme, backend, tmp_path):
    prog = write(tmp_path / "queue.py", "import json, os, sys\njob = json.load(sys.stdin)\n"
                                        "print(json.dumps([job['queue'], "
                                        "os.environ['TRIREME_JOB_QUEUE']]))\n")
    kinds = kinds_file(tmp_path, {"q": {"type": "exec", "argv": [PY, str(prog)]}})
    a, b = "qa" + uuid.uuid4().hex[:6], "qb" + uuid.uuid4().hex[:6]
    srv = start(trireme, backend, kinds, queue=f"{a},{b}")
    ja = enqueue(srv.port, {"kind": "q", "queue": a})["id"]
    jb = enqueue(srv.port, {"kind": "q", "queue": b})["id"]
    assert wait_status(srv.port, ja, "succeeded", 15)["result"] == [a, a]
    assert wait_status(srv.port, jb, "succeeded", 15)["result"] == [b, b]


def test_the_cli_enqueues_declared_kinds_with_the_same_kinds_file(backend, tmp_path):
    kinds = kinds_file(tmp_path, {"resize": {"type": "exec", "argv": ["/bin/true"]}})
    env = dict(backend)
    bad = run_cli("enqueue", "resize", env=env)
    assert bad.returncode == 2 and "is not a known job kind" in bad.stderr, bad.stderr
    ok = run_cli("enqueue", "resize", f"--kinds={kinds}", "--payload={\"w\":1}", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["created"] is True
    by_env = run_cli("enqueue", "resize", env={**env, "TRIREME_KINDS": str(kinds)})
    assert by_env.returncode == 0, by_env.stderr
    broken = write(tmp_path / "broken.json", '{"kinds": {"x": {"type": "ftp"}}}')
    r = run_cli("enqueue", "x", f"--kinds={broken}", env=env)
    assert r.returncode == 2 and "--kinds:" in r.stderr and "'ftp'" in r.stderr, r.stderr
