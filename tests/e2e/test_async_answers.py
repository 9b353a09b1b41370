"""
test_async_answers.py - the connection state machine when a handler answers
later, from a PostgreSQL completion (GET /readyz runs a query): pipelined
requests behind it, a client that half-closes or vanishes meanwhile.

Needs PostgreSQL: TRIREME_TEST_DATABASE_URL (tools/test.sh starts one; by
hand: tools/pg-local.sh start DIR PORT). Skipped without it.
"""
import os
import socket
import struct

import pytest

from e2e_http import Conn, get, request


@pytest.fixture
def pg_server(trireme):
    url = os.environ.get("TRIREME_TEST_DATABASE_URL")
    if not url:
        pytest.skip("TRIREME_TEST_DATABASE_URL is not set (tools/pg-local.sh start)")
    srv = trireme("--roles=web", threads=1, env={"DATABASE_URL": url})
    with Conn(srv.port) as c:
        resp = c.roundtrip(get("/readyz"))
        assert resp.status == 200, resp.body
        doc = resp.json()
        assert doc["status"] == "ok" and doc["database"] == "ok"
    return srv


def test_async_answer_with_a_large_request_queued_behind_it(pg_server):
    """While /readyz waits for PostgreSQL, a 200 KB request arrives behind it
    and c->in grows (moves). The answer and its log line must still be
    those of the /readyz request. (Found by this test: the access log read
    the method and path from the moved-away buffer.)"""
    for i in range(20):
        with Conn(pg_server.port) as c:
            big = request("POST", "/healthz", [("X-Request-Id", f"big-{i}")],
                          body=b"z" * 200_000)
            c.send(get("/readyz", headers=[("X-Request-Id", f"ready-{i}")]) + big)
            first, second = c.read_response(), c.read_response()
            assert (first.status, first.header("x-request-id")) == (200, f"ready-{i}")
            assert (second.status, second.header("x-request-id")) == (405, f"big-{i}")
    lines = pg_server.wait_log(r"request_id=ready-19$")
    for i in range(20):
        (line,) = pg_server.wait_log(rf"request_id=ready-{i}$")
        assert "method=GET path=/readyz status=200" in line, line
    assert lines


def test_pipelined_async_and_sync_requests_keep_order(pg_server):
    reqs = []
    for i in range(60):
        path = "/readyz" if i % 2 == 0 else "/healthz"
        reqs.append(get(path, headers=[("X-Request-Id", f"mix-{i}")]))
    with Conn(pg_server.port) as c:
        c.send(b"".join(reqs))
        for i in range(60):
            resp = c.read_response()
            assert resp.status == 200
            assert resp.header("x-request-id") == f"mix-{i}"
        assert c.roundtrip(get()).status == 200


def test_half_close_during_async_answers(pg_server):
    with Conn(pg_server.port) as c:
        c.send(b"".join(get("/readyz", headers=[("X-Request-Id", f"hc-{i}")])
                        for i in range(5)))
        c.sock.shutdown(socket.SHUT_WR)
        for i in range(5):
            resp = c.read_response()
            assert resp.status == 200 and resp.header("x-request-id") == f"hc-{i}"
        c.wait_closed()


def test_client_gone_during_async_answer(pg_server):
    """Clients that reset the connection while their query runs: the
    handler's on_abort path; the server carries on (and teardown checks
    the sanitizers)."""
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", pg_server.port), timeout=5)
        s.sendall(get("/readyz") * 3)
        # SO_LINGER 0: close() sends a RST at once
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with Conn(pg_server.port) as c:
        assert c.roundtrip(get("/readyz")).status == 200
