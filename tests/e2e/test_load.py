"""
test_load.py - many connections at once and sustained keep-alive traffic,
bounded in time. Not a benchmark: it checks that under concurrency every
request gets its own, correct answer.
"""
import resource
import selectors
import socket
import threading
import time

import pytest

from e2e_http import HOST, Conn, get

N_CONNECTIONS = 1000
LOAD_DEADLINE = 60.0  # seconds for the whole 1,000-connection exchange


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Client:
    """One non-blocking connection driven by the selector."""

    def __init__(self, i, port):
        self.i = i
        self.rid = f"load-{i:04d}"
        self.out = get(headers=[("X-Request-Id", self.rid)])
        self.inp = b""
        self.done = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex((HOST, port))

    def response(self):
        """(status, request id) once a whole response is in, else None."""
        head, sep, body = self.inp.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if len(body) < int(hdrs.get("content-length", "0")):
            return None
        return int(lines[0].split(" ")[1]), hdrs.get("x-request-id")


def test_1000_concurrent_connections(server):
    raise_nofile(N_CONNECTIONS + 256)
    srv = server
    sel = selectors.DefaultSelector()
    clients = []
    results = {}
    try:
        # Open all of them first, so all 1,000 are open at the same time.
        for i in range(N_CONNECTIONS):
            c = Client(i, srv.port)
            clients.append(c)
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        deadline = time.monotonic() + LOAD_DEADLINE
        pending = N_CONNECTIONS
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1.0):
                c = key.data
                if ev & selectors.EVENT_WRITE:
                    try:
                        n = c.sock.send(c.out)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        results[c.i] = ("send failed", repr(e))
                        sel.unregister(c.sock)
                        pending -= 1
                        continue
                    c.out = c.out[n:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                elif ev & selectors.EVENT_READ:
                    try:
                        data = c.sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        data = b""
                        results[c.i] = ("recv failed", repr(e))
                    if data:
                        c.inp += data
                        r = c.response()
                        if r is None:
                            continue
                        results[c.i] = r
                    elif c.i not in results:
                        results[c.i] = ("closed early", c.inp[:100])
                    sel.unregister(c.sock)
                    pending -= 1
    finally:
        sel.close()
        for c in clients:
            c.sock.close()
    bad = {i: r for i, r in results.items() if r != (200, f"load-{i:04d}")}
    assert len(results) == N_CONNECTIONS, f"only {len(results)} answered within {LOAD_DEADLINE}s"
    assert not bad, f"{len(bad)} bad answers, e.g. {list(bad.items())[:5]}"
    srv.wait_log(r"request_id=load-", timeout=10, count=N_CONNECTIONS)


def test_parallel_keep_alive_clients(server):
    """8 client threads x 150 keep-alive requests each, every answer checked."""
    errors = []

    def worker(t):
        try:
            with Conn(server.port) as c:
                for i in range(150):
                    rid = f"t{t}-{i}"
                    resp = c.roundtrip(get(headers=[("X-Request-Id", rid)]))
                    if resp.status != 200 or resp.header("x-request-id") != rid:
                        errors.append((rid, resp.status, resp.header("x-request-id")))
                        return
        except Exception as e:  # reported below, with the thread's id
            errors.append((t, repr(e)))

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in ts), "a client thread is stuck"
    assert not errors, errors[:5]


def test_connection_churn(server):
    """Many short connections, each closed by the client right after its
    answer (and some before it): the server neither leaks nor stalls."""
    for i in range(300):
        with Conn(server.port) as c:
            if i % 3 == 0:
                c.send(get())  # close without reading the answer
                continue
            assert c.roundtrip(get()).status == 200
    # Still healthy, and the teardown checks for a clean exit.
    with Conn(server.port) as c:
        assert c.roundtrip(get()).status == 200
