"""
test_http_strict.py - requests RFC 9112 says to reject (or that a
smuggling-aware server should), sent over a real socket. Each must get the
documented status with a JSON error body and "Connection: close", and the
server must then actually close the connection: a request that could be
framed two ways must never be followed by another one read from the same
bytes.
"""
import pytest

from e2e_http import Conn, get

CODES = {400: "bad_request", 413: "payload_too_large", 414: "uri_too_long",
         431: "headers_too_large", 501: "not_implemented", 505: "http_version_not_supported"}

POST = "POST /healthz HTTP/1.1\r\nHost: x\r\n"


def case(id, raw, status):
    return pytest.param(raw if isinstance(raw, bytes) else raw.encode("latin-1"), status, id=id)


REJECTED = [
    # framing conflicts (request smuggling)
    case("cl-and-te", POST + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n", 400),
    case("te-and-cl", POST + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
         "0\r\n\r\n", 400),
    case("cl-differing-duplicates", POST + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"
         "hello!", 400),
    case("cl-differing-list", POST + "Content-Length: 5, 6\r\n\r\nhello!", 400),
    case("cl-not-a-number", POST + "Content-Length: 5x\r\n\r\nhello", 400),
    case("cl-negative", POST + "Content-Length: -1\r\n\r\n", 400),
    case("cl-plus-sign", POST + "Content-Length: +5\r\n\r\nhello", 400),
    case("cl-empty", POST + "Content-Length: \r\n\r\n", 400),
    case("cl-overflow", POST + "Content-Length: 18446744073709551616\r\n\r\n", 400),
    # line structure
    case("obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", 400),
    case("obs-fold-tab", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n", 400),
    case("space-before-colon", "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    case("tab-before-colon", "GET /healthz HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
    case("bare-lf", "GET /healthz HTTP/1.1\nHost: x\n\n", 400),
    case("bare-lf-in-headers", "GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    case("bare-cr", "GET /healthz HTTP/1.1\rHost: x\r\n\r\n", 400),
    case("bare-cr-in-value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    case("ctl-in-value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    case("nul-in-value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    case("del-in-value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    case("empty-header-name", "GET /healthz HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400),
    case("no-colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nJustAName\r\n\r\n", 400),
    case("bad-header-name-char", "GET /healthz HTTP/1.1\r\nHost: x\r\nX(A): v\r\n\r\n", 400),
    # request line
    case("no-version", "GET /healthz\r\nHost: x\r\n\r\n", 400),
    case("lowercase-version", "GET /healthz http/1.1\r\nHost: x\r\n\r\n", 400),
    case("version-garbage", "GET /healthz HTTP/1.1x\r\nHost: x\r\n\r\n", 400),
    case("double-space", "GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("relative-target", "GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("star-not-options", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("userinfo-in-target", "GET http://u@h/healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    case("ctl-in-target", "GET /he\x01althz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("authority-form-connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400),
    case("bad-method-char", "G(ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("too-many-leading-empty-lines", "\r\n" * 5 + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
         400),
    # Host
    case("missing-host-1.1", "GET /healthz HTTP/1.1\r\nUser-Agent: t\r\n\r\n", 400),
    case("two-hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    case("bad-host-char", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    # versions
    case("http-2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    case("http-3.0", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    case("http-1.2", "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    case("http-0.9-style", "GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    # Transfer-Encoding (proto/http1.c policy)
    case("te-gzip-chunked", POST + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    case("te-two-fields-gzip-chunked",
         POST + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    case("te-chunked-gzip", POST + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    case("te-identity", POST + "Transfer-Encoding: identity\r\n\r\n", 400),
    case("te-gzip-only", POST + "Transfer-Encoding: gzip\r\n\r\n", 400),
    case("te-chunked-twice", POST + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    case("te-empty", POST + "Transfer-Encoding: \r\n\r\n", 400),
    case("te-on-http-1.0", "POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n", 400),
    # chunk sizes and chunk framing
    case("chunk-size-not-hex", POST + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
         400),
    case("chunk-size-negative", POST + "Transfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", 400),
    case("chunk-size-missing", POST + "Transfer-Encoding: chunked\r\n\r\n\r\nhi\r\n0\r\n\r\n",
         400),
    case("chunk-size-0x-prefix", POST + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n"
         "0\r\n\r\n", 400),
    case("chunk-size-17-digits", POST + "Transfer-Encoding: chunked\r\n\r\n"
         "00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    case("chunk-size-trailing-space", POST + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n"
         "0\r\n\r\n", 400),
    case("chunk-size-bare-lf", POST + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
         400),
    case("chunk-data-too-long", POST + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n"
         "0\r\n\r\n", 400),
    case("chunk-data-no-crlf", POST + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n", 400),
    case("chunk-ext-bad", POST + "Transfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n"
         "0\r\n\r\n", 400),
    case("trailer-obs-fold", POST + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n",
         400),
]


def assert_rejected(c, status, expect_close=True):
    resp = c.read_response()
    assert resp.status == status, resp.body
    assert resp.header("content-type") == "application/json"
    assert resp.header("server") == "trireme"
    assert resp.header("date")
    doc = resp.json()
    assert doc["status"] == status
    assert doc["error"] == CODES[status]
    assert isinstance(doc["message"], str) and doc["message"]
    assert doc["request_id"] == resp.header("x-request-id")
    if expect_close:
        assert resp.closes
        # Nothing else (in particular no answer to a smuggled second
        # request), then the close.
        assert c.wait_closed() == b""
    return resp


@pytest.mark.parametrize("raw,status", REJECTED)
def test_rejected_and_closed(server, raw, status):
    # The smuggled request after it must never be answered.
    with Conn(server.port) as c:
        c.send(raw + get(headers=[("X-Request-Id", "smuggled")]))
        assert_rejected(c, status)
    assert "request_id=smuggled" not in server.log


def test_http2_preface_is_refused_and_closed(server):
    """An HTTP/2 prior-knowledge client: refused (the parser objects to the
    '*' target before it reaches the version, so 400 rather than 505)."""
    with Conn(server.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        resp = c.read_response()
        assert resp.status in (400, 505) and resp.closes
        assert c.wait_closed() == b""


BY_ID = {p.id: p.values for p in REJECTED}


@pytest.mark.parametrize("raw,status", [BY_ID["cl-and-te"], BY_ID["obs-fold"],
                                        BY_ID["bare-lf"]],
                         ids=["cl-and-te", "obs-fold", "bare-lf"])
def test_rejected_after_a_good_request_on_the_same_connection(server, raw, status):
    with Conn(server.port) as c:
        assert c.roundtrip(get()).status == 200
        c.send(raw)
        assert_rejected(c, status)


def test_rejection_detected_before_the_head_is_complete(server):
    """A bad byte is refused when it arrives, not when the head ends."""
    with Conn(server.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01")
        assert_rejected(c, 400)


# Requests near those edges that must be accepted.
ACCEPTED = [
    case("cl-identical-duplicates", POST + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         405),
    case("cl-identical-list", POST + "Content-Length: 5, 5\r\n\r\nhello", 405),
    case("cl-zero", POST + "Content-Length: 0\r\n\r\n", 405),
    case("cl-leading-zeros", POST + "Content-Length: 005\r\n\r\nhello", 405),
    case("te-case-insensitive", POST + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", 405),
    case("te-empty-list-elements", POST + "Transfer-Encoding: ,chunked,\r\n\r\n0\r\n\r\n", 405),
    case("chunk-size-uppercase-hex", POST + "Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789"
         "\r\n0\r\n\r\n", 405),
    case("chunk-size-leading-zeros", POST + "Transfer-Encoding: chunked\r\n\r\n0005\r\nhello"
         "\r\n0\r\n\r\n", 405),
    case("header-value-ows", "GET /healthz HTTP/1.1\r\nHost:x\r\nX-A: \t v \t\r\n\r\n", 200),
    case("header-name-case", "GET /healthz HTTP/1.1\r\nhOsT: x\r\n\r\n", 200),
    case("obs-text-in-value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\r\n\r\n", 200),
    case("empty-header-value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:\r\n\r\n", 200),
    case("http-1.0-no-host", "GET /healthz HTTP/1.0\r\n\r\n", 200),
    case("host-with-port", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n", 200),
    case("host-ipv6", "GET /healthz HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n", 200),
    case("options-star", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    case("unknown-method", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    case("expect-other-ignored", "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 200),
]


@pytest.mark.parametrize("raw,status", ACCEPTED)
def test_accepted_near_the_edges(server, raw, status):
    with Conn(server.port) as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == status, resp.body
        if raw.startswith(b"GET /healthz HTTP/1.0"):
            return
        assert not resp.closes
        # The framing was understood: the next request on the connection works.
        assert c.roundtrip(get(headers=[("X-Request-Id", "next")])).header(
            "x-request-id") == "next"
