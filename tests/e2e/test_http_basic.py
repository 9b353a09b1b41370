"""
test_http_basic.py - /healthz and the HTTP/1.1 connection behaviour every
client relies on: response headers, keep-alive, pipelining, HTTP/1.0,
Connection: close, HEAD, Expect: 100-continue, chunked request bodies.
"""
import re
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import pytest

from e2e_http import Conn, chunked, fetch, get, request

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def assert_common_headers(resp, body_len=None):
    date = resp.header("date")
    assert date and date.endswith(" GMT"), resp.raw_head
    parsedate_to_datetime(date)  # IMF-fixdate parses
    assert resp.header("server") == "trireme"
    cl = resp.header("content-length")
    assert cl is not None and cl.isdigit()
    if body_len is not None:
        assert int(cl) == body_len
    assert resp.header("x-request-id")


@pytest.mark.parametrize("threads", [1, 2])
def test_healthz_get(trireme, threads):
    srv = trireme(threads=threads)
    resp = fetch(srv.port)
    assert resp.status == 200 and resp.reason == "OK"
    assert resp.version == "HTTP/1.1"
    assert_common_headers(resp, len(resp.body))
    assert resp.header("content-type") == "application/json"
    assert HEX16.match(resp.header("x-request-id"))
    assert resp.header("connection") is None  # 1.1 keep-alive is the default
    doc = resp.json()
    assert doc["status"] == "ok"
    assert doc["version"] == "0.1.0"
    assert doc["roles"] == ["web"]
    assert isinstance(doc["uptime_seconds"], int) and 0 <= doc["uptime_seconds"] < 60
    # Several connections in a row, so with 2 threads both loops likely serve one.
    for _ in range(10):
        assert fetch(srv.port).status == 200


def test_uptime_advances(server):
    first = fetch(server.port).json()["uptime_seconds"]
    time.sleep(1.2)
    assert fetch(server.port).json()["uptime_seconds"] >= first + 1


def test_query_string_is_not_part_of_the_path(server):
    assert fetch(server.port, get("/healthz?verbose=1&x=%20")).status == 200


def test_absolute_form_target(server):
    """RFC 9112 3.2.2: a server MUST accept the absolute-form; it is routed
    (and logged) by its path. (Found by this test: it was a 404.)"""
    resp = fetch(server.port, get("http://localhost/healthz",
                                  headers=[("X-Request-Id", "abs-1")]))
    assert resp.status == 200
    assert fetch(server.port, get("https://localhost:8443/healthz?x=1")).status == 200
    resp = fetch(server.port, get("http://localhost"))  # no path: "/"
    assert resp.status == 404 and "GET /" in resp.json()["message"]
    (line,) = server.wait_log(r"request_id=abs-1$")
    assert "method=GET path=/healthz status=200" in line


def test_head_has_headers_but_no_body(server):
    with Conn(server.port) as c:
        g = c.roundtrip(get())
        h = c.roundtrip(request("HEAD", "/healthz"), head_request=True)
        assert h.status == 200
        assert_common_headers(h)
        assert h.header("content-length") == g.header("content-length")
        assert h.header("content-type") == "application/json"
        # Had the server sent a body after the HEAD answer, it would be read
        # here as the start of the next response and fail to parse.
        again = c.roundtrip(get())
        assert again.status == 200 and again.json()["status"] == "ok"
        assert c.buf == b""


def test_post_healthz_is_405_with_allow(server):
    resp = fetch(server.port, request("POST", "/healthz", body=b"{}"))
    assert resp.status == 405
    assert resp.header("allow") == "GET, HEAD"
    assert resp.header("content-type") == "application/json"
    assert_common_headers(resp, len(resp.body))
    doc = resp.json()
    assert doc["error"] == "method_not_allowed"
    assert doc["status"] == 405
    assert doc["request_id"] == resp.header("x-request-id")


