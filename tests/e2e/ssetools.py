"""
ssetools.py - a Server-Sent Events client on a raw socket for the e2e
tests of GET /v1/events and GET /v1/jobs/{id}/events: the answer's head,
then each event parsed as (id, event, data as JSON), comment lines kept.
"""
from __future__ import annotations

import json
import signal
import socket
import time

from conftest import HOST
from pgtools import API_KEY


class SSE:
    """GET path on a fresh connection, with Last-Event-ID when given."""

    def __init__(self, port, path, last_id=None):
        self.s = socket.create_connection((HOST, port), timeout=10)
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {API_KEY}\r\nAccept: text/event-stream\r\n"
                       f"{extra}\r\n".encode())
        self.buf, self.closed, self.events, self.comments = b"", False, [], []
        while b"\r\n\r\n" not in self.buf:
            self._read()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()

    def _read(self):
        data = self.s.recv(65536)
        if not data:
            self.closed = True
            raise EOFError
        self.buf += data

    def next_event(self, timeout=10.0):
        """The next event as (id, event, data), None when the stream ended,
        or an AssertionError when none came within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                fields = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line)
                        continue
                    if ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    fields[k] = v[1:] if v.startswith(" ") else v
                if "event" in fields:
                    ev = (fields.get("id"), fields["event"], json.loads(fields["data"]))
                    self.events.append(ev)
                    return ev
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event within {timeout}s; have {self.events}")
            self.s.settimeout(left)
            try:
                self._read()
            except EOFError:
                continue
            except socket.timeout:
                raise AssertionError(f"no event within {timeout}s; have {self.events}")

    def close(self):
        self.s.close()


def sigterm_ends_stream(srv, stream):
    """SIGTERM to the server: the open stream ends within 5 s and the
    server exits cleanly."""
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert stream.next_event(timeout=10) is None
    assert time.monotonic() - t0 < 5
    assert srv.proc.wait(timeout=15) == 0
