"""
test_http_limits.py - the named limits: --max-header-bytes and --max-headers
(431), --max-uri-bytes (414), --max-body-bytes (413 by Content-Length at
once, or while a chunked body decodes), --max-connections; each at its
default and at a small configured value, with the request just inside the
limit accepted.
"""
import time

from e2e_http import Conn, chunked, fetch, get, request


def rejected(port, raw, status):
    """Send raw, expect `status` with a JSON body, then the close."""
    with Conn(port) as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer and close before a big request is all
            # sent; what it answered is still readable.
            pass
        resp = c.read_response()
        assert resp.status == status, resp.body[:300]
        assert resp.json()["status"] == status
        assert resp.closes
        c.wait_closed()
        return resp


# -- header block -----------------------------------------------------------

def test_header_block_over_default_16k_is_431(server):
    resp = rejected(server.port, get(headers=[("X-Big", "a" * 17000)]), 431)
    assert resp.json()["error"] == "headers_too_large"


def test_header_block_over_16k_in_many_fields_is_431(server):
    hdrs = [(f"X-F{i}", "b" * 400) for i in range(45)]  # ~18.5 KiB in 46 fields
    rejected(server.port, get(headers=hdrs), 431)


def test_header_block_just_under_16k_is_accepted(server):
    base = len(get(headers=[("X-Big", "")]))
    raw = get(headers=[("X-Big", "c" * (16 * 1024 - base))])
    assert len(raw) == 16 * 1024
    assert fetch(server.port, raw).status == 200
    raw = get(headers=[("X-Big", "c" * (16 * 1024 - base + 1))])
    rejected(server.port, raw, 431)


def test_header_block_limit_configured(trireme):
    srv = trireme("--max-header-bytes=2k", "--max-uri-bytes=1k")
    assert fetch(srv.port, get(headers=[("X-Big", "d" * 1500)])).status == 200
    rejected(srv.port, get(headers=[("X-Big", "d" * 2100)]), 431)


def test_oversize_head_sent_slowly_is_431_without_waiting_for_its_end(trireme):
    srv = trireme("--max-header-bytes=2k", "--max-uri-bytes=1k")
    with Conn(srv.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        for _ in range(40):  # 4 KiB, never a final CRLF
            try:
                c.send(b"e" * 100)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.005)
        assert c.read_response().status == 431
        c.wait_closed()


def test_more_than_100_header_fields_is_431(server):
    hdrs = [(f"X-H{i}", "v") for i in range(100)]  # + Host = 101 fields
    resp = rejected(server.port, get(headers=hdrs), 431)
    assert resp.json()["error"] == "headers_too_large"
    assert fetch(server.port, get(headers=hdrs[:99])).status == 200  # 100 fields


def test_max_headers_configured(trireme):
    srv = trireme("--max-headers=10")
    assert fetch(srv.port, get(headers=[(f"X-H{i}", "v") for i in range(9)])).status == 200
    rejected(srv.port, get(headers=[(f"X-H{i}", "v") for i in range(10)]), 431)


# -- request-target -----------------------------------------------------------

def test_uri_over_8k_is_414(server):
    resp = rejected(server.port, get("/" + "u" * 9000), 414)
    assert resp.json()["error"] == "uri_too_long"


def test_uri_limit_boundary(server):
    assert fetch(server.port, get("/" + "u" * 8191)).status == 404  # 8192 bytes: allowed
    rejected(server.port, get("/" + "u" * 8192), 414)                # 8193 bytes


def test_uri_limit_counts_the_query(server):
    rejected(server.port, get("/healthz?" + "q=1&" * 2100), 414)


def test_uri_limit_configured(trireme):
    srv = trireme("--max-uri-bytes=100")
    assert fetch(srv.port, get("/healthz?" + "x" * 80)).status == 200
    rejected(srv.port, get("/healthz?" + "x" * 120), 414)


# -- body -------------------------------------------------------------------