def test_unknown_path_is_404_json(server):
    resp = fetch(server.port, get("/no/such/thing"))
    assert resp.status == 404
    assert_common_headers(resp, len(resp.body))
    doc = resp.json()
    assert doc["error"] == "not_found"
    assert doc["status"] == 404
    assert isinstance(doc["message"], str) and doc["message"]
    assert doc["request_id"] == resp.header("x-request-id")
    assert HEX16.match(doc["request_id"])


def test_head_of_unknown_path_has_no_body(server):
    with Conn(server.port) as c:
        resp = c.roundtrip(request("HEAD", "/nope"), head_request=True)
        assert resp.status == 404 and int(resp.header("content-length")) > 0
        assert c.roundtrip(get()).status == 200


def test_keep_alive_50_requests_one_connection(server):
    with Conn(server.port) as c:
        for i in range(50):
            resp = c.roundtrip(get(headers=[("X-Request-Id", f"ka-{i}")]))
            assert resp.status == 200
            assert resp.header("x-request-id") == f"ka-{i}"
            assert not resp.closes
        assert c.buf == b""
    # Everything above went over one connection: one accept, 50 requests.
    server.wait_log(r"request_id=ka-49")


def test_100_pipelined_requests_in_one_write(server):
    # Padded so the burst spans many receive buffers (4 KiB each by default).
    reqs = b"".join(get(headers=[("X-Request-Id", f"pipe-{i:03d}"), ("X-Pad", "p" * 100)])
                    for i in range(100))
    assert len(reqs) > 4 * 4096
    with Conn(server.port) as c:
        c.send(reqs)
        for i in range(100):
            resp = c.read_response()
            assert resp.status == 200
            assert resp.header("x-request-id") == f"pipe-{i:03d}"
        assert c.is_open_after(0.2)  # still a keep-alive connection, nothing extra sent
        assert c.buf == b""
        assert c.roundtrip(get()).status == 200


def test_pipeline_with_mixed_answers_keeps_order(server):
    seq = [("GET", "/healthz", 200), ("POST", "/healthz", 405), ("GET", "/x", 404),
           ("HEAD", "/healthz", 200), ("GET", "/healthz", 200)]
    data = b"".join(request(m, p, [("X-Request-Id", f"mix-{i}")],
                            body=b"abc" if m == "POST" else b"")
                    for i, (m, p, _) in enumerate(seq))
    with Conn(server.port) as c:
        c.send(data)
        for i, (m, _, status) in enumerate(seq):
            resp = c.read_response(head_request=(m == "HEAD"))
            assert (resp.status, resp.header("x-request-id")) == (status, f"mix-{i}")


def test_pipeline_ending_in_connection_close(server):
    data = get(headers=[("X-Request-Id", "a")]) + \
        get(headers=[("X-Request-Id", "b"), ("Connection", "close")]) + \
        get(headers=[("X-Request-Id", "c")])
    with Conn(server.port) as c:
        c.send(data)
        a, b = c.read_response(), c.read_response()
        assert a.header("x-request-id") == "a" and not a.closes
        assert b.header("x-request-id") == "b" and b.closes
        # The request after "close" is never answered.
        assert c.wait_closed() == b""


def test_request_sent_one_byte_at_a_time(server):
    data = get(headers=[("X-Request-Id", "bytewise"), ("User-Agent", "e2e-slow")])
    with Conn(server.port) as c:
        c.send_slowly(data, step=1, delay=0.003)
        resp = c.read_response()
        assert resp.status == 200 and resp.header("x-request-id") == "bytewise"
        # A body split byte by byte too, chunked, with a CRLF split in half.
        body = chunked(b"hello", b" world")
        c.send_slowly(request("POST", "/healthz", [("Transfer-Encoding", "chunked")]) + body,
                      step=1, delay=0.002)
        assert c.read_response().status == 405
        assert c.roundtrip(get()).status == 200


def test_http10_without_keep_alive_closes(server):
    with Conn(server.port) as c:
        c.send(get(version="HTTP/1.0", host=None))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.version == "HTTP/1.1"
        assert resp.closes
        assert c.wait_closed() == b""


