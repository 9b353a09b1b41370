"""
test_upload_redis.py - uploads on the Redis queue backend: the job lives in
Redis, its files in PostgreSQL, against the real binary, a private
redis-server and the test PostgreSQL. Seed 002's flow (upload, an exec
program reads the file and reports progress, the client sees the result);
the files served by GET /v1/jobs/{id}/files/{name}; a pull kind's upload
claimed by an external worker; a retried attempt (exit 75, delivered again
from Redis' delayed set) gets the files again, while a job enqueued
without files makes no database query (it runs with the database down); a
unique_key that matches keeps the first job's files and drops the new
ones; Redis down answers 503 and keeps nothing; and the sweep: the files of a job whose hash expired (--result-ttl)
are deleted, as are files attached to an id whose enqueue never happened,
while a job still in Redis, an id reserved a moment ago and the files of a
PostgreSQL-backend job are kept. Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid

import pytest

from conftest import free_port

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, get_job, http, wait_until  # noqa: E402
from test_redis_queue import Redis  # noqa: E402
from test_upload_exec import kinds_file, pdf_like, wait_done  # noqa: E402
from test_uploads import job_part, multipart, post  # noqa: E402

pytest_plugins = ["pgtools"]


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


def env(db, redis_url, **extra):
    return db.env(REDIS_URL=redis_url, QUEUE_BACKEND="redis", **extra)


def files_of(db, jid) -> int:
    return int(db.scalar(f"SELECT count(*) FROM trireme.job_files WHERE job_id = '{jid}'"))


def upload(port, job, files):
    body, ctype = multipart([job_part(job), *files])
    return post(port, body, ctype)


def test_seed_002_flow_on_the_redis_backend(trireme, db, redis, tmp_path):
    tmp = tmp_path / "jobfiles"
    tmp.mkdir()
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--kinds={kinds_file(tmp_path)}", f"--queues={queue}",
                  f"--upload-tmp-dir={tmp}", "--upload-chunk=64k", threads=1,
                  env=env(db, redis.url))
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    data = pdf_like(300 * 1024)
    status, ans = upload(srv.port, {"kind": "pdf", "queue": queue, "payload": {}},
                         [("document", "report.pdf", "application/pdf", data)])
    assert status == 201 and ans["created"] is True, ans
    jid = ans["id"]
    assert jid > 10**15, ans  # a Redis id: never below the clock in ms x 1000
    assert ans["files"] == [{"name": "document", "filename": "report.pdf",
                             "content_type": "application/pdf", "size": len(data)}], ans
    job = wait_done(srv.port, jid)
    assert job["status"] == "succeeded", job
    got = job["result"]["files"]
    assert [(f["name"], f["bytes"], f["sha256"]) for f in got] == \
        [("document", len(data), hashlib.sha256(data).hexdigest())], got
    assert job["progress_percent"] == 100
    assert list(tmp.iterdir()) == [], "the files' directory outlived the attempt"
    # the files stay with the job while its hash lives, and are served
    assert files_of(db, jid) == 1
    r = http(srv.port, "GET", f"/v1/jobs/{jid}/files/document")
    assert r.status == 200 and r.body == data, (r.status, len(r.body))


RETRY_PROG = r'''
import hashlib, json, sys
job = json.load(sys.stdin)
if job["attempt"] == 1:
    sys.exit(75)  # EX_TEMPFAIL: retried
json.dump({"attempt": job["attempt"], "sha256": [hashlib.sha256(open(f["path"], "rb").read())
                                                 .hexdigest() for f in job.get("files") or []]},
          sys.stdout)
'''


def retry_server(trireme, tmp_path, env_):
    prog = tmp_path / "retry.py"
    prog.write_text(RETRY_PROG)
    kinds = tmp_path / "kinds.json"
    kinds.write_text(json.dumps({"kinds": {"twice": {"type": "exec",
                                                     "argv": [sys.executable, str(prog)]}}}))
    srv = trireme("--roles=web,worker", f"--kinds={kinds}", threads=1, env=env_)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    return srv


def test_a_retried_attempt_gets_the_files_again(trireme, db, redis, tmp_path):
    srv = retry_server(trireme, tmp_path, env(db, redis.url))
    data = b"retry me " * 5000
    status, ans = upload(srv.port, {"kind": "twice"}, [("doc", "d.bin", None, data)])
    assert status == 201, ans
    job = wait_done(srv.port, ans["id"])
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert job["result"] == {"attempt": 2, "sha256": [hashlib.sha256(data).hexdigest()]}, job


def test_jobs_without_files_need_no_database(trireme, redis, tmp_path):
    dead_pg = f"postgresql://trireme@127.0.0.1:{free_port()}/trireme?connect_timeout=1"
    srv = retry_server(trireme, tmp_path, {"DATABASE_URL": dead_pg, "REDIS_URL": redis.url,
                                           "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY,
                                           "TRIREME_MIGRATE": "off"})
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "twice"})
    assert r.status == 201, r
    job = wait_done(srv.port, r.json["id"])
    assert job["status"] == "succeeded" and job["result"] == {"attempt": 2, "sha256": []}, job


def test_without_a_database_a_file_is_not_found_not_unavailable(trireme, redis):
    # Files live in PostgreSQL; a Redis deployment without one has none to
    # serve, which is a 404, not the 503 of a backend that needs a database.
    srv = trireme("--roles=web", threads=1, env={"REDIS_URL": redis.url, "QUEUE_BACKEND": "redis",
                                                 "TRIREME_API_KEYS": API_KEY})
    r = http(srv.port, "GET", "/v1/jobs/7/files/a.txt")
    assert r.status == 404 and r.json["error"] == "not_found", r
    assert r.json["message"] == 'job 7 has no file named "a.txt" (or no such job)', r


def test_a_pull_kinds_upload_is_claimed_with_its_files(trireme, db, redis):
    kind = "render_" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker", f"--pull-kinds={kind}", threads=1,
                  env=env(db, redis.url))
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    data = b"page " * 1000
    status, ans = upload(srv.port, {"kind": kind, "payload": {"n": 1}},
                         [("page", "p.txt", "text/plain", data)])
    assert status == 201, ans
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [kind], "wait": 5})
    assert r.status == 200 and [j["id"] for j in r.json["jobs"]] == [ans["id"]], r
    f = http(srv.port, "GET", f"/v1/jobs/{ans['id']}/files/page")
    assert f.status == 200 and f.body == data


def test_a_matching_unique_key_keeps_the_first_jobs_files(trireme, db, redis):
    srv = trireme("--roles=web", threads=1, env=env(db, redis.url))
    key = "doc-" + uuid.uuid4().hex[:8]
    job = {"kind": "noop", "delay": 3600, "unique_key": key}
    s1, a1 = upload(srv.port, job, [("a", "a.bin", None, b"first")])
    last = int(db.scalar("SELECT coalesce(max(id), 0) FROM trireme.job_files"))
    s2, a2 = upload(srv.port, job, [("a", "a.bin", None, b"second"), ("b", "b", None, b"x")])
    assert (s1, s2) == (201, 200) and a1["id"] == a2["id"] and a2["created"] is False, (a1, a2)
    assert a2["files"] == []
    assert files_of(db, a1["id"]) == 1
    assert http(srv.port, "GET", f"/v1/jobs/{a1['id']}/files/a").body == b"first"
    # nothing of the second upload is left anywhere, attached or not
    wait_until(lambda: int(db.scalar(
        f"SELECT count(*) FROM trireme.job_files WHERE id > {last}")) == 0, 10,
        what="the second upload's files deleted")


def test_redis_down_is_503_and_keeps_nothing(trireme, db):
    srv = trireme("--roles=web", threads=1,
                  env=env(db, f"redis://127.0.0.1:{free_port()}/0"))
    before = int(db.scalar("SELECT count(*) FROM trireme.job_files"))
    status, ans = upload(srv.port, {"kind": "noop"}, [("a", "a", None, b"1" * 100000)])
    assert status == 503 and ans["error"] == "unavailable", ans
    wait_until(lambda: int(db.scalar("SELECT count(*) FROM trireme.job_files")) == before, 10,
               what="the refused upload's rows deleted")


def test_the_sweep_deletes_files_whose_job_is_gone(trireme, db, redis):
    grace_ms = 3000
    srv = trireme("--roles=web,worker", "--result-ttl=1s", "--retention-interval=200ms",
                  f"--retention-upload-orphans={grace_ms}ms", threads=1,
                  env=env(db, redis.url))
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    # a job that finishes: its hash expires after --result-ttl, then its files go
    s, done = upload(srv.port, {"kind": "noop"}, [("a", "a", None, b"done")])
    # a job that stays pending in Redis: its files stay
    s2, waiting = upload(srv.port, {"kind": "noop", "delay": 3600},
                         [("a", "a", None, b"waiting")])
    assert (s, s2) == (201, 201), (done, waiting)
    now_ms = int(time.time() * 1000)
    # files attached to ids whose enqueue never happened (the attach committed,
    # the enqueue failed): one reserved long ago goes, one reserved just now
    # (within the grace: its enqueue may be on its way) stays
    lost, fresh = (now_ms - 60_000) * 1000 + 7, (now_ms + 3_600_000) * 1000 + 7
    # and a PostgreSQL-backend job's files in the same database stay
    pg_job = int(db.scalar("INSERT INTO trireme.jobs (kind, run_at) VALUES ('noop', "
                           "now() + interval '1 hour') RETURNING id"))
    for jid in (lost, fresh, pg_job):
        db.exec(f"INSERT INTO trireme.job_files (job_id, name) VALUES ('{jid}', 'a')")
    wait_until(lambda: get_job(srv.port, done["id"])["status"] == "succeeded", 20)
    wait_until(lambda: files_of(db, done["id"]) == 0 and files_of(db, lost) == 0, 30,
               what=lambda: f"the sweep: done {files_of(db, done['id'])}, lost "
                            f"{files_of(db, lost)}")
    assert http(srv.port, "GET", f"/v1/jobs/{done['id']}").status == 404  # the hash expired
    assert files_of(db, waiting["id"]) == 1
    assert files_of(db, fresh) == 1
    assert files_of(db, pg_job) == 1
    assert srv.wait_log(r"retention: old rows deleted.*table=job_files", timeout=5)
    db.exec(f"DELETE FROM trireme.jobs WHERE id = {pg_job}")
    db.exec(f"DELETE FROM trireme.job_files WHERE job_id = '{fresh}'")
