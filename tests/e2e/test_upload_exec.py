"""
test_upload_exec.py - uploaded files reach exec kinds' programs (the seed
002 flow): a client uploads a PDF-like file with a multipart POST /v1/jobs
for an exec kind whose Python program reads it from the path the job JSON
gives (and TRIREME_FILES_DIR), reports progress on TRIREME_PROGRESS_FD and
prints the file's size and SHA-256; the client polls GET /v1/jobs/{id} and
sees the progress, then that result. The files' directory is private
(0700), under --upload-tmp-dir, and gone after the attempt whether it
succeeded or failed. A 20 MiB upload is processed while the server's RSS
grows by far less than the file. Jobs without files get no `files` and no
TRIREME_FILES_DIR. Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, get_job, wait_until  # noqa: E402
from test_uploads import MIB, job_part, multipart, post, vmrss_kib  # noqa: E402

pytest_plugins = ["pgtools"]

PY = sys.executable

PDF_PROG = r'''
import hashlib, json, os, stat, sys, time
job = json.load(sys.stdin)
fd = int(os.environ["TRIREME_PROGRESS_FD"])
files = job.get("files") or []
fdir = os.environ.get("TRIREME_FILES_DIR")
out = {"files": [], "env_dir": fdir,
       "dir_mode": oct(stat.S_IMODE(os.stat(fdir).st_mode)) if fdir else None}
for f in files:
    h, n = hashlib.sha256(), 0
    size = os.path.getsize(f["path"])
    with open(f["path"], "rb") as fh:
        for i in range(10):
            part = fh.read(max(1, -(-size // 10)))
            h.update(part)
            n += len(part)
            os.write(fd, b"%d Processing chunk %d/10\n" % ((i + 1) * 9, i + 1))
            if i == 4 and job["payload"].get("wait"):
                go = os.path.join(job["payload"]["wait"], "go-%d" % job["id"])
                deadline = time.time() + 30
                while not os.path.exists(go) and time.time() < deadline:
                    time.sleep(0.02)
        rest = fh.read()
        h.update(rest)
        n += len(rest)
    out["files"].append({"name": f["name"], "filename": f["filename"],
                         "content_type": f["content_type"], "size": f["size"], "bytes": n,
                         "sha256": h.hexdigest(), "in_dir": os.path.dirname(f["path"]) == fdir})
json.dump(out, sys.stdout)
if job["payload"].get("fail"):
    sys.exit(3)
'''


def kinds_file(tmp_path: Path) -> Path:
    prog = tmp_path / "pdf.py"
    prog.write_text(PDF_PROG)
    path = tmp_path / "kinds.json"
    path.write_text(json.dumps({"kinds": {"pdf": {"type": "exec", "argv": [PY, str(prog)]}}}))
    return path


# Under AddressSanitizer freed memory is quarantined, not reused, so every
# chunk that passed through would stay resident: the RSS test turns the
# quarantine off (meaningless to a plain build); the others keep it.
NO_QUARANTINE = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                        "quarantine_size_mb=0"]))}


def start_server(trireme, db, tmp_path, **env):
    tmp = tmp_path / "jobfiles"
    tmp.mkdir()
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds_file(tmp_path)}", f"--queues={queue}",
                  f"--upload-tmp-dir={tmp}", "--upload-chunk=256k", threads=1,
                  env=db.env(**env))
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue, srv.tmp = queue, tmp
    return srv


@pytest.fixture
def server(trireme, db, tmp_path):
    return start_server(trireme, db, tmp_path)


def upload(srv, data: bytes, payload=None, filename="report.pdf"):
    body, ctype = multipart([
        job_part({"kind": "pdf", "queue": srv.queue, "payload": payload or {}}),
        ("document", filename, "application/pdf", data)])
    status, ans = post(srv.port, body, ctype)
    assert status == 201, ans
    return ans["id"]


def wait_done(port, jid, timeout=30):
    box = {}

    def done():
        box["j"] = get_job(port, jid)
        return box["j"]["status"] in ("succeeded", "failed", "dead")

    wait_until(done, timeout, what=lambda: f"job {jid} ended: {box.get('j')}")
    return box["j"]


def pdf_like(n: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(n - 9)


def test_seed_002_upload_then_progress_then_the_files_hash(server, tmp_path):
    data = pdf_like(700 * 1024)
    jid = upload(server, data, {"wait": str(tmp_path)})
    seen = wait_until(lambda: (lambda j: j if j["progress_percent"] == 45 else None)(
        get_job(server.port, jid)), 20, what="progress 45 while the program reads the file")
    assert seen["status"] == "running" and seen["current_step"] == "Processing chunk 5/10", seen
    # while the program runs its file is on disk, in a private directory
    dirs = list(server.tmp.iterdir())
    assert len(dirs) == 1 and dirs[0].name.startswith(f"trireme-job-{jid}-"), dirs
    assert (dirs[0].stat().st_mode & 0o777) == 0o700
    assert (dirs[0] / "document").read_bytes() == data
    (tmp_path / f"go-{jid}").touch()
    job = wait_done(server.port, jid)
    assert job["status"] == "succeeded", job
    res = job["result"]
    assert res["files"] == [{"name": "document", "filename": "report.pdf",
                             "content_type": "application/pdf", "size": len(data),
                             "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                             "in_dir": True}], res
    assert res["dir_mode"] == "0o700" and res["env_dir"].startswith(str(server.tmp) + "/")
    assert job["progress_percent"] == 100  # a succeeded job is complete
    assert list(server.tmp.iterdir()) == [], "the files' directory outlived the attempt"


def test_directory_goes_after_a_failed_attempt_too(server):
    jid = upload(server, b"%PDF-1.4 tiny", {"fail": True})
    job = wait_done(server.port, jid)
    assert job["status"] in ("failed", "dead") and "exit status 3" in (job["last_error"] or ""), job
    assert list(server.tmp.iterdir()) == []


def test_job_without_files_gets_none(server):
    jid = enqueue(server.port, {"kind": "pdf", "queue": server.queue, "payload": {}})["id"]
    job = wait_done(server.port, jid)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"files": [], "env_dir": None, "dir_mode": None}
    assert list(server.tmp.iterdir()) == []


def test_20mib_upload_processed_with_bounded_rss(trireme, db, tmp_path):
    server = start_server(trireme, db, tmp_path, **NO_QUARANTINE)
    small = upload(server, b"%PDF warm-up")
    assert wait_done(server.port, small)["status"] == "succeeded"
    before = vmrss_kib(server.proc.pid)
    peak = before
    data = pdf_like(20 * MIB)
    jid = upload(server, data)
    box = {}

    def done():
        nonlocal peak
        peak = max(peak, vmrss_kib(server.proc.pid))
        box["j"] = get_job(server.port, jid)
        return box["j"]["status"] in ("succeeded", "failed", "dead")

    wait_until(done, 60, interval=0.02, what=lambda: f"job {jid}: {box.get('j')}")
    peak = max(peak, vmrss_kib(server.proc.pid))
    job = box["j"]
    assert job["status"] == "succeeded", job
    assert job["result"]["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert job["result"]["files"][0]["bytes"] == 20 * MIB
    growth = (peak - before) * 1024
    print(f"VmRSS before {before} KiB, peak {peak} KiB, growth {growth / MIB:.2f} MiB")
    assert growth < 8 * MIB, f"RSS grew {growth / MIB:.1f} MiB for a 20 MiB upload and its job"
    assert list(server.tmp.iterdir()) == []


def test_directory_goes_when_the_time_limit_kills_the_program(trireme, db, tmp_path):
    prog = tmp_path / "stuck.py"
    prog.write_text("import json, os, sys, time\njob = json.load(sys.stdin)\n"
                    "open(os.path.join(os.environ['TRIREME_FILES_DIR'], 'mine.tmp'), 'w')"
                    ".write('left behind')\ntime.sleep(60)\n")
    kinds = tmp_path / "stuck.json"
    kinds.write_text(json.dumps({"kinds": {"pdf": {"type": "exec", "argv": [PY, str(prog)],
                                                   "timeout": "1s", "kill_after": "1s"}}}))
    tmp = tmp_path / "jobfiles"
    tmp.mkdir()
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds}", f"--queues={queue}",
                  f"--upload-tmp-dir={tmp}", threads=1, env=db.env())
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = queue
    jid = upload(srv, b"%PDF-1.4 x", {})
    wait_until(lambda: any(tmp.iterdir()), 15, what="the files' directory while it runs")
    job = wait_until(lambda: (lambda j: j if j["status"] != "running" and j["attempts"] >= 1
                              and j.get("last_error") else None)(get_job(srv.port, jid)), 20,
                     what="the time limit to end the attempt")
    assert "time limit" in job["last_error"] or "stopped" in job["last_error"], job
    wait_until(lambda: not any(tmp.iterdir()), 5, what="the directory (and the program's own "
               "file in it) removed after the killed attempt")


def test_unwritable_tmp_dir_fails_the_attempt_with_a_retry(trireme, db, tmp_path):
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds_file(tmp_path)}", f"--queues={queue}",
                  f"--upload-tmp-dir={tmp_path}/no/such/dir", threads=1, env=db.env())
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = queue
    body, ctype = multipart([job_part({"kind": "pdf", "queue": queue, "max_attempts": 2}),
                             ("document", "r.pdf", "application/pdf", b"%PDF")])
    status, ans = post(srv.port, body, ctype)
    assert status == 201, ans
    job = wait_done(srv.port, ans["id"])
    assert job["status"] == "dead" and job["attempts"] == 2, job
    assert "cannot create a directory in" in job["last_error"], job


POOL_PROG = r'''
import hashlib, json, os, stat, sys
for line in sys.stdin:
    job = json.loads(line)
    out = {"files": [], "dir": job.get("files_dir")}
    if out["dir"]:
        out["dir_mode"] = oct(stat.S_IMODE(os.stat(out["dir"]).st_mode))
    for f in job.get("files") or []:
        with open(f["path"], "rb") as fh:
            data = fh.read()
        out["files"].append({"name": f["name"], "size": f["size"], "bytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()})
    print(json.dumps({"id": job["id"], "progress": 50, "step": "half"}), flush=True)
    print(json.dumps({"id": job["id"], "ok": True, "result": out}), flush=True)
'''


def test_pool_mode_programs_get_the_files_too(trireme, db, tmp_path):
    prog = tmp_path / "pool.py"
    prog.write_text(POOL_PROG)
    kinds = tmp_path / "pool.json"
    kinds.write_text(json.dumps({"kinds": {"pdf": {"type": "exec", "mode": "pool",
                                                   "processes": 1, "argv": [PY, str(prog)]}}}))
    tmp = tmp_path / "jobfiles"
    tmp.mkdir()
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds}", f"--queues={queue}",
                  f"--upload-tmp-dir={tmp}", "--upload-chunk=64k", threads=1, env=db.env())
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = queue
    jobs = {}
    for i in range(3):
        data = pdf_like(100 * 1024 + i)
        jobs[upload(srv, data)] = data
    plain = enqueue(srv.port, {"kind": "pdf", "queue": queue})["id"]
    for jid, data in jobs.items():
        job = wait_done(srv.port, jid)
        assert job["status"] == "succeeded", job
        res = job["result"]
        assert res["dir_mode"] == "0o700" and res["dir"].startswith(str(tmp) + "/"), res
        assert res["files"] == [{"name": "document", "size": len(data), "bytes": len(data),
                                 "sha256": hashlib.sha256(data).hexdigest()}], res
    job = wait_done(srv.port, plain)
    assert job["status"] == "succeeded" and job["result"] == {"files": [], "dir": None}, job
    wait_until(lambda: not any(tmp.iterdir()), 5, what="every job's directory removed")
