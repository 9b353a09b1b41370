"""
test_upload_http.py - uploaded files reach http kinds' endpoints: a kind
declared with "files": true gets, in its request body, each file of the job
with a signed, expiring URL under --public-url; the endpoint fetches the
file with no API key and answers with its hash, which becomes the job's
result. Kinds without "files" (and jobs without files) get no "files"; a
worker with such a kind but no --public-url or --upload-url-secret refuses
to start, naming what is missing. Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from conftest import binary_path, clean_env  # noqa: E402
from pgtools import enqueue, get_job, wait_until  # noqa: E402
from test_http_handoff import Receiver  # noqa: E402
from test_uploads import job_part, multipart, post  # noqa: E402

pytest_plugins = ["pgtools"]

SECRET = "upload-url-secret-for-tests"


def receiver():
    bodies = {}

    def handler(path, h, body):
        job = json.loads(body)
        bodies[job["id"]] = job
        out = []
        for f in job.get("files", []):
            with urllib.request.urlopen(f["url"], timeout=10) as r:  # no API key: signed
                data = r.read()
            out.append({"name": f["name"], "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
        return 200, json.dumps({"files": out}).encode()

    rx = Receiver(handler)
    rx.bodies = bodies
    return rx


def kinds(tmp_path, rx):
    path = tmp_path / f"kinds-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"kinds": {
        "render": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/render", "files": True},
        "plain": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/plain"}}}))
    return path


def test_http_kind_gets_signed_file_urls(trireme, db, tmp_path):
    rx = receiver()
    try:
        k = kinds(tmp_path, rx)
        queue = "q" + uuid.uuid4().hex[:8]
        env = db.env(TRIREME_UPLOAD_URL_SECRET=SECRET)
        web = trireme("--roles=web", f"--kinds={k}", threads=1, env=env)
        worker = trireme("--roles=worker", f"--kinds={k}", f"--queues={queue}",
                         f"--public-url=http://127.0.0.1:{web.port}/", threads=1, env=env)
        worker.wait_log(r"worker listening for new jobs", timeout=15)
        data = b"%PDF-1.7\n" + os.urandom(300 * 1024)
        body, ctype = multipart([
            job_part({"kind": "render", "queue": queue, "payload": {"n": 1}}),
            ("document", "report.pdf", "application/pdf", data),
            ("cover", "cover.png", "image/png", b"\x89PNG small")])
        status, ans = post(web.port, body, ctype)
        assert status == 201, ans
        jid = ans["id"]
        wait_until(lambda: get_job(web.port, jid)["status"] == "succeeded", 30,
                   what=lambda: get_job(web.port, jid))
        sent = rx.bodies[jid]
        assert sent["payload"] == {"n": 1}
        files = {f["name"]: f for f in sent["files"]}
        assert set(files) == {"document", "cover"}
        doc = files["document"]
        assert doc["filename"] == "report.pdf" and doc["content_type"] == "application/pdf"
        assert doc["size"] == len(data) and doc["expires_at"].endswith("Z")
        assert doc["url"].startswith(f"http://127.0.0.1:{web.port}/v1/jobs/{jid}/files/document?"
                                     "expires="), doc["url"]
        result = {f["name"]: f for f in get_job(web.port, jid)["result"]["files"]}
        assert result["document"] == {"name": "document", "size": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()}
        assert result["cover"]["size"] == len(b"\x89PNG small")
        # a tampered signature opens nothing
        bad = doc["url"][:-1] + ("0" if doc["url"][-1] != "0" else "1")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=10)
        assert e.value.code == 403

        # the same kind without files, and a kind without "files": no "files" key
        a = enqueue(web.port, {"kind": "render", "queue": queue})["id"]
        body, ctype = multipart([job_part({"kind": "plain", "queue": queue}),
                                 ("document", "x.pdf", "application/pdf", b"%PDF-1.7\n")])
        status, ans = post(web.port, body, ctype)
        assert status == 201, ans
        for jid in (a, ans["id"]):
            wait_until(lambda: get_job(web.port, jid)["status"] == "succeeded", 30)
            assert "files" not in rx.bodies[jid], rx.bodies[jid]
    finally:
        rx.close()


@pytest.mark.parametrize("missing", ["public-url", "upload-url-secret"])
def test_files_kind_needs_its_settings(tmp_path, missing):
    f = tmp_path / "kinds.json"
    f.write_text(json.dumps({"kinds": {"render": {"type": "http", "url": "http://127.0.0.1:9/",
                                                  "files": True}}}))
    e = clean_env({"TRIREME_INSECURE_NO_AUTH": "1",
                   "DATABASE_URL": os.environ["TRIREME_TEST_DATABASE_URL"]})
    if missing != "upload-url-secret":
        e["TRIREME_UPLOAD_URL_SECRET"] = SECRET
    flags = [] if missing == "public-url" else ["--public-url=http://127.0.0.1:9"]
    r = subprocess.run([str(binary_path()), "run", "--roles=worker", f"--kinds={f}", *flags],
                       env=e, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, (r.returncode, r.stderr[-2000:])
    assert "kind 'render'" in r.stderr and f"--{missing}" in r.stderr, r.stderr[-2000:]