def test_http10_keep_alive(server):
    with Conn(server.port) as c:
        for i in range(3):
            resp = c.roundtrip(get(version="HTTP/1.0", host=None,
                                   headers=[("Connection", "keep-alive")]))
            assert resp.status == 200
            assert (resp.header("connection") or "").lower() == "keep-alive"
        assert c.is_open_after(0.2)


def test_connection_close(server):
    with Conn(server.port) as c:
        resp = c.roundtrip(get(headers=[("Connection", "close")]))
        assert resp.status == 200
        assert resp.closes
        assert c.wait_closed() == b""


def test_connection_close_is_a_token_list(server):
    with Conn(server.port) as c:
        resp = c.roundtrip(get(headers=[("Connection", "foo, Close")]))
        assert resp.status == 200 and resp.closes
        assert c.wait_closed() == b""


def test_expect_100_continue(server):
    body = b'{"a":1}'
    head = request("POST", "/healthz", [("Expect", "100-continue"),
                                        ("Content-Length", str(len(body)))],
                   content_length=False)
    with Conn(server.port) as c:
        c.send(head)
        interim = c.read_response()
        assert interim.status == 100
        assert interim.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(body)
        final = c.read_response()
        assert final.status == 405
        assert final.header("allow") == "GET, HEAD"
        # The connection is still usable afterwards.
        assert c.roundtrip(get()).status == 200


def test_expect_100_continue_not_sent_when_body_is_already_there(server):
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Expect", "100-continue")], body=b"xyz"))
        assert c.read_response().status == 405  # straight to the final answer
        assert c.roundtrip(get()).status == 200


def test_expect_100_continue_chunked(server):
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Expect", "100-continue"),
                                            ("Transfer-Encoding", "chunked")]))
        assert c.read_response().status == 100
        c.send(chunked(b"abc", b"defg"))
        assert c.read_response().status == 405


def test_expect_100_continue_ignored_on_http10(server):
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Expect", "100-continue"),
                                            ("Content-Length", "3")],
                       version="HTTP/1.0", host=None, content_length=False))
        assert c.is_open_after(0.3)  # no interim answer for a 1.0 client
        c.send(b"abc")
        resp = c.read_response()
        assert resp.status == 405 and resp.closes


def test_chunked_body_then_next_request(server):
    body = chunked(b"hello", b"x" * 5000, b"!")
    with Conn(server.port) as c:
        resp = c.roundtrip(request("POST", "/healthz", [("Transfer-Encoding", "chunked"),
                                                        ("X-Request-Id", "chunky")]) + body)
        assert resp.status == 405 and resp.header("x-request-id") == "chunky"
        assert not resp.closes
        resp = c.roundtrip(get(headers=[("X-Request-Id", "after-chunky")]))
        assert resp.status == 200 and resp.header("x-request-id") == "after-chunky"


def test_chunked_with_extensions_and_trailers(server):
    body = (b"5;name=value;q=\"quoted \\\" str\"\r\nhello\r\n"
            b"A \t; ext\r\n0123456789\r\n"
            b"000;last\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n")
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Transfer-Encoding", "chunked")]) + body + get())
        assert c.read_response().status == 405
        assert c.read_response().status == 200


def test_chunked_pipeline(server):
    one = request("POST", "/healthz", [("Transfer-Encoding", "chunked")]) + chunked(b"a" * 100)
    with Conn(server.port) as c:
        c.send(one * 20 + get(headers=[("X-Request-Id", "tail")]))
        for _ in range(20):
            assert c.read_response().status == 405
        assert c.read_response().header("x-request-id") == "tail"


def test_content_length_body_split_across_writes(server):
    body = b"z" * 20000
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Content-Length", str(len(body)))],
                       content_length=False))
        for i in range(0, len(body), 7000):
            time.sleep(0.05)
            c.send(body[i:i + 7000])
        assert c.read_response().status == 405
        assert c.roundtrip(get()).status == 200


