"""
test_uploads.py - POST /v1/jobs as multipart/form-data (a "job" JSON part
and file parts), against the real binary and a real PostgreSQL: a 20 MiB
file stored byte for byte (SHA-256 compared in the database) while the
server's RSS grows by far less than the file; the job and its files
answered together; a file over --upload-max-file and a body over
--upload-max-request get 413 naming the limit with nothing stored;
malformed multipart, a missing job part, a bad job, an unknown field and
a bad file name get 400 with JSON; files go when their job is deleted
(the Redis backend's uploads: test_upload_redis.py). Needs
TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import http.client as httpclient
import json
import os
import threading
import time
import uuid

import pytest

from conftest import HOST

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, get_job, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]

MIB = 1024 * 1024


def multipart(parts, boundary=None):
    """parts: (name, filename or None, content type or None, bytes)."""
    boundary = boundary or "b" + uuid.uuid4().hex
    out = []
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        out += [head.encode() + b"\r\n", data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def post(port, body, ctype, key=API_KEY, timeout=60):
    conn = httpclient.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.putrequest("POST", "/v1/jobs")
        conn.putheader("Authorization", f"Bearer {key}")
        conn.putheader("Content-Type", ctype)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            view = memoryview(body)
            for i in range(0, len(body), 256 * 1024):
                conn.send(view[i:i + 256 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the answer is still readable
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def job_part(job=None):
    return ("job", None, "application/json", json.dumps(job or {"kind": "noop"}).encode())


def vmrss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def stored(db):
    return int(db.scalar("SELECT count(*) FROM trireme.job_files")), \
        int(db.scalar("SELECT count(*) FROM trireme.job_file_chunks"))


@pytest.fixture
def web(trireme, db):
    def start(*flags):
        return trireme("--roles=web", *flags, threads=1, env=db.env())
    return start


def test_20mib_file_is_stored_streamed_with_its_job(web, db):
    srv = web("--upload-chunk=256k")
    data = os.urandom(20 * MIB)
    body, ctype = multipart([job_part({"kind": "noop", "payload": {"doc": "report"}}),
                             ("doc", "report.pdf", "application/pdf", data),
                             ("notes", "n.txt", None, b"hello")])
    # warm the connection pool and allocator with a small upload first
    small, sctype = multipart([job_part(), ("f", "f", None, b"x" * 1000)])
    assert post(srv.port, small, sctype)[0] == 201
    before = vmrss_kib(srv.proc.pid)
    status, ans = post(srv.port, body, ctype)
    after = vmrss_kib(srv.proc.pid)
    assert status == 201, ans
    assert ans["created"] is True and ans["status"] == "pending"
    assert ans["files"] == [
        {"name": "doc", "filename": "report.pdf", "content_type": "application/pdf",
         "size": 20 * MIB},
        {"name": "notes", "filename": "n.txt", "content_type": "application/octet-stream",
         "size": 5},
    ]
    growth = (after - before) * 1024
    print(f"VmRSS before {before} KiB, after {after} KiB, growth {growth / MIB:.2f} MiB")
    assert growth < 8 * MIB, f"RSS grew {growth / MIB:.1f} MiB for a 20 MiB upload"
    rows = db.rows(f"""
SELECT f.name, f.size, count(c.seq) AS chunks,
       encode(sha256(string_agg(c.data, ''::bytea ORDER BY c.seq)), 'hex') AS sha