def test_content_length_over_1m_is_413_at_once(server):
    # Only the head is sent: the answer must not wait for the body.
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Content-Length", str(1024 * 1024 + 1))],
                       content_length=False))
        resp = c.read_response(timeout=5)
        assert resp.status == 413
        assert resp.json()["error"] == "payload_too_large"
        assert resp.closes
        c.wait_closed()


def test_body_of_exactly_1m_is_read(server):
    body = b"b" * (1024 * 1024)
    with Conn(server.port) as c:
        resp = c.roundtrip(request("POST", "/healthz", body=body))
        assert resp.status == 405  # read whole, then routed
        assert c.roundtrip(get()).status == 200


def test_body_limit_configured_content_length(trireme):
    srv = trireme("--max-body-bytes=1k")
    assert fetch(srv.port, request("POST", "/healthz", body=b"x" * 1024)).status == 405
    rejected(srv.port, request("POST", "/healthz", body=b"x" * 1025), 413)


def test_chunked_body_over_limit_is_413_while_decoding(trireme):
    srv = trireme("--max-body-bytes=1k")
    head = request("POST", "/healthz", [("Transfer-Encoding", "chunked")])
    # within the limit: fine
    with Conn(srv.port) as c:
        assert c.roundtrip(head + chunked(b"a" * 512, b"b" * 512)).status == 405
    # the third chunk crosses it: refused at its size line, before its data
    with Conn(srv.port) as c:
        c.send(head + chunked(b"a" * 400, b"b" * 400)[:-5] + b"190\r\n")
        resp = c.read_response()
        assert resp.status == 413
        assert resp.json()["error"] == "payload_too_large"
        c.wait_closed()
    # one huge chunk size: refused without sending any data
    rejected(srv.port, head + b"fffffff\r\n", 413)


def test_chunked_body_over_default_1m_is_413(server):
    head = request("POST", "/healthz", [("Transfer-Encoding", "chunked")])
    piece = b"%x\r\n%s\r\n" % (64 * 1024, b"k" * 64 * 1024)
    with Conn(server.port) as c:
        c.send(head)
        sent = 0
        for _ in range(17):  # 17 x 64 KiB > 1 MiB
            try:
                c.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        resp = c.read_response()
        assert resp.status == 413
        c.wait_closed()
    assert sent >= 15  # it was the decoded size that tripped it, not the first chunk


# -- connections ------------------------------------------------------------

def test_max_connections(trireme):
    srv = trireme("--max-connections=5")
    held = []
    try:
        for i in range(5):
            c = Conn(srv.port)
            held.append(c)
            resp = c.roundtrip(get(headers=[("X-Request-Id", f"held-{i}")]))
            assert resp.status == 200 and not resp.closes
        # The 6th is accepted by the kernel, then closed by the server at
        # once, without an answer.
        with Conn(srv.port) as sixth:
            try:
                sixth.send(get())
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert sixth.wait_closed(timeout=5) == b""
        srv.wait_log(r"max-connections reached")
        # The held ones are unaffected.
        for c in held:
            assert c.roundtrip(get()).status == 200
        # A slot freed is a slot usable again (the close is noticed
        # asynchronously, so allow a few tries).
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            with Conn(srv.port) as c:
                try:
                    c.send(get())
                    resp = c.read_response(timeout=2)
                    assert resp.status == 200
                    break
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    finally:
        for c in held:
            c.close()


def test_413_is_readable_while_the_client_still_sends_its_body(server):
    """The server refuses a 2 MiB Content-Length at once, and its lingering
    close keeps reading (and dropping) what the client still sends, so the
    client's further writes do not turn into a reset that destroys the 413."""
    body = b"w" * (2 * 1024 * 1024)
    with Conn(server.port) as c:
        c.send(request("POST", "/healthz", [("Content-Length", str(len(body)))],
                       content_length=False))
        try:
            for i in range(0, len(body), 64 * 1024):
                c.send(body[i:i + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = c.read_response()
        assert resp.status == 413
