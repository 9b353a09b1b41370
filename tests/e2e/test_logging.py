"""
test_logging.py - X-Request-Id (echoed when valid, generated otherwise) and
the access log: one line per request with method, path, status, bytes,
duration and request id, as text or as one JSON object per line.
"""
import json
import re

import pytest

from e2e_http import Conn, fetch, get, request

HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.mark.parametrize("rid", ["abc", "A-Z_a.z:0-9", "x" * 64, "0", "2f1c:9d.aa_b-c"])
def test_valid_request_id_is_echoed(server, rid):
    resp = fetch(server.port, get(headers=[("X-Request-Id", rid)]))
    assert resp.header("x-request-id") == rid


@pytest.mark.parametrize("rid", ["x" * 65, "a b", "a/b", "a\"b", "caf\xe9", "a,b", ""],
                         ids=["65-chars", "space", "slash", "quote", "non-ascii", "comma",
                              "empty"])
def test_invalid_request_id_is_replaced(server, rid):
    resp = fetch(server.port, get(headers=[("X-Request-Id", rid)]))
    assert resp.status == 200
    assert HEX16.match(resp.header("x-request-id")), resp.header("x-request-id")


def test_generated_request_ids_differ(server):
    ids = set()
    with Conn(server.port) as c:
        for _ in range(20):
            ids.add(c.roundtrip(get()).header("x-request-id"))
    assert len(ids) == 20 and all(HEX16.match(i) for i in ids)


def test_request_id_in_error_body_matches_header(server):
    resp = fetch(server.port, get("/missing", headers=[("X-Request-Id", "err-id-1")]))
    assert resp.status == 404
    assert resp.header("x-request-id") == "err-id-1"
    assert resp.json()["request_id"] == "err-id-1"


def test_access_log_text(server):
    resp = fetch(server.port, get(headers=[("X-Request-Id", "log-text-1")]))
    (line,) = server.wait_log(r"request_id=log-text-1$")
    assert " INFO " in line
    m = re.search(r"\brequest method=GET path=/healthz status=200 bytes=(\d+) "
                  r"duration_us=(\d+) request_id=log-text-1$", line)
    assert m, line
    assert int(m.group(1)) == len(resp.body)
    # the timestamp comes first: ISO 8601 UTC
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ", line), line


def test_access_log_one_line_per_request(server):
    with Conn(server.port) as c:
        for i in range(5):
            c.roundtrip(get(headers=[("X-Request-Id", f"each-{i}")]))
        c.roundtrip(request("POST", "/healthz", [("X-Request-Id", "each-post")], body=b"1"))
        c.roundtrip(get("/nope?q=1", headers=[("X-Request-Id", "each-404")]))
    server.wait_log(r"request_id=each-404")
    for i in range(5):
        assert len(server.wait_log(rf"request_id=each-{i}$")) == 1
    (post,) = server.wait_log(r"request_id=each-post$")
    assert "method=POST path=/healthz status=405" in post
    (nf,) = server.wait_log(r"request_id=each-404$")
    assert "method=GET path=/nope status=404" in nf  # the query is not logged as path


def test_access_log_generated_id_matches_response(server):
    resp = fetch(server.port)
    rid = resp.header("x-request-id")
    server.wait_log(rf"status=200 .*request_id={rid}$")


def test_rejected_request_is_logged(server):
    with Conn(server.port) as c:
        c.send(b"GET /healthz HTTP/1.1\nHost: x\n\n")
        resp = c.read_response()
        assert resp.status == 400
    server.wait_log(rf"status=400 .*request_id={resp.header('x-request-id')}")


def test_access_log_off(trireme):
    srv = trireme("--access-log=false")
    fetch(srv.port, get(headers=[("X-Request-Id", "not-logged")]))
    srv.stop()
    assert "not-logged" not in srv.log
    assert "trireme stopped" in srv.log


