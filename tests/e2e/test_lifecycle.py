"""
test_lifecycle.py - start-up and the graceful drain on SIGTERM/SIGINT:
the listener closes, idle connections are closed, requests in progress
finish (answered with Connection: close) within --grace, then exit 0; a
second signal exits at once with 1; an expired grace exits 0 with a
warning.
"""
import signal
import socket
import time

import pytest

from conftest import run_cli, sanitizer_problems
from e2e_http import HOST, Conn, get, request


def assert_refuses_new_connections(port, within=8.0):
    """After the drain began, connecting must (soon) be refused. In the
    moment between the signal and the listener's close a connect may still
    land in the backlog; such a connection must not be served."""
    deadline = time.monotonic() + within
    while True:
        try:
            s = socket.create_connection((HOST, port), timeout=2)
        except ConnectionRefusedError:
            return
        with Conn(port, connect=False) as c:
            c.sock = s
            try:
                c.send(get(headers=[("X-Request-Id", "after-sigterm")]))
                data = c.wait_closed(timeout=3)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            assert data == b"", f"a connection made after SIGTERM was answered: {data[:200]!r}"
        assert time.monotonic() < deadline, "the port still accepts connections after SIGTERM"
        time.sleep(0.05)


def send_partial(c, partial: bytes):
    """Leave a request in progress on c. A partial request has no visible
    effect, so it rides behind a whole one in the same write: once the
    whole one is answered, the server has read (and started) the partial
    one too. A short sleep covers a write the kernel split anyway."""
    c.send(get(headers=[("X-Request-Id", "carrier")]) + partial)
    assert c.read_response().header("x-request-id") == "carrier"
    time.sleep(0.1)


@pytest.mark.parametrize("threads", [1, 2])
def test_sigterm_drains_in_flight_requests(trireme, threads):
    srv = trireme(threads=threads)
    idle = Conn(srv.port)
    head_half = Conn(srv.port)
    body_half = Conn(srv.port)
    try:
        assert idle.roundtrip(get()).status == 200  # now an idle keep-alive connection
        send_partial(head_half,
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: inflight-head\r\n")
        send_partial(body_half, request("POST", "/healthz", [("X-Request-Id", "inflight-body"),
                                                             ("Content-Length", "6")],
                                        content_length=False) + b"abc")

        srv.signal(signal.SIGTERM)
        srv.wait_log(r"shutting down")
        # The idle connection is closed by the drain, without an answer.
        assert idle.wait_closed(timeout=10) == b""
        assert_refuses_new_connections(srv.port)
        assert srv.running, "exited while requests were still in flight"

        # The in-flight requests complete and are answered, then closed.
        head_half.send(b"\r\n")
        resp = head_half.read_response()
        assert resp.status == 200 and resp.header("x-request-id") == "inflight-head"
        assert resp.closes
        assert head_half.wait_closed() == b""

        body_half.send(b"def" + get(headers=[("X-Request-Id", "pipelined-after")]))
        resp = body_half.read_response()
        assert resp.status == 405 and resp.header("x-request-id") == "inflight-body"
        assert resp.closes
        assert body_half.wait_closed() == b""  # the pipelined one is not served
    finally:
        for c in (idle, head_half, body_half):
            c.close()
    assert srv.wait(timeout=15) == 0
    log = srv.log
    assert "trireme stopped" in log
    assert "grace period over" not in log
    assert "request_id=pipelined-after" not in log
    assert "request_id=after-sigterm" not in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_nothing_in_flight_exits_0_promptly(trireme, sig):
    srv = trireme()
    with Conn(srv.port) as c:
        assert c.roundtrip(get()).status == 200
        start = time.monotonic()
        srv.signal(sig)
        assert srv.wait(timeout=10) == 0
        assert time.monotonic() - start < 5  # the default 30 s grace is not waited out
    assert f"signal={sig.name}" in srv.log
    assert "forced=false" in srv.log


def test_second_signal_exits_1_at_once(trireme):
    srv = trireme()
    srv.expected_rc = 1
    with Conn(srv.port) as stuck:
        send_partial(stuck, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        srv.signal(signal.SIGTERM)
        srv.wait_log(r"shutting down")
        assert srv.running  # draining: waits for the stuck request (grace 30s)
        start = time.monotonic()
        srv.signal(signal.SIGINT)
        assert srv.wait(timeout=5) == 1
        assert time.monotonic() - start < 4
    assert "second signal" in srv.log


def test_grace_expiry_exits_0_with_a_warning(trireme):
    srv = trireme("--grace=1s")
    with Conn(srv.port) as stuck:
        send_partial(stuck, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        start = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.wait(timeout=15) == 0
        assert 0.8 <= time.monotonic() - start < 10
        # The process is gone, so is its end of the connection.
        stuck.wait_closed(timeout=5)
    lines = srv.wait_log(r"grace period over")
    assert "open_connections=1" in lines[0]
    assert "forced=true" in srv.log


def test_busy_port_fails_to_start_with_exit_1():
    """A port held by another socket: exit 1 with a message naming it."""
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        res = run_cli("run", f"--host={HOST}", f"--port={port}", "--threads=1", timeout=20)
    assert res.returncode == 1
    assert f"port={port}" in res.stderr
    assert "cannot listen" in res.stderr
    assert not sanitizer_problems(res.stderr), res.stderr
