"""
test_exec_kinds.py - `exec` kinds declared in --kinds: real Python programs
(written into the test's tmp dir) run by the real worker, on both queue
backends, seen through the real HTTP API: progress seen by a polling client
while the program runs, then its result; exit 75 retries; exit 1 fails with
the stderr tail; the soft and hard time limits kill the whole process group
(a grandchild included) and leave no zombie; the SIGTERM drain lets a
running program finish; bad kinds files stop the start with a message
naming file, kind and field; an undeclared kind gets 400.
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
    ('{"kinds": {"a": {"type": "ftp"}}}', "kind 'a': field 'type': unknown type 'ftp' (known: exec, pull)"),
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