def test_leading_empty_line_is_tolerated(server):
    assert fetch(server.port, b"\r\n" + get()).status == 200


@pytest.mark.parametrize("threads", [1, 2])
def test_client_half_close_still_answered(trireme, threads):
    """A client may send its request(s) and shut down its sending side; the
    requests that arrived are still answered (RFC 9112 9.6), all of them.
    (Found by this test: the server used to close at the EOF and drop the
    answers still queued.)"""
    server = trireme(threads=threads)
    n = 400
    reqs = b"".join(get(headers=[("X-Request-Id", f"hc-{i}"), ("X-Pad", "q" * 64)])
                    for i in range(n))
    with Conn(server.port) as c:
        c.send(reqs)
        c.sock.shutdown(socket.SHUT_WR)
        for i in range(n):
            resp = c.read_response()
            assert resp.status == 200 and resp.header("x-request-id") == f"hc-{i}"
        c.wait_closed()


def test_body_arriving_later_keeps_its_own_headers(trireme):
    """Two connections on one loop: the first sends a head and half its
    body, the second a whole request; then the first finishes. Its answer
    must carry its own X-Request-Id. (Found by this suite: the head of a
    request waiting for its body lived in a per-loop scratch array that the
    other connection's request overwrote.)"""
    srv = trireme(threads=1)
    for kind in ("length", "chunked"):
        with Conn(srv.port) as slow, Conn(srv.port) as other:
            # Behind a whole request in the same write: once that is
            # answered, the POST's head has been parsed too.
            carrier = get(headers=[("X-Request-Id", "carrier")])
            if kind == "length":
                slow.send(carrier + request("POST", "/healthz", [("X-Request-Id", "slow-one"),
                                                                 ("Content-Length", "4")],
                                            content_length=False) + b"ab")
            else:
                slow.send(carrier + request("POST", "/healthz",
                                            [("X-Request-Id", "slow-one"),
                                             ("Transfer-Encoding", "chunked")]) + b"4\r\nab")
            assert slow.read_response().header("x-request-id") == "carrier"
            time.sleep(0.05)
            for i in range(3):
                resp = other.roundtrip(get(headers=[("X-Request-Id", f"other-{i}"),
                                                    ("X-Filler", "f" * 300)] * 5))
                assert resp.header("x-request-id") == f"other-{i}"
            other.close()  # its buffers go back to the pool
            time.sleep(0.2)
            slow.send(b"cd" if kind == "length" else b"cd\r\n0\r\n\r\n")
            resp = slow.read_response()
            assert resp.status == 405
            assert resp.header("x-request-id") == "slow-one"
            assert resp.header("allow") == "GET, HEAD"
    srv.wait_log(r"method=POST path=/healthz status=405 .*request_id=slow-one", count=2)


def test_pipeline_with_a_bad_request_in_the_middle(server):
    good = [get(headers=[("X-Request-Id", f"before-{i}")]) for i in range(3)]
    bad = b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"
    with Conn(server.port) as c:
        c.send(b"".join(good) + bad + get(headers=[("X-Request-Id", "after-bad")]))
        for i in range(3):
            resp = c.read_response()
            assert resp.status == 200 and resp.header("x-request-id") == f"before-{i}"
            assert not resp.closes
        resp = c.read_response()
        assert resp.status == 400 and resp.closes
        assert c.wait_closed() == b""
    assert "request_id=after-bad" not in server.log


def test_long_pipeline_streamed_while_reading(server):
    """20,000 pipelined requests written by one thread while another reads:
    output far larger than the socket buffers, every answer in order."""
    n = 20000
    with Conn(server.port, timeout=30) as c:
        errors = []

        def writer():
            try:
                for k in range(0, n, 500):
                    c.send(b"".join(get(headers=[("X-Request-Id", f"s{i}")])
                                    for i in range(k, k + 500)))
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        for i in range(n):
            resp = c.read_response()
            assert resp.header("x-request-id") == f"s{i}"
            assert time.monotonic() < deadline
        t.join(timeout=10)
        assert not errors
