"""
test_https.py - the HTTPS listener (--tls-cert/--tls-key, BearSSL): curl and
Python's ssl against a CA made by the test, EC and RSA keys, ALPN, TLS 1.2,
keep-alive, pipelining, bodies larger than a TLS record both ways, clients
that send garbage or vanish mid-handshake (the server logs why, leaks no
descriptor and keeps serving), and start-up errors.
"""
import os
import socket
import ssl
import subprocess
import time

import pytest

from e2e_http import HOST, Conn, get, request
from tlstools import SERVER_NAME, TlsConn, client_context, make_ca

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY  # noqa: E402

pytest_plugins = ["pgtools"]


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def ec_pair(ca):
    return ca.issue("server-ec", "ec")


@pytest.fixture(scope="module")
def rsa_pair(ca):
    return ca.issue("server-rsa", "rsa")


def https_server(trireme, pair, *flags, **kw):
    cert, key = pair
    return trireme(f"--tls-cert={cert}", f"--tls-key={key}", *flags, **kw)


def curl(ca, port, path="/healthz", *extra):
    r = subprocess.run(["curl", "-sS", "-v", "--max-time", "20", "--cacert", str(ca.cert),
                        "--resolve", f"{SERVER_NAME}:{port}:{HOST}", *extra,
                        f"https://{SERVER_NAME}:{port}{path}"],
                       capture_output=True, text=True, timeout=30)
    return r


def open_fds(srv) -> int:
    return len(os.listdir(f"/proc/{srv.proc.pid}/fd"))


