"""
test_http_kinds.py - http job kinds (modules/kinds/kind_http.h) against the
real binary, a real store and a local Python receiver (plain HTTP, and
HTTPS with a throw-away CA): signed deliveries verified with the Standard
Webhooks scheme written from its spec; retries with backoff then success;
4xx final without retry; 429 with Retry-After honoured; time-outs retried;
bad certificate and wrong host name fail with no delivery; the
TRIREME_HTTP_KIND_<kind> shorthand; the generic kind's allowlist and its
resolved-address SSRF guard; bad declarations stop the start with one
line naming the kind and field.
Both queue backends.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import uuid

import pytest

from conftest import binary_path, clean_env
import tlstools

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]

SECRET_RAW = b"trireme-e2e-signing-key-32-bytes"
SECRET = "whsec_" + base64.b64encode(SECRET_RAW).decode()


def verify(headers, body: bytes) -> bool:
    """Standard Webhooks, from the spec: v1,<base64 HMAC-SHA256 of id.ts.body>."""
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(SECRET_RAW, msg, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(want, s) for s in sigs)


class Receiver:
    """Answers per path with a script: a list of (status, headers, body) or
    ("sleep", seconds); the last entry repeats. Records every delivery."""

    def __init__(self, ctx=None):
        self.script, self.seen, self.lock = {}, [], threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                     body, time.monotonic()))
                    steps = rec.script.get(self.path, [(200, {}, b'{"ok": true}')])
                    i = sum(1 for p, *_ in rec.seen if p == self.path) - 1
                    step = steps[min(i, len(steps) - 1)]
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = (200, {}, b"late")
                status, hdrs, out = step
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        if ctx:
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def hits(self, path):
        with self.lock:
            return [s for s in self.seen if s[0] == path]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(params=["postgres", "redis"])
def backend(request):
    if request.param == "postgres":
        return request.getfixturevalue("db").env()
    url = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set")
    return {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}


def start(trireme, backend, tmp_path, kinds: dict, *flags, env=None):
    tag = uuid.uuid4().hex[:8]
    f = tmp_path / f"kinds-{tag}.json"
    f.write_text(json.dumps({"kinds": kinds}))
    e = dict(backend, SEND_SECRET=SECRET, **(env or {}))
    srv = trireme("--roles=web,worker", f"--kinds={f}", f"--queues=q{tag}", *flags, env=e)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = f"q{tag}"
    return srv


def job(srv, kind, payload=None, **kw):
    return enqueue(srv.port, {"kind": kind, "queue": srv.queue, "payload": payload or {}, **kw})["id"]


def settled(srv, jid, status, timeout=30):
    wait_until(lambda: get_job(srv.port, jid)["status"] == status, timeout,
               what=lambda: get_job(srv.port, jid))
    return get_job(srv.port, jid)


def test_signed_delivery_retries_then_succeeds(trireme, backend, tmp_path, rx):
    rx.script["/send"] = [(500, {}, b"boom"), (502, {}, b"bad gateway"),
                          (200, {}, b'{"sent": 42}')]
    srv = start(trireme, backend, tmp_path, {"send_email": {
        "type": "http", "url": f"http://127.0.0.1:{rx.port}/send", "secret_env": "SEND_SECRET",
        "headers": {"X-App": "e2e"}}})
    jid = job(srv, "send_email", {"to": "a@b.c"}, max_attempts=5)
    j = settled(srv, jid, "succeeded", 40)
    assert j["attempts"] == 3 and j["result"] == {"sent": 42}
    hits = rx.hits("/send")
    assert len(hits) == 3
    for i, (_, h, body, _) in enumerate(hits):
        assert verify(h, body), h
        assert h["webhook-id"] == f"job_{jid}"  # the message id: the same on every attempt
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
        assert h["trireme-job-id"] == str(jid) and h["trireme-job-attempt"] == str(i + 1)
        assert h["trireme-retry-count"] == str(i) and h["trireme-job-queue"] == srv.queue
        assert int(h["trireme-job-deadline"]) > time.time() - 60
        assert h["x-app"] == "e2e" and h["content-type"] == "application/json"
        b = json.loads(body)
        assert b == {"id": jid, "kind": "send_email", "queue": srv.queue, "attempt": i + 1,
                     "max_attempts": 5, "payload": {"to": "a@b.c"}}
    # a tampered body does not verify
    assert not verify(hits[0][1], hits[0][2] + b" ")
    try:  # and the reference library agrees (pip install standardwebhooks)
        from standardwebhooks.webhooks import Webhook
    except ImportError:
        return
    for _, h, body, _ in hits:
        assert Webhook(SECRET).verify(body, h)["payload"] == {"to": "a@b.c"}
    # backoff: the second retry waited longer than the first (1 s, then 2 s, +-25%)
    gaps = [hits[i + 1][3] - hits[i][3] for i in range(2)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0, gaps


def test_4xx_is_final_and_no_retry_header(trireme, backend, tmp_path, rx):
    rx.script["/bad"] = [(422, {}, b'{"error": "no such template"}')]
    rx.script["/stop"] = [(500, {"Trireme-No-Retry": "true"}, b"give up")]
    srv = start(trireme, backend, tmp_path, {
        "bad": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/bad"},
        "stop": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/stop"}})
    a, b = job(srv, "bad", max_attempts=5), job(srv, "stop", max_attempts=5)
    ja, jb = settled(srv, a, "failed"), settled(srv, b, "failed")
    assert ja["attempts"] == 1 and "HTTP 422" in ja["last_error"]
    assert "no such template" in ja["last_error"]
    assert jb["attempts"] == 1 and "HTTP 500" in jb["last_error"]
    time.sleep(1.5)
    assert len(rx.hits("/bad")) == 1 and len(rx.hits("/stop")) == 1


def test_429_retry_after_is_honoured(trireme, backend, tmp_path, rx):
    rx.script["/slow"] = [(429, {"Retry-After": "3"}, b"later"), (200, {}, b"done")]
    srv = start(trireme, backend, tmp_path, {
        "ra": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/slow"}})
    jid = job(srv, "ra", max_attempts=3)
    j = settled(srv, jid, "succeeded", 30)
    assert j["result"] == "done"  # a body that is not JSON is kept as text
    h = rx.hits("/slow")
    assert len(h) == 2 and h[1][3] - h[0][3] >= 2.8, [x[3] for x in h]


def test_timeout_is_retried(trireme, backend, tmp_path, rx):
    rx.script["/hang"] = [("sleep", 3), (200, {}, b"{}")]
    srv = start(trireme, backend, tmp_path, {
        "hang": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/hang", "timeout": "1s"}})
    jid = job(srv, "hang", max_attempts=3)
    j = settled(srv, jid, "succeeded", 30)
    assert j["attempts"] == 2


def test_tls_bad_certificate_and_wrong_name(trireme, backend, tmp_path):
    ca = tlstools.make_ca(tmp_path / "ca")
    other = tlstools.make_ca(tmp_path / "other", name="other")
    cert, key = ca.issue("rx", ip=None)  # names localhost only
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    r = Receiver(ctx)
    try:
        good = f"https://localhost:{r.port}/ok"
        wrong = f"https://127.0.0.1:{r.port}/wrongname"
        srv = start(trireme, backend, tmp_path, {
            "tls_ok": {"type": "http", "url": good},
            "tls_wrong": {"type": "http", "url": wrong}}, f"--tls-ca-file={ca.cert}")
        a, b = job(srv, "tls_ok"), job(srv, "tls_wrong", max_attempts=1)
        settled(srv, a, "succeeded")
        jb = settled(srv, b, "dead")
        assert "TLS" in jb["last_error"], jb
        srv2 = start(trireme, backend, tmp_path, {"tls_other": {"type": "http", "url": good}},
                     f"--tls-ca-file={other.cert}")
        c = job(srv2, "tls_other", max_attempts=1)
        assert "TLS" in settled(srv2, c, "dead")["last_error"]
        assert r.hits("/wrongname") == [] and len(r.hits("/ok")) == 1
    finally:
        r.close()


def test_env_shorthand_and_generic_kind_ssrf(trireme, backend, tmp_path, rx):
    tag = uuid.uuid4().hex[:6]
    srv = start(trireme, backend, tmp_path, {}, "--http-allow-hosts=localhost,127.0.0.1",
                env={f"TRIREME_HTTP_KIND_ping_{tag}": f"http://127.0.0.1:{rx.port}/ping"})
    jid = job(srv, f"ping_{tag}", {"n": 1})
    assert settled(srv, jid, "succeeded")["result"] == {"ok": True}
    assert json.loads(rx.hits("/ping")[0][2])["payload"] == {"n": 1}
    g = job(srv, "http", {"url": f"http://localhost:{rx.port}/gen", "payload": {"x": 2}})
    settled(srv, g, "succeeded")
    assert json.loads(rx.hits("/gen")[0][2])["payload"] == {"x": 2}
    r = enqueue(srv.port, {"kind": "http", "queue": srv.queue,
                           "payload": {"url": "http://example.invalid/x"}}, expect=400)
    assert "url" in json.dumps(r)
    # listed by name only: the name resolves to loopback, which is not listed
    srv2 = start(trireme, backend, tmp_path, {}, "--http-allow-hosts=localhost")
    s = job(srv2, "http", {"url": f"http://localhost:{rx.port}/ssrf"}, max_attempts=3)
    j = settled(srv2, s, "failed")
    assert "private or loopback" in j["last_error"] and j["attempts"] == 1
    assert rx.hits("/ssrf") == []


@pytest.mark.parametrize("kinds,env,needle", [
    ({"k1": {"type": "http"}}, {}, "kind 'k1': field 'url'"),
    ({"k2": {"type": "http", "url": "ftp://x"}}, {}, "kind 'k2': field 'url'"),
    ({"k3": {"type": "http", "url": "http://x/", "secret_env": "NOPE_UNSET"}}, {},
     "kind 'k3': field 'secret_env'"),
    ({"k4": {"type": "http", "url": "http://x/", "headers": {"Host": "y"}}}, {},
     "kind 'k4': field 'headers'"),
    ({}, {"TRIREME_HTTP_KIND_k5": "nope"}, "kind 'k5': field 'url'"),
])
def test_bad_declarations_stop_the_start(tmp_path, kinds, env, needle):
    f = tmp_path / "kinds.json"
    f.write_text(json.dumps({"kinds": kinds}))
    e = clean_env(dict(env, TRIREME_INSECURE_NO_AUTH="1",
                        DATABASE_URL=os.environ["TRIREME_TEST_DATABASE_URL"]))
    r = subprocess.run([str(binary_path()), "run", "--roles=worker", f"--kinds={f}"], env=e,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, (r.returncode, r.stderr[-2000:])  # as every --kinds error
    assert needle in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("example", ["http_kind_receiver.py", "http_kind_receiver.js"])
def test_documented_receivers(trireme, db, tmp_path, example):
    """docs/examples' receivers, run as they are, verify and answer."""
    import shutil
    import socket
    import sys
    from conftest import REPO_ROOT
    cmd = [sys.executable] if example.endswith(".py") else [shutil.which("node") or "node"]
    if example.endswith(".js") and not shutil.which("node"):
        pytest.skip("node is not installed (Debian nodejs)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = start(trireme, db.env(), tmp_path, {
        "signed": {"type": "http", "url": f"http://127.0.0.1:{port}/", "secret_env": "SEND_SECRET"},
        "unsigned": {"type": "http", "url": f"http://127.0.0.1:{port}/"}})
    p = subprocess.Popen(cmd + [str(REPO_ROOT / "docs" / "examples" / example)],
                         env=dict(os.environ, TRIREME_SECRET=SECRET, PORT=str(port),
                                  TRIREME_URL=f"http://127.0.0.1:{srv.port}",
                                  TRIREME_API_KEY=API_KEY))
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 15)
        a, b = job(srv, "signed", {"n": 7}), job(srv, "unsigned", max_attempts=3)
        assert settled(srv, a, "succeeded")["result"] == {"echo": {"n": 7}, "attempt": 1}
        jb = settled(srv, b, "failed")
        assert "HTTP 401" in jb["last_error"] and jb["attempts"] == 1
        # a long job: answered 202, then progress and complete through the callbacks
        c = job(srv, "signed", {"long": True})
        jc = settled(srv, c, "succeeded")
        assert jc["result"] == {"echo": {"long": True}, "attempt": 1, "long": True}, jc
        assert jc["attempts"] == 1 and jc["worker_id"].startswith("pull:"), jc
        srv.wait_log(r"job handed off to its endpoint", timeout=5)
    finally:
        p.kill()
        p.wait(timeout=10)