FROM trireme.job_files f JOIN trireme.job_file_chunks c ON c.file_id = f.id
WHERE f.job_id = '{ans["id"]}' GROUP BY f.id ORDER BY f.name""")
    assert [r["name"] for r in rows] == ["doc", "notes"]
    assert rows[0]["sha"] == hashlib.sha256(data).hexdigest()
    assert int(rows[0]["size"]) == 20 * MIB and int(rows[0]["chunks"]) == 80  # 256 KiB each
    assert rows[1]["sha"] == hashlib.sha256(b"hello").hexdigest()
    job = get_job(srv.port, ans["id"])
    assert job["kind"] == "noop" and job["payload"] == {"doc": "report"}


def test_files_go_with_their_job(web, db):
    srv = web()
    body, ctype = multipart([job_part(), ("a", "a.bin", None, os.urandom(300 * 1024))])
    status, ans = post(srv.port, body, ctype)
    assert status == 201, ans
    assert int(db.scalar(f"SELECT count(*) FROM trireme.job_files WHERE job_id = '{ans['id']}'")) == 1
    db.exec(f"DELETE FROM trireme.jobs WHERE id = {ans['id']}")
    assert int(db.scalar(f"SELECT count(*) FROM trireme.job_files WHERE job_id = '{ans['id']}'")) == 0
    assert int(db.scalar("SELECT count(*) FROM trireme.job_file_chunks c WHERE NOT EXISTS "
                         "(SELECT 1 FROM trireme.job_files f WHERE f.id = c.file_id)")) == 0


def nothing_stored(db, before, jobs_before):
    # a refused upload's rows are deleted by a statement sent after the answer
    wait_until(lambda: stored(db) == before, 10, what=lambda: f"stored {stored(db)} != {before}")
    assert db.count() == jobs_before


def test_oversize_file_is_413_and_nothing_is_stored(web, db):
    srv = web("--upload-max-file=1m", "--upload-chunk=64k")
    before, jobs = stored(db), db.count()
    body, ctype = multipart([job_part(), ("ok", "ok", None, b"y" * 1000),
                             ("big", "big.bin", None, os.urandom(3 * MIB))])
    status, ans = post(srv.port, body, ctype)
    assert status == 413, ans
    assert ans["error"] == "payload_too_large" and "--upload-max-file" in ans["message"]
    nothing_stored(db, before, jobs)
    # the server still serves uploads afterwards
    body, ctype = multipart([job_part(), ("f", "f", None, b"z" * 5000)])
    assert post(srv.port, body, ctype)[0] == 201


def test_oversize_request_is_413(web, db):
    srv = web("--upload-max-request=2m")
    before, jobs = stored(db), db.count()
    body, ctype = multipart([job_part(), ("a", "a", None, os.urandom(MIB)),
                             ("b", "b", None, os.urandom(MIB + 1000))])
    status, ans = post(srv.port, body, ctype)
    assert status == 413, ans
    assert "--upload-max-request" in ans["message"]
    nothing_stored(db, before, jobs)


def test_too_many_files_is_413(web, db):
    srv = web("--upload-max-files=2")
    before, jobs = stored(db), db.count()
    body, ctype = multipart([job_part()] + [(f"f{i}", f"f{i}", None, b"1") for i in range(3)])
    status, ans = post(srv.port, body, ctype)
    assert status == 413 and "--upload-max-files" in ans["message"], ans
    nothing_stored(db, before, jobs)


@pytest.mark.parametrize("case,parts,raw,error,words", [
    ("missing job part", [("f", "f", None, b"data")], None, "invalid_job", "named \"job\""),
    ("job not JSON", [("job", None, None, b"{nope"), ("f", "f", None, b"1")], None,
     "invalid_json", "part \"job\""),
    ("bad job field", [job_part({"kind": "noop", "bogus": 1})], None, "invalid_job",
     "job.bogus"),
    ("unknown field", [job_part(), ("comment", None, None, b"hi")], None, "invalid_upload",
     "\"comment\""),
    ("bad file name", [job_part(), ("../x", "x", None, b"1")], None, "invalid_upload",
     "file field name"),
    ("duplicate file", [job_part(), ("f", "a", None, b"1"), ("f", "b", None, b"2")], None,
     "invalid_upload", "two files"),
    ("folded header", None,
     b"--B\r\nContent-Disposition: form-data; name=job\r\n folded\r\n\r\n{}\r\n--B--\r\n",
     "invalid_upload", "folded"),
    ("no closing delimiter", None,
     b"--B\r\nContent-Disposition: form-data; name=f; filename=f\r\n\r\nabc",
     "invalid_upload", "closing delimiter"),
    ("no Content-Disposition", None, b"--B\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--",
     "invalid_upload", "Content-Disposition"),
])
def test_bad_uploads_are_400_with_json(web, db, case, parts, raw, error, words):
    srv = web()
    before, jobs = stored(db), db.count()
    if raw is not None:
        body, ctype = raw, "multipart/form-data; boundary=B"
    else:
        body, ctype = multipart(parts)
    status, ans = post(srv.port, body, ctype)
    assert status == 400, (case, ans)
    assert ans["error"] == error and words in ans["message"], (case, ans)
    nothing_stored(db, before, jobs)


def test_bad_boundary_and_no_key(web, db):
    srv = web()
    status, ans = post(srv.port, b"x", "multipart/form-data")
    assert status == 400 and "boundary" in ans["message"], ans
    body, ctype = multipart([job_part()])
    status, ans = post(srv.port, body, ctype, key="wrong")
    assert status in (401, 403), ans


def test_client_gone_mid_upload_stores_nothing(web, db):
    srv = web("--upload-chunk=64k")
    before, jobs = stored(db), db.count()
    body, ctype = multipart([job_part(), ("f", "f", None, os.urandom(4 * MIB))])
    conn = httpclient.HTTPConnection(HOST, srv.port, timeout=10)
    conn.putrequest("POST", "/v1/jobs")
    conn.putheader("Authorization", f"Bearer {API_KEY}")
    conn.putheader("Content-Type", ctype)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:2 * MIB])
    time.sleep(0.5)  # chunks are being stored
    conn.sock.close()
    nothing_stored(db, before, jobs)


def test_uploads_are_counted_under_their_route(web, db):
    """A streamed request is labelled with the route it matched in
    trireme_http_requests_total, like a buffered one; a refusal before any
    route matched is "unmatched", never the previous request's route."""
    from test_metrics import scrape, value
    srv = web()
    body, ctype = multipart([job_part(), ("f", "f", None, b"m" * 1000)])
    for _ in range(2):
        status, _ans = post(srv.port, body, ctype)
        assert status == 201
    _text, fam = scrape(srv.port)
    assert value(fam, "trireme_http_requests", "trireme_http_requests_total", route="/v1/jobs",
                 method="POST", status="201") == 2
    # One keep-alive connection: a routed GET, then a head refused on its
    # Content-Length before routing.
    conn = httpclient.HTTPConnection(HOST, srv.port, timeout=10)
    conn.request("GET", "/v1/jobs/999999", headers={"Authorization": f"Bearer {API_KEY}"})
    assert conn.getresponse().read() and True
    conn.putrequest("POST", "/v1/jobs")
    conn.putheader("Content-Length", str(1 << 40))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    _text, fam = scrape(srv.port)
    assert value(fam, "trireme_http_requests", "trireme_http_requests_total",
                 route="unmatched", method="other", status="413") == 1


def test_a_slow_store_does_not_time_out_a_healthy_upload(web, db):
    """While the store is behind (recv paused), --body-timeout does not run:
    it bounds the client, not the database. Chunk writes are held by a lock
    for three times the body timeout; the upload then completes."""
    srv = web("--body-timeout=1s", "--upload-chunk=64k")
    holder = db.session()
    holder.execute("BEGIN; LOCK TABLE trireme.job_file_chunks IN ACCESS EXCLUSIVE MODE;")
    body, ctype = multipart([job_part(), ("f", "f", None, os.urandom(2 * MIB))])
    out = {}
    t = threading.Thread(target=lambda: out.update(r=post(srv.port, body, ctype)))
    t.start()
    time.sleep(3)
    assert t.is_alive(), f"answered while the store was locked: {out}"
    holder.execute("COMMIT;")
    holder.close()
    t.join(timeout=30)
    status, ans = out["r"]
    assert status == 201, ans
    assert ans["files"][0]["size"] == 2 * MIB
