"""
test_upload_files.py - GET /v1/jobs/{id}/files/{name} and the files'
lifetime, against the real binary and a real PostgreSQL: a 20 MiB file
comes back byte for byte (SHA-256) with its Content-Type and
Content-Length, while a client that does not read holds the server's RSS
to far less than the file (backpressure: the next chunk is read only once
the connection drained); HEAD answers the head alone; a jobs:read key
opens it, a write-only key does not; a signed URL opens it without a key,
a tampered, half or expired one is 403 JSON; an unknown job or file is 404
JSON; retention deleting an old finished job deletes its files and their
chunks (and keeps a recent job's). Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client as httpclient
import os
import socket
import time

import pytest

from conftest import HOST

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, http, wait_until  # noqa: E402
from test_uploads import MIB, job_part, multipart, post, vmrss_kib  # noqa: E402

pytest_plugins = ["pgtools"]

SECRET = "files-test-secret"
KEYS = f"{API_KEY},reader:jobs:read,writer:jobs:write"


# Under AddressSanitizer (TRIREME_BIN=zig-out/asan/trireme) freed memory is
# quarantined, not reused, so every chunk that passed through would stay
# resident: the tests that measure RSS turn the quarantine off (the option
# means nothing to a plain build); the others keep it.
NO_QUARANTINE = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                        "quarantine_size_mb=0"]))}


def start_web(trireme, db, **env):
    return trireme("--roles=web", "--upload-chunk=256k", f"--upload-url-secret={SECRET}",
                   threads=1, env=db.env(TRIREME_API_KEYS=KEYS, **env))


@pytest.fixture
def web(trireme, db):
    return start_web(trireme, db)


def upload(port, files, job=None):
    body, ctype = multipart([job_part(job or {"kind": "noop", "delay": 3600}), *files])
    status, ans = post(port, body, ctype)
    assert status == 201, ans
    return ans["id"]


def signed(path, expires, secret=SECRET):
    sig = hmac.new(secret.encode(), f"GET\n{path}\n{expires}".encode(), hashlib.sha256)
    return f"{path}?expires={expires}&sig={sig.hexdigest()}"


def test_20mib_file_comes_back_streamed_with_bounded_memory(trireme, db):
    web = start_web(trireme, db, **NO_QUARANTINE)
    data = os.urandom(20 * MIB)
    jid = upload(web.port, [("doc", "report.pdf", "application/pdf", data)])
    warm = http(web.port, "GET", f"/v1/jobs/{jid}/files/doc")  # warm pool and allocator
    assert warm.status == 200 and warm.body == data
    assert warm.header("Content-Type") == "application/pdf"
    assert warm.header("Content-Length") == str(20 * MIB)
    assert warm.header("X-Content-Type-Options") == "nosniff"
    assert warm.header("Content-Disposition") == 'attachment; filename="doc"'
    before = vmrss_kib(web.proc.pid)
    # a client that asks and then does not read for a while
    s = socket.create_connection((HOST, web.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(f"GET /v1/jobs/{jid}/files/doc HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {API_KEY}\r\n\r\n".encode())
    time.sleep(1.5)
    stalled = vmrss_kib(web.proc.pid)
    got = bytearray()
    s.settimeout(30)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
        head, sep, rest = bytes(got).partition(b"\r\n\r\n")
        if sep and len(rest) >= 20 * MIB:
            break
    s.close()
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    growth = (stalled - before) * 1024
    print(f"VmRSS before {before} KiB, with a stalled download {stalled} KiB, "
          f"growth {growth / MIB:.2f} MiB")
    assert growth < 4 * MIB, f"RSS grew {growth / MIB:.1f} MiB for a stalled 20 MiB download"
    # keep-alive: the connection serves the next request after a streamed answer
    conn = httpclient.HTTPConnection(HOST, web.port, timeout=30)
    for _ in range(2):
        conn.request("GET", f"/v1/jobs/{jid}/files/doc",
                     headers={"Authorization": f"Bearer {API_KEY}"})
        r = conn.getresponse()
        assert r.status == 200 and len(r.read()) == 20 * MIB
    conn.request("GET", f"/v1/jobs/{jid}", headers={"Authorization": f"Bearer {API_KEY}"})
    r = conn.getresponse()
    assert r.status == 200 and b'"id"' in r.read()
    conn.close()


def test_head_keys_and_not_found(web):
    big = os.urandom(3 * MIB + 1234)  # 13 chunks
    jid = upload(web.port, [("a", "a.txt", "text/plain", b"alpha"),
                            ("empty", "e", None, b""), ("big", "big.bin", None, big)])
    r = http(web.port, "GET", f"/v1/jobs/{jid}/files/big")
    assert r.status == 200 and r.body == big and r.header("Content-Length") == str(len(big))
    conn = httpclient.HTTPConnection(HOST, web.port, timeout=10)
    conn.request("HEAD", f"/v1/jobs/{jid}/files/a", headers={"Authorization": f"Bearer {API_KEY}"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "5" and r.read() == b""
    assert r.getheader("Content-Type") == "text/plain"
    conn.close()
    r = http(web.port, "GET", f"/v1/jobs/{jid}/files/a", key="reader")
    assert r.status == 200 and r.body == b"alpha"
    r = http(web.port, "GET", f"/v1/jobs/{jid}/files/empty")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "0"
    assert r.header("Content-Type") == "application/octet-stream"
    r = http(web.port, "GET", f"/v1/jobs/{jid}/files/a", key="writer")
    assert r.status == 403 and r.json["error"] == "insufficient_scope", r
    r = http(web.port, "GET", f"/v1/jobs/{jid}/files/a", key=None)
    assert r.status == 401, r
    for path in (f"/v1/jobs/{jid}/files/nope", "/v1/jobs/987654321/files/a",
                 f"/v1/jobs/{jid}/files/..", "/v1/jobs/x%2Fy/files/a"):
        r = http(web.port, "GET", path)
        assert r.status == 404 and r.json["error"] == "not_found", (path, r)


def test_signed_urls(web):
    jid = upload(web.port, [("doc", "d.pdf", "application/pdf", b"%PDF-1.7 signed")])
    path = f"/v1/jobs/{jid}/files/doc"
    future = int(time.time()) + 300
    r = http(web.port, "GET", signed(path, future), key=None)
    assert r.status == 200 and r.body == b"%PDF-1.7 signed", r
    bad = [signed(path, future, secret="other"),
           signed(path, future).replace(f"expires={future}", f"expires={future + 1}"),
           signed(f"/v1/jobs/{jid}/files/other", future).replace("/other?", "/doc?"),
           f"{path}?expires={future}",
           f"{path}?sig={'a' * 64}"]
    for url in bad:
        r = http(web.port, "GET", url, key=None)
        assert r.status == 403 and r.json["error"] == "invalid_signature", (url, r)
    r = http(web.port, "GET", signed(path, int(time.time()) - 5), key=None)
    assert r.status == 403 and r.json["error"] == "expired_signature", r
    # a valid signature for a file that is not there is 404, not 403
    gone = f"/v1/jobs/{jid}/files/nope"
    r = http(web.port, "GET", signed(gone, future), key=None)
    assert r.status == 404 and r.json["error"] == "not_found", r


def test_the_upload_answer_carries_signed_urls_that_expire(trireme, db):
    web = trireme("--roles=web", f"--upload-url-secret={SECRET}", "--upload-url-ttl=2s",
                  threads=1, env=db.env(TRIREME_API_KEYS=KEYS))
    body, ctype = multipart([job_part({"kind": "noop", "delay": 3600}),
                             ("doc", "d.txt", "text/plain", b"shared by link")])
    status, ans = post(web.port, body, ctype)
    assert status == 201, ans
    url = ans["files"][0]["url"]
    assert url.startswith(f"/v1/jobs/{ans['id']}/files/doc?expires="), url
    expires = int(url.split("expires=")[1].split("&")[0])
    assert time.time() < expires <= time.time() + 3
    r = http(web.port, "GET", url, key=None)
    assert r.status == 200 and r.body == b"shared by link", r
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    r = http(web.port, "GET", url, key=None)
    assert r.status == 403 and r.json["error"] == "expired_signature", r
    # Without a secret there is no link to give.
    plain = trireme("--roles=web", threads=1, env=db.env(TRIREME_API_KEYS=KEYS))
    status, ans = post(plain.port, body, ctype)
    assert status == 201 and "url" not in ans["files"][0], ans


def test_retention_deletes_the_files_of_the_jobs_it_deletes(web, trireme, db):
    old = upload(web.port, [("a", "a.bin", None, os.urandom(600 * 1024))])
    new = upload(web.port, [("b", "b.bin", None, os.urandom(300 * 1024))])
    db.exec(f"UPDATE trireme.jobs SET status = 'succeeded', finished_at = now() - interval '10 days',"
            f" created_at = now() - interval '10 days' WHERE id = {old}")
    db.exec(f"UPDATE trireme.jobs SET status = 'succeeded', finished_at = now() WHERE id = {new}")

    def chunks(jid):
        return int(db.scalar("SELECT count(*) FROM trireme.job_file_chunks c JOIN "
                             f"trireme.job_files f ON f.id = c.file_id WHERE f.job_id = '{jid}'"))

    assert chunks(old) == 3 and chunks(new) == 2
    trireme("--roles=worker", "--retention-interval=200ms", "--queues=e2e_none",
                     threads=1, env=db.env())
    wait_until(lambda: int(db.scalar(f"SELECT count(*) FROM trireme.jobs WHERE id = {old}")) == 0,
               15, what=f"retention deletes job {old}")
    assert int(db.scalar(f"SELECT count(*) FROM trireme.job_files WHERE job_id = '{old}'")) == 0
    assert int(db.scalar("SELECT count(*) FROM trireme.job_file_chunks c WHERE NOT EXISTS "
                         "(SELECT 1 FROM trireme.job_files f WHERE f.id = c.file_id)")) == 0
    assert chunks(new) == 2, "a recent job keeps its files"
    r = http(web.port, "GET", f"/v1/jobs/{old}/files/a")
    assert r.status == 404, r
    assert http(web.port, "GET", f"/v1/jobs/{new}/files/b").status == 200
