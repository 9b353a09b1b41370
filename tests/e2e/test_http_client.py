"""
test_http_client.py - kernel/http_client (driven by the test-only
trireme-http-fetch, tests/tools/http_fetch.c) against a local Python HTTP
and HTTPS server: keep-alive reuse, the per-origin connection limit,
chunked and until-close answers, the response size limit, timeouts,
connect and DNS failures, certificate and name verification, no redirects,
IPv6, POST bodies, and a retry when the server closed a kept-alive
connection under the client.
"""
from __future__ import annotations

import http.server
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, binary_path, clean_env
from tlstools import make_ca


def fetch_bin() -> Path:
    b = binary_path()
    sibling = b.parent / "trireme-http-fetch"
    if sibling.exists():
        return sibling
    return REPO_ROOT / "zig-out" / "test-bin" / "trireme-http-fetch"


def fetch(*args: str, timeout: float = 60) -> tuple[list[dict], str, str]:
    r = subprocess.run([str(fetch_bin()), *args], capture_output=True, text=True,
                       timeout=timeout, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert not any(b in r.stderr for b in ("AddressSanitizer", "runtime error")), r.stderr
    calls = []
    for line in r.stdout.splitlines():
        if line.startswith("call="):
            head, _, body = line.partition(" body=")
            d = dict(kv.split("=", 1) for kv in head.split(" "))
            d["body"] = body
            calls.append(d)
    assert r.stdout.rstrip().splitlines()[-1].startswith("done "), r.stdout
    return calls, r.stdout, r.stderr


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        st = self.server.stats
        with st["lock"]:
            st["conns"] += 1
            st["open"] += 1
            st["max_open"] = max(st["max_open"], st["open"])

    def finish(self):
        super().finish()
        st = self.server.stats
        with st["lock"]:
            st["open"] -= 1

    def send_body(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        q = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        if path == "/ok":
            self.send_body(200, b'{"ok":true}', [("Content-Type", "application/json")])
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"alpha-", b"beta-" * 1000, b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big":
            self.send_body(200, b"b" * int(q.get("n", "1000")))
        elif path == "/slow":
            time.sleep(int(q.get("ms", "100")) / 1000)
            self.send_body(200, b"slow")
        elif path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close body")
            self.close_connection = True
        elif path == "/redirect":
            self.send_body(302, b"", [("Location", "/ok")])
        elif path == "/drop":
            # Answers as if keeping the connection, then closes it at once:
            # the next call on it finds it closed before any answer.
            self.send_body(200, b"dropped after")
            self.close_connection = True
        elif path == "/garbage":
            self.wfile.write(b"SSH-2.0-not-http\r\n\r\n")
            self.close_connection = True
        else:
            self.send_body(404, b"no")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        out = json.dumps({"got": body.decode(), "x_test": self.headers.get("X-Test"),
                          "host": self.headers.get("Host")}).encode()
        self.send_body(201, out, [("Content-Type", "application/json")])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(host: str, ctx: ssl.SSLContext | None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    Server.address_family = family
    srv = Server((host, 0), Handler)
    srv.stats = {"lock": threading.Lock(), "conns": 0, "open": 0, "max_open": 0}
    if ctx:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("client-ca"))


@pytest.fixture
def https(ca):
    cert, key = ca.issue("receiver", "ec")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    srv = serve("127.0.0.1", ctx)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def plain():
    srv = serve("127.0.0.1", None)
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv, path, scheme="https", host="localhost"):
    return f"{scheme}://{host}:{srv.server_address[1]}{path}"


def test_https_keep_alive_reuses_one_connection(https, ca):
    calls, out, _ = fetch(f"--ca={ca.cert}", "--n=20", "--print-body", url(https, "/ok"))
    assert len(calls) == 20
    assert all(c["status"] == "200" and c["err"] == "0" and c["body"] == '{"ok":true}'
               for c in calls), out
    assert https.stats["conns"] == 1


def test_per_origin_limit_bounds_connections(https, ca):
    calls, out, _ = fetch(f"--ca={ca.cert}", "--n=12", "--parallel=12", "--per-origin=3",
                          url(https, "/slow?ms=150"))
    assert [c["status"] for c in calls] == ["200"] * 12, out
    assert https.stats["max_open"] <= 3
    assert https.stats["conns"] == 3


def test_chunked_and_until_close_bodies(https, ca):
    calls, out, _ = fetch(f"--ca={ca.cert}", "--print-body", url(https, "/chunked"),
                          url(https, "/close"))
    by = {c["url"].rsplit("/", 1)[1]: c for c in calls}
    assert by["chunked"]["body"] == "alpha-" + "beta-" * 1000 + "gamma"
    assert by["close"]["body"] == "until-close body" and by["close"]["err"] == "0"


def test_response_size_limit(https, ca):
    calls, _, _ = fetch(f"--ca={ca.cert}", url(https, "/big?n=2000000"))
    assert calls[0]["err"] == "EMSGSIZE"
    calls, _, _ = fetch(f"--ca={ca.cert}", "--max-response=3000000", url(https, "/big?n=2000000"))
    assert calls[0]["err"] == "0" and calls[0]["bytes"] == "2000000"


def test_total_timeout(https, ca):
    t0 = time.monotonic()
    calls, _, _ = fetch(f"--ca={ca.cert}", "--timeout=400", url(https, "/slow?ms=3000"))
    assert calls[0]["err"] == "ETIMEDOUT"
    assert time.monotonic() - t0 < 2.5


def test_connect_and_dns_failures():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    calls, _, _ = fetch(f"http://127.0.0.1:{port}/", "http://no-such-host.invalid/",
                        "ftp://example.com/")
    errs = {c["url"]: c["err"] for c in calls}
    assert errs[f"http://127.0.0.1:{port}/"] == "ECONNREFUSED"
    assert errs["http://no-such-host.invalid/"] == "EHOSTUNREACH"
    assert errs["ftp://example.com/"] == "EINVAL"


def test_untrusted_ca_and_wrong_name_fail_with_reason(https, ca, tmp_path):
    other = make_ca(tmp_path / "other", "other")
    calls, _, err = fetch(f"--ca={other.cert}", url(https, "/ok"))
    assert calls[0]["err"] == "EPROTO"
    assert re.search(r"tls: handshake with server failed peer=localhost:\d+ "
                     r"reason=BR_ERR_X509_NOT_TRUSTED", err), err
    calls, _, err = fetch(f"--ca={ca.cert}", url(https, "/ok", host="127.0.0.1"))
    assert calls[0]["err"] == "EPROTO"
    # BearSSL matches DNS names only: the certificate's IP entry does not count.
    assert "reason=BR_ERR_X509_BAD_SERVER_NAME" in err, err
    # and the server stays usable for a client that verifies it
    calls, _, _ = fetch(f"--ca={ca.cert}", url(https, "/ok"))
    assert calls[0]["status"] == "200"


def test_redirects_are_not_followed_and_garbage_is_refused(https, ca):
    calls, _, _ = fetch(f"--ca={ca.cert}", url(https, "/redirect"), url(https, "/garbage"))
    by = {c["url"].rsplit("/", 1)[1]: c for c in calls}
    assert by["redirect"]["status"] == "302" and by["redirect"]["err"] == "0"
    assert by["garbage"]["err"] == "EPROTO"


def test_post_body_headers_and_host(plain):
    port = plain.server_address[1]
    calls, out, _ = fetch("--method=POST", '--body={"id":1}', "--header=X-Test: yes",
                          "--print-body", f"http://localhost:{port}/echo")
    assert calls[0]["status"] == "201", out
    got = json.loads(calls[0]["body"])
    assert got == {"got": '{"id":1}', "x_test": "yes", "host": f"localhost:{port}"}


def test_ipv6_literal():
    try:
        srv = serve("::1", None)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        calls, out, _ = fetch("--n=3", "--print-body", f"http://[::1]:{srv.server_address[1]}/ok")
        assert [c["status"] for c in calls] == ["200"] * 3, out
        assert srv.stats["conns"] == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_reused_connection_closed_by_server_is_retried(plain):
    calls, out, _ = fetch("--n=5", f"http://127.0.0.1:{plain.server_address[1]}/drop")
    assert [c["err"] for c in calls] == ["0"] * 5, out
    assert plain.stats["conns"] == 5


class FakeDns:
    """A UDP DNS server for one name: A 127.0.0.1 with a chosen TTL, no
    AAAA; counts the A queries it answered."""

    def __init__(self, name: str, ttl: int):
        self.name = name.encode()
        self.ttl = ttl
        self.a_queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]])
                i += 1 + q[i]
            qtype = int.from_bytes(q[i + 1:i + 3], "big")
            question = q[12:i + 5]
            answers = b""
            rcode = 0
            if b".".join(labels).lower() != self.name:
                rcode = 3  # NXDOMAIN
            elif qtype == 1:
                self.a_queries += 1
                answers = (b"\xc0\x0c\x00\x01\x00\x01" + self.ttl.to_bytes(4, "big") +
                           b"\x00\x04" + bytes([127, 0, 0, 1]))
            head = q[:2] + bytes([0x81, 0x80 | rcode]) + b"\x00\x01" + \
                (b"\x00\x01" if answers else b"\x00\x00") + b"\x00\x00\x00\x00"
            self.sock.sendto(head + question + answers, peer)

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


def test_dns_answers_are_cached_for_their_ttl(plain):
    port = plain.server_address[1]
    dns = FakeDns("svc.trireme.test", ttl=60)
    try:
        # /drop closes every connection: each call needs a new one, and a name
        calls, out, _ = fetch(f"--dns-server=127.0.0.1:{dns.port}", "--n=4",
                              f"http://svc.trireme.test:{port}/drop")
        assert [c["err"] for c in calls] == ["0"] * 4, out
        assert plain.stats["conns"] == 4
        assert dns.a_queries == 1, "a cached answer was asked for again within its TTL"
    finally:
        dns.close()
    dns = FakeDns("svc.trireme.test", ttl=1)
    try:
        calls, out, _ = fetch(f"--dns-server=127.0.0.1:{dns.port}", "--n=2", "--gap=2200",
                              f"http://svc.trireme.test:{port}/drop")
        assert [c["err"] for c in calls] == ["0"] * 2, out
        assert dns.a_queries == 2, "an answer was used past its TTL"
        calls, _, _ = fetch(f"--dns-server=127.0.0.1:{dns.port}", f"http://nope.trireme.test:{port}/")
        assert calls[0]["err"] == "EHOSTUNREACH"
    finally:
        dns.close()