def parse_json_lines(text):
    out = []
    for ln in text.splitlines():
        if ln.strip():
            out.append(json.loads(ln))  # every line is one JSON object
    return out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_json_log_format(trireme, how):
    if how == "flag":
        srv = trireme("--log-format=json")
    else:
        srv = trireme(env={"LOG_FORMAT": "json"})
    resp = fetch(srv.port, get(headers=[("X-Request-Id", "json-1")]))
    fetch(srv.port, get("/with\"quote", headers=[("X-Request-Id", "json-2")]))
    srv.wait_log(r'"request_id":"json-2"')
    assert srv.stop() == 0
    entries = parse_json_lines(srv.log)
    for e in entries:
        assert {"ts", "level", "msg"} <= e.keys(), e
    msgs = [e["msg"] for e in entries]
    assert "trireme started" in msgs and "trireme stopped" in msgs
    (req,) = [e for e in entries if e.get("request_id") == "json-1"]
    assert req["msg"] == "request" and req["level"] == "info"
    assert req["method"] == "GET" and req["path"] == "/healthz"
    assert req["status"] == 200
    assert req["bytes"] == len(resp.body)
    assert isinstance(req["duration_us"], int) and req["duration_us"] >= 0
    (odd,) = [e for e in entries if e.get("request_id") == "json-2"]
    assert odd["path"] == '/with"quote' and odd["status"] == 404


def test_log_level_warn_hides_info(trireme):
    srv = trireme("--log-level=warn")
    fetch(srv.port, get(headers=[("X-Request-Id", "quiet")]))
    srv.stop()
    assert "quiet" not in srv.log
    assert "trireme started" not in srv.log


def test_json_log_lines_stay_json_when_cut(trireme):
    """Log lines have a size cap; a cut JSON line must still be one JSON
    object. Paths of many lengths around the cap, with characters that
    need escaping. (Found by this test: the closing brace was cut off.)"""
    srv = trireme("--log-format=json", threads=1)
    with Conn(srv.port) as c:
        for n in list(range(3900, 4120, 3)) + [6000, 8000]:
            path = "/" + ('a"\\' * n)[:n - 1]
            resp = c.roundtrip(get(path, headers=[("X-Request-Id", f"cut-{n}")]))
            assert resp.status == 404
        c.roundtrip(get(headers=[("X-Request-Id", "cut-done")]))
    srv.wait_log(r'"request_id":"cut-done"')
    assert srv.stop() == 0
    entries = parse_json_lines(srv.log)  # raises on any line that is not JSON
    reqs = [e for e in entries if e.get("msg") == "request"]
    assert len(reqs) == len(range(3900, 4120, 3)) + 3
    for e in reqs[:-1]:
        assert e["path"].startswith('/a"\\')


def test_request_id_echoed_on_a_rejected_complete_head(server):
    """A head refused on its meaning (413 by Content-Length, CL with TE, no
    Host) was read whole: its X-Request-Id is echoed like on any answer.
    (Found by this test: rejections always got a generated id.)"""
    cases = [(request("POST", "/healthz", [("X-Request-Id", "rej-413"),
                                           ("Content-Length", str(2 * 1024 * 1024))],
                      content_length=False), 413, "rej-413"),
             (b"POST /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: rej-400\r\n"
              b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "rej-400"),
             (b"GET /healthz HTTP/1.1\r\nX-Request-Id: rej-host\r\n\r\n", 400, "rej-host")]
    for raw, status, rid in cases:
        with Conn(server.port) as c:
            c.send(raw)
            resp = c.read_response()
            assert resp.status == status
            assert resp.header("x-request-id") == rid
            assert resp.json()["request_id"] == rid
        server.wait_log(rf"request rejected status={status} .*request_id={rid}")


def test_request_id_generated_when_the_head_is_malformed(server):
    with Conn(server.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nX-Request-Id: rej-lf\nHost: x\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 400
        assert HEX16.match(resp.header("x-request-id"))
