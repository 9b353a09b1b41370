"""
test_http_handoff.py - long jobs of http kinds handed off by a 202, and the
previous attempt's status header (modules/kinds/kind_http.h), against the
real binary, a real store and Python receivers on loopback:

- a 202 frees the worker's slot; the endpoint reports progress (seen in
  GET /v1/jobs/{id}) and completes through the job callbacks with the
  Trireme-Job-Token it was sent; a callback sent right after the 202 (before
  the worker wrote the hand-off) is waited for, not refused;
- a 202 whose endpoint never calls back is retried once the kind's lease
  ends, like any lost lease;
- after a forced take-over the old attempt's token gets 409 and changes
  nothing, the new attempt's token finishes the job;
- Trireme-Previous-Response says 503 on the retry of a 503 (0 first);
- the seed flow: a Standard-Webhooks-signed inbound webhook stored as a job
  of an http kind, delivered over HTTPS (a throw-away CA) to a receiver that
  answers 503 then 200: succeeded on attempt 2.
Both queue backends.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.server as httpserver
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

import tlstools

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]


class Receiver:
    """Answers each delivery with handler(path, headers, body) -> (status,
    body[, after]); after() runs once the answer is written."""

    def __init__(self, handler, ctx=None):
        self.seen, self.lock = [], threading.Lock()
        rec = self

        class H(httpserver.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                h = {k.lower(): v for k, v in self.headers.items()}
                with rec.lock:
                    rec.seen.append((self.path, h, body))
                status, out, *after = handler(self.path, h, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                self.wfile.flush()
                for fn in after:
                    fn()

        self.srv = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), H)
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


def start(trireme, env, tmp_path, kinds, *flags, webhooks=None, queue=None, threads=1):
    tag = uuid.uuid4().hex[:8]
    f = tmp_path / f"kinds-{tag}.json"
    spec = {"kinds": kinds}
    if webhooks:
        spec["webhooks"] = webhooks
    f.write_text(json.dumps(spec))
    queue = queue or f"q{tag}"
    srv = trireme("--roles=web,worker", f"--kinds={f}", f"--queues={queue}", *flags,
                  threads=threads, env=env)
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    srv.queue = queue
    return srv


def settled(srv, jid, status, timeout=30):
    wait_until(lambda: get_job(srv.port, jid)["status"] == status, timeout,
               what=lambda: get_job(srv.port, jid))
    return get_job(srv.port, jid)


def callback(srv, jid, what, body):
    return http(srv.port, "POST", f"/v1/jobs/{jid}/{what}", body)


def redis_env():
    url = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set")
    return {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}


@pytest.fixture(params=["postgres", "redis"])
def backend(request):
    """(name, environment) of a queue backend."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("db").env()
    return "redis", redis_env()


def expire_lease(backend, db, jid):
    """Force the handed-off attempt's lease to end now (a take-over)."""
    if backend == "postgres":
        db.exec(f"UPDATE trireme.jobs SET lease_until = now() - interval '1 s' WHERE id = {jid}")
        return
    url = urllib.parse.urlparse(os.environ["TRIREME_TEST_REDIS_URL"])
    subprocess.run(["redis-cli", "-h", url.hostname, "-p", str(url.port), "-n",
                    (url.path or "/0")[1:] or "0", "ZADD", "trireme:pull-leases", "0", str(jid)],
                   check=True, capture_output=True, timeout=10)


