"""
test_timeouts.py - --header-timeout (slowloris), --body-timeout and
--idle-timeout. Timing assertions are loose on purpose: the suite also runs
against the ASan build on a busy 2-core machine. What is asserted exactly is
*what* the server does (408 with a JSON body, or a silent close).
"""
import time

from e2e_http import Conn, get, request


def test_slowloris_gets_408_and_close(trireme):
    srv = trireme("--header-timeout=1s")
    with Conn(srv.port) as c:
        start = time.monotonic()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # One byte every ~300 ms: each byte is progress, but the head as a
        # whole must arrive within the header timeout.
        answered = False
        for _ in range(40):  # bounded: ~12 s at most
            if not c.is_open_after(0.3):
                answered = True
                break
            try:
                c.send(b"s")
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
        assert answered, "the server kept waiting for a head trickling in"
        resp = c.read_response()
        elapsed = time.monotonic() - start
        assert resp.status == 408
        assert resp.reason == "Request Timeout"
        doc = resp.json()
        assert doc["error"] == "request_timeout" and doc["status"] == 408
        assert resp.closes
        c.wait_closed()
        assert 0.8 <= elapsed < 8, elapsed
    srv.wait_log(r"status=408")


def test_header_timeout_counts_from_the_first_byte_not_the_accept(trireme):
    srv = trireme("--header-timeout=1s", "--idle-timeout=10s")
    with Conn(srv.port) as c:
        # Longer than the header timeout with no bytes: still open (idle).
        assert c.is_open_after(1.6)
        assert c.roundtrip(get()).status == 200


def test_head_sent_within_header_timeout_is_served(trireme):
    srv = trireme("--header-timeout=2s")
    with Conn(srv.port) as c:
        c.send_slowly(get(), step=8, delay=0.02)
        assert c.read_response().status == 200


def test_body_timeout_gets_408(trireme):
    srv = trireme("--body-timeout=1s")
    with Conn(srv.port) as c:
        c.send(request("POST", "/healthz", [("Content-Length", "10")], content_length=False)
               + b"abc")
        resp = c.read_response(timeout=8)
        assert resp.status == 408
        assert resp.json()["error"] == "request_timeout"
        assert "body" in resp.json()["message"]
        c.wait_closed()


def test_chunked_body_timeout_gets_408(trireme):
    srv = trireme("--body-timeout=1s")
    with Conn(srv.port) as c:
        c.send(request("POST", "/healthz", [("Transfer-Encoding", "chunked")]) + b"5\r\nab")
        resp = c.read_response(timeout=8)
        assert resp.status == 408
        c.wait_closed()


def test_idle_keep_alive_connection_is_closed_silently(trireme):
    srv = trireme("--idle-timeout=500ms")
    with Conn(srv.port) as c:
        assert c.roundtrip(get()).status == 200
        start = time.monotonic()
        assert c.wait_closed(timeout=8) == b""  # no 408, just the close
        assert 0.3 <= time.monotonic() - start < 6


def test_idle_timeout_applies_to_a_fresh_connection(trireme):
    srv = trireme("--idle-timeout=500ms")
    with Conn(srv.port) as c:
        assert c.wait_closed(timeout=8) == b""


def test_activity_restarts_the_idle_timer(trireme):
    srv = trireme("--idle-timeout=2s")
    with Conn(srv.port) as c:
        last = time.monotonic()
        for i in range(6):  # 6 x 0.5 s = 3 s > idle timeout, never idle 2 s
            time.sleep(0.5)
            try:
                assert c.roundtrip(get()).status == 200
            except EOFError:
                raise AssertionError(f"closed in round {i}, "
                                     f"{time.monotonic() - last:.2f}s after the last answer")
            last = time.monotonic()