def wait_fds(srv, want: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    n = open_fds(srv)
    while n > want and time.monotonic() < deadline:
        time.sleep(0.05)
        n = open_fds(srv)
    return n


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_curl_gets_healthz_over_tls12_with_alpn(trireme, ca, ec_pair, rsa_pair, kind):
    srv = https_server(trireme, ec_pair if kind == "ec" else rsa_pair)
    assert "https=true" in srv.log
    r = curl(ca, srv.port)
    assert r.returncode == 0, r.stderr
    assert '"status":"ok"' in r.stdout
    assert "TLSv1.2" in r.stderr
    assert "ALPN: server accepted http/1.1" in r.stderr
    # Plain HTTP is not served on the HTTPS port.
    with Conn(srv.port) as c:
        c.send(get())
        data = c.wait_closed()
    assert not data.startswith(b"HTTP/1.1 200")


def test_python_ssl_keep_alive_many_requests_one_connection(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair, threads=1)
    with TlsConn(srv.port, ca) as c:
        assert c.sock.version() == "TLSv1.2"
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        for _ in range(50):
            resp = c.roundtrip(get())
            assert resp.status == 200
            assert resp.json()["status"] == "ok"
            assert not resp.closes
    srv.wait_log(r"request method=GET path=/healthz status=200", count=50)


def test_pipelined_requests_in_one_record(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair)
    with TlsConn(srv.port, ca) as c:
        c.send(get() * 20 + request("GET", "/nope"))
        for _ in range(20):
            assert c.read_response().status == 200
        assert c.read_response().status == 404
        # and once more, after the pipeline drained
        assert c.roundtrip(get()).status == 200


def test_wrong_server_name_is_refused_by_the_client(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair)
    raw = socket.create_connection((HOST, srv.port), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        client_context(ca).wrap_socket(raw, server_hostname="not-localhost.example")
    raw.close()
    assert curl(ca, srv.port).returncode == 0


def test_request_body_over_the_limit_is_413_over_tls(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair, "--max-body-bytes=64k")
    with TlsConn(srv.port, ca) as c:
        resp = c.roundtrip(request("POST", "/v1/jobs", body=b"x" * 70000))
        assert resp.status == 413
        assert resp.json()["status"] == 413


def test_large_bodies_both_ways_on_one_connection(trireme, ca, ec_pair, db):
    """A ~700 KB payload goes in (many TLS records, several recv completions)
    and comes back in the job (a response far larger than one record)."""
    srv = https_server(trireme, ec_pair, "--roles=web", env=db.env())
    srv.wait_log(r"database connected")
    payload = {"blob": "p" * 700_000, "n": 7}
    import json as _json
    body = _json.dumps({"kind": "noop", "payload": payload}).encode()
    auth = [("Authorization", f"Bearer {API_KEY}"), ("Content-Type", "application/json")]
    with TlsConn(srv.port, ca, timeout=30) as c:
        resp = c.roundtrip(request("POST", "/v1/jobs", auth, body=body))
        assert resp.status in (200, 201, 202), resp.body[:300]
        job_id = resp.json()["id"]
        resp = c.roundtrip(request("GET", f"/v1/jobs/{job_id}", auth))
        assert resp.status == 200
        got = resp.json()
        assert got["payload"] == payload
        assert len(resp.body) > 700_000
        # the connection is still good for more
        assert c.roundtrip(get()).status == 200


def test_garbage_client_is_dropped_with_a_reason_and_server_keeps_serving(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair, threads=1)
    base = wait_fds(srv, open_fds(srv))
    for junk in (b"\x16\x03\x01\x00\x05hello-not-a-handshake" + b"\x00" * 64,
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096)):
        with Conn(srv.port) as c:
            c.send(junk)
            c.wait_closed()
    srv.wait_log(r"tls: client connection failed .*peer=127\.0\.0\.1:\d+ reason=BR_ERR_\w+",
                 count=3)
    assert wait_fds(srv, base) == base
    assert curl(ca, srv.port).returncode == 0


def client_hello(ca) -> bytes:
    """The first flight of a real handshake, captured without a socket."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(ca).wrap_bio(inc, out, server_hostname=SERVER_NAME)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_clients_vanishing_mid_handshake_leak_nothing(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair, threads=1)
    base = wait_fds(srv, open_fds(srv))
    hello = client_hello(ca)
    for i in range(40):
        s = socket.create_connection((HOST, srv.port), timeout=10)
        if i % 4 == 1:
            s.sendall(hello[: len(hello) // 2])  # half a ClientHello
        elif i % 4 == 2:
            s.sendall(hello)  # a whole one, then gone before the answer is read
        elif i % 4 == 3:
            s.sendall(hello)
            s.recv(100)  # the server's first flight started
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert wait_fds(srv, base) == base, "descriptors left open after aborted handshakes"
    assert curl(ca, srv.port).returncode == 0
    with TlsConn(srv.port, ca) as c:
        assert c.roundtrip(get()).status == 200


def test_many_concurrent_handshakes(trireme, ca, ec_pair):
    srv = https_server(trireme, ec_pair)
    conns = [TlsConn(srv.port, ca) for _ in range(30)]
    try:
        for c in conns:
            c.send(get())
        for c in conns:
            assert c.read_response().status == 200
    finally:
        for c in conns:
            c.close()


def test_start_refuses_half_or_bad_tls_configuration(ca, ec_pair, tmp_path):
    from conftest import run_cli
    cert, key = ec_pair
    r = run_cli("run", f"--tls-cert={cert}", "--port=1")
    assert r.returncode == 2 and "--tls-cert and --tls-key go together" in r.stderr
    r = run_cli("run", "--roles=web", "--host=127.0.0.1", "--port=1", f"--tls-cert={cert}",
                f"--tls-key={tmp_path}/missing.key")
    assert r.returncode == 1
    assert "tls: cannot load" in r.stderr and "missing.key" in r.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n")
    r = run_cli("run", "--roles=web", "--host=127.0.0.1", "--port=1", f"--tls-cert={bad}",
                f"--tls-key={key}")
    assert r.returncode == 1 and "--tls-cert" in r.stderr
    # key of another type than the certificate's
    rsa_cert = ca.issue("mismatch", "rsa")[0]
    r = run_cli("run", "--roles=web", "--host=127.0.0.1", "--port=1", f"--tls-cert={rsa_cert}",
                f"--tls-key={key}")
    assert r.returncode == 1 and "does not match" in r.stderr


def test_help_documents_tls_flags_and_tls12():
    from conftest import run_cli
    r = run_cli("run", "--help")
    out = r.stdout + r.stderr
    for flag in ("--tls-cert", "--tls-key", "--tls-ca-file", "rediss://"):
        assert flag in out
    assert "TLS 1.2" in out and "/etc/ssl/certs/ca-certificates.crt" in out


def _handshake(port, ctx, session=None):
    raw = socket.create_connection((HOST, port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=SERVER_NAME, session=session)
    s.sendall(get())
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    return s


@pytest.mark.parametrize("cache", ["64k", "0"])
def test_returning_client_resumes_its_session(trireme, ca, ec_pair, cache):
    srv = https_server(trireme, ec_pair, f"--tls-session-cache={cache}", threads=1)
    ctx = client_context(ca)
    first = _handshake(srv.port, ctx)
    session = first.session
    first.close()
    again = _handshake(srv.port, ctx, session=session)
    assert again.session_reused is (cache != "0")
    again.close()


def _served_serial(port, ca) -> int:
    with TlsConn(port, ca) as c:
        return int(c.sock.getpeercert()["serialNumber"], 16)


def _serial(cert_path) -> int:
    out = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-noout", "-serial"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().split("=")[1], 16)


def test_sighup_reloads_the_certificate_without_dropping_connections(trireme, ca, tmp_path):
    """A renewed certificate is served to new clients after SIGHUP, while a
    connection made before it keeps working; a broken file on reload is
    logged and the previous certificate stays in service."""
    import shutil
    import signal

    first_cert, first_key = ca.issue("reload-first", "ec")
    second_cert, second_key = ca.issue("reload-second", "rsa")
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first_cert, cert)
    shutil.copy(first_key, key)
    srv = trireme(f"--tls-cert={cert}", f"--tls-key={key}", threads=2)
    srv.wait_log(r"TLS certificate loaded .*not_after=")
    assert _served_serial(srv.port, ca) == _serial(first_cert)

    with TlsConn(srv.port, ca) as old:
        assert old.roundtrip(get()).status == 200
        shutil.copy(second_cert, cert)
        shutil.copy(second_key, key)
        srv.signal(signal.SIGHUP)
        srv.wait_log(r"TLS certificate reloaded")
        # Both loops now hand out the new certificate.
        for _ in range(6):
            assert _served_serial(srv.port, ca) == _serial(second_cert)
        # The connection from before the reload is untouched.
        for _ in range(3):
            assert old.roundtrip(get()).status == 200

    # A half-written renewal (a key that does not match) changes nothing.
    shutil.copy(first_key, key)
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"TLS certificate reload failed, still serving the previous one .*does not match")
    assert _served_serial(srv.port, ca) == _serial(second_cert)
    assert srv.running


def test_a_certificate_near_its_end_is_a_warning_at_start(trireme, ca):
    """The CA's test certificates live two days: under the warning window."""
    cert, key = ca.issue("short-lived", "ec")
    srv = trireme(f"--tls-cert={cert}", f"--tls-key={key}")
    srv.wait_log(r"WARN  TLS certificate expires soon .*days_left=[12]\b")