def test_202_progress_then_complete(trireme, backend, tmp_path):
    """The long job reports progress and completes through the callbacks;
    while it is handed off its slot is free (--concurrency=1 runs another
    job meanwhile); a complete sent right after the 202 is not refused."""
    tokens = {}

    def handler(path, h, body):
        job = json.loads(body)
        if path == "/long":
            tokens[job["id"]] = h["trireme-job-token"]
            return 202, b"accepted"
        if path == "/fast":  # calls back at once, racing the worker's hand-off
            def done():
                tokens[job["id"]] = callback(srv, job["id"], "complete", {
                    "token": h["trireme-job-token"], "result": {"fast": True}})
            return 202, b"", done
        if path == "/fastmany":  # the same race through POST /v1/outcomes
            def done():
                tokens[job["id"]] = http(srv.port, "POST", "/v1/outcomes", {"outcomes": [{
                    "id": job["id"], "token": h["trireme-job-token"], "ok": True,
                    "result": {"fastmany": True}}]})
            return 202, b"", done
        return 200, b'{"quick": true}'

    rx = Receiver(handler)
    try:
        srv = start(trireme, backend[1], tmp_path, {
            "long": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/long", "lease": "1m"},
            "fast": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/fast"},
            "fastmany": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/fastmany"},
            "quick": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/quick"}},
            "--concurrency=1", threads=1)
        jid = enqueue(srv.port, {"kind": "long", "queue": srv.queue, "payload": {"n": 1}})["id"]
        wait_until(lambda: jid in tokens, 20, what="the long job's delivery")
        token = tokens[jid]
        assert token.startswith("1.") and len(token) > 20, token
        srv.wait_log(r"job handed off to its endpoint", timeout=10)
        # the log line comes as the hand-off is sent; its write lands a moment later
        wait_until(lambda: get_job(srv.port, jid)["worker_id"].startswith("pull:"), 10,
                   what=lambda: get_job(srv.port, jid))
        j = get_job(srv.port, jid)
        assert j["status"] == "running" and j["attempts"] == 1, j
        assert j["worker_id"].startswith("pull:") and token[2:] not in json.dumps(j), j
        # the slot is free: another job runs while the long one is away
        q = enqueue(srv.port, {"kind": "quick", "queue": srv.queue})["id"]
        assert settled(srv, q, "succeeded")["result"] == {"quick": True}
        r = callback(srv, jid, "progress", {"token": token, "percent": 40, "step": "rendering"})
        assert r.status == 200 and r.json["status"] == "running", r
        j = get_job(srv.port, jid)
        assert j["progress_percent"] == 40 and j["current_step"] == "rendering", j
        r = callback(srv, jid, "heartbeat", {"token": token, "lease": 120})
        assert r.status == 200 and r.json["lease_expires_at"], r
        r = callback(srv, jid, "complete", {"token": token, "result": {"pages": 12}})
        assert r.status == 200 and r.json["status"] == "succeeded", r
        j = get_job(srv.port, jid)
        assert j["status"] == "succeeded" and j["result"] == {"pages": 12}, j
        assert j["attempts"] == 1 and len(rx.hits("/long")) == 1
        # a finished job's token changes nothing any more
        r = callback(srv, jid, "complete", {"token": token, "result": {"pages": 0}})
        assert r.status == 409 and get_job(srv.port, jid)["result"] == {"pages": 12}, r

        f = enqueue(srv.port, {"kind": "fast", "queue": srv.queue})["id"]
        wait_until(lambda: not isinstance(tokens.get(f), (str, type(None))), 20,
                   what="the fast receiver's callback")
        assert tokens[f].status == 200, tokens[f]
        assert settled(srv, f, "succeeded")["result"] == {"fast": True}
        f = enqueue(srv.port, {"kind": "fastmany", "queue": srv.queue})["id"]
        wait_until(lambda: not isinstance(tokens.get(f), (str, type(None))), 20,
                   what="the fastmany receiver's callback")
        assert tokens[f].status == 200, tokens[f]
        assert tokens[f].json["outcomes"][0]["status"] == "succeeded", tokens[f]
        assert settled(srv, f, "succeeded")["result"] == {"fastmany": True}
    finally:
        rx.close()


def test_202_without_callback_is_retried_after_the_lease(trireme, backend, tmp_path):
    """Nobody calls back: the lease (the kind's "lease", 2 s) expires, the
    reaper returns the job, the next attempt is delivered."""
    def handler(path, h, body):
        return (202, b"") if json.loads(body)["attempt"] == 1 else (200, b'{"second": true}')

    rx = Receiver(handler)
    try:
        srv = start(trireme, backend[1], tmp_path, {
            "lost": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/lost", "lease": "2s"}},
            "--lease=2s", threads=1)
        t0 = time.monotonic()
        jid = enqueue(srv.port, {"kind": "lost", "queue": srv.queue, "max_attempts": 3})["id"]
        j = settled(srv, jid, "succeeded", 30)
        assert j["attempts"] == 2 and j["result"] == {"second": True}, j
        hits = rx.hits("/lost")
        assert len(hits) == 2 and time.monotonic() - t0 >= 2.0
        assert hits[1][1]["trireme-job-attempt"] == "2"
        # a lost lease is not an HTTP answer: no previous status
        assert hits[1][1]["trireme-previous-response"] == "0"
        # the first attempt's token is stale now
        r = callback(srv, jid, "complete", {"token": hits[0][1]["trireme-job-token"]})
        assert r.status == 409 and r.json["error"] == "stale_token", r
    finally:
        rx.close()


def test_stale_token_after_forced_takeover(trireme, db, backend, tmp_path):
    """The lease is forced to expire; the reaper re-queues the job and the
    second attempt is handed off with a new token. The first token's
    callbacks get 409 and change nothing; the second's finish the job."""
    tokens = []

    def handler(path, h, body):
        tokens.append(h["trireme-job-token"])
        return 202, b""

    rx = Receiver(handler)
    try:
        srv = start(trireme, backend[1], tmp_path, {
            "take": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/take", "lease": "10m"}},
            "--lease=2s", threads=1)
        jid = enqueue(srv.port, {"kind": "take", "queue": srv.queue, "max_attempts": 3})["id"]
        wait_until(lambda: len(tokens) == 1, 20, what="the first delivery")
        wait_until(lambda: get_job(srv.port, jid)["worker_id"].startswith("pull:"), 10,
                   what="the hand-off")
        old = tokens[0]
        assert callback(srv, jid, "progress", {"token": old, "percent": 10}).status == 200
        expire_lease(backend[0], db, jid)
        wait_until(lambda: len(tokens) == 2, 20, what="the second delivery")
        new = tokens[1]
        assert new.startswith("2.") and old.startswith("1."), tokens
        wait_until(lambda: get_job(srv.port, jid)["worker_id"] not in (None, "")
                   and get_job(srv.port, jid)["worker_id"].startswith("pull:"), 10,
                   what="the second hand-off")
        before = get_job(srv.port, jid)
        for what, body in (("progress", {"percent": 99, "step": "stale"}),
                           ("heartbeat", {"lease": 600}),
                           ("complete", {"result": {"from": "old"}}),
                           ("fail", {"error": "old", "retry": False})):
            r = callback(srv, jid, what, dict(body, token=old))
            assert r.status == 409 and r.json["error"] == "stale_token", (what, r)
        after = get_job(srv.port, jid)
        assert after == before, (before, after)
        assert after["status"] == "running" and after["attempts"] == 2, after
        r = callback(srv, jid, "complete", {"token": new, "result": {"from": "new"}})
        assert r.status == 200, r
        j = get_job(srv.port, jid)
        assert j["status"] == "succeeded" and j["result"] == {"from": "new"}, j
    finally:
        rx.close()


def test_previous_response_header(trireme, backend, tmp_path):
    def handler(path, h, body):
        return (503, b"busy") if json.loads(body)["attempt"] == 1 else (200, b"{}")

    rx = Receiver(handler)
    try:
        srv = start(trireme, backend[1], tmp_path, {
            "prev": {"type": "http", "url": f"http://127.0.0.1:{rx.port}/prev"}}, threads=1)
        jid = enqueue(srv.port, {"kind": "prev", "queue": srv.queue, "max_attempts": 3})["id"]
        assert settled(srv, jid, "succeeded")["attempts"] == 2
        hits = rx.hits("/prev")
        assert [h["trireme-previous-response"] for _, h, _ in hits] == ["0", "503"]
        assert [h["trireme-retry-count"] for _, h, _ in hits] == ["0", "1"]
    finally:
        rx.close()


WH_KEY = b"trireme-seed-000-webhook-key-0123"
WH_SECRET = "whsec_" + base64.b64encode(WH_KEY).decode()


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_seed_signed_webhook_delivered_over_https(trireme, db, tmp_path, store):
    """Seed 000: a Standard-Webhooks-signed delivery to POST
    /v1/webhooks/{source} is verified and stored as a job of an http kind;
    the worker delivers it over HTTPS (throw-away CA) to a receiver that
    answers 503 first and 200 next: succeeded on attempt 2."""
    ca = tlstools.make_ca(tmp_path / "ca")
    cert, key = ca.issue("rx", ip=None)  # names localhost
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))

    def handler(path, h, body):
        if json.loads(body)["attempt"] == 1:
            return 503, b"warming up"
        return 200, json.dumps({"stored": json.loads(body)["payload"]["order"]}).encode()

    rx = Receiver(handler, ctx)
    try:
        env = db.env(SHOP_WH_SECRET=WH_SECRET) if store == "postgres" \
            else dict(redis_env(), SHOP_WH_SECRET=WH_SECRET)
        queue = f"shop{uuid.uuid4().hex[:8]}"
        srv = start(trireme, env, tmp_path, {
            "shop_order": {"type": "http", "url": f"https://localhost:{rx.port}/orders"}},
            f"--tls-ca-file={ca.cert}", threads=1, queue=queue,
            webhooks={"shop": {"scheme": "standard", "secret_env": "SHOP_WH_SECRET",
                               "kind": "shop_order", "queue": queue}})
        body = json.dumps({"type": "order.created", "order": 1042}).encode()
        delivery, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
        mac = hmac.new(WH_KEY, f"{delivery}.{ts}.".encode() + body, hashlib.sha256).digest()
        headers = {"webhook-id": delivery, "webhook-timestamp": str(ts),
                   "webhook-signature": "v1," + base64.b64encode(mac).decode()}
        # a wrong signature is refused and stores nothing
        bad = dict(headers, **{"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()})
        r = http(srv.port, "POST", "/v1/webhooks/shop", body, key=None, headers=bad)
        assert r.status == 401, r
        r = http(srv.port, "POST", "/v1/webhooks/shop", body, key=None, headers=headers)
        assert r.status == 200 and r.json["created"] is True, r
        jid = r.json["id"]
        j = settled(srv, jid, "succeeded", 40)
        assert j["kind"] == "shop_order" and j["queue"] == queue, j
        assert j["attempts"] == 2 and j["result"] == {"stored": 1042}, j
        hits = rx.hits("/orders")
        assert len(hits) == 2, hits
        assert [h["trireme-job-attempt"] for _, h, _ in hits] == ["1", "2"]
        assert json.loads(hits[1][2])["payload"] == {"type": "order.created", "order": 1042}
        assert [h["trireme-previous-response"] for _, h, _ in hits] == ["0", "503"]
    finally:
        rx.close()
