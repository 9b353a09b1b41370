"""
e2e_http.py - a deliberately small HTTP/1.1 client for the end-to-end tests.

Why not http.client: these tests must send bytes that no well-behaved client
would (bare LF, obs-fold, a head split one byte at a time, pipelines) and
must see exactly what the server wrote back, including whether and when it
closed the connection. So requests are raw bytes and responses are parsed
here, strictly enough to catch framing mistakes (a HEAD answer that carries
a body, a Content-Length that does not match) but no further.

Every call is bounded: sockets have timeouts and every loop has a deadline.
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 10.0  # seconds; generous for the ASan build on 2 cores


class ProtocolError(AssertionError):
    """The server wrote something that is not a well-formed HTTP/1.1 response."""


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        """Value of the single header `name` (case-insensitive), or None."""
        vals = self.header_all(name)
        if len(vals) > 1:
            raise ProtocolError(f"header {name} appears {len(vals)} times: {vals}")
        return vals[0] if vals else None

    def header_all(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def closes(self) -> bool:
        """The server announced it will close after this response."""
        conn = (self.header("connection") or "").lower()
        return "close" in [t.strip() for t in conn.split(",")]


def request(method: str, target: str, headers: list[tuple[str, str]] | None = None,
            body: bytes = b"", version: str = "HTTP/1.1", host: str | None = "localhost",
            content_length: bool | None = None) -> bytes:
    """Build a request. Content-Length is added when a body is given, unless
    content_length is False; Host is added unless host is None."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    if content_length is None:
        content_length = bool(body)
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(target: str = "/healthz", headers: list[tuple[str, str]] | None = None, **kw) -> bytes:
    return request("GET", target, headers, **kw)


def chunked(*parts: bytes, trailers: bytes = b"") -> bytes:
    """A chunked body: one chunk per part, then the last chunk and trailers."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return out + b"0\r\n" + trailers + b"\r\n"


class Conn:
    """One client connection with its own receive buffer, so pipelined
    responses can be read one after the other."""

    def __init__(self, port: int, timeout: float = DEFAULT_TIMEOUT, connect: bool = True):
        self.port = port
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.sock: socket.socket | None = None
        if connect:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
            self.sock.settimeout(timeout)

    # -- plumbing ---------------------------------------------------------

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_slowly(self, data: bytes, step: int = 1, delay: float = 0.002,
                    max_seconds: float = 30.0):
        """Send data `step` bytes at a time with a pause after each piece."""
        deadline = time.monotonic() + max_seconds
        for i in range(0, len(data), step):
            if time.monotonic() > deadline:
                raise AssertionError("send_slowly ran past its time bound")
            self.sock.sendall(data[i:i + step])
            if delay:
                time.sleep(delay)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes into buf; False on EOF (or reset)."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(min(left, self.timeout))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take_until(self, sep: bytes, deadline: float, limit: int) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise ProtocolError(f"no {sep!r} within {limit} bytes: {self.buf[:200]!r}")
            if not self._fill(deadline):
                raise EOFError(f"connection closed; unparsed bytes: {self.buf[:200]!r}")

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise EOFError(f"connection closed after {len(self.buf)} of {n} body bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- responses --------------------------------------------------------

    def read_response(self, head_request: bool = False, timeout: float | None = None) -> Response:
        """Read exactly one response (a 1xx interim answer counts as one)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        head = self._take_until(b"\r\n\r\n", deadline, 64 * 1024)
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        resp = Response(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "",
                        version=parts[0], raw_head=head)
        for line in lines[1:]:
            if b"\n" in line or b"\r" in line:
                raise ProtocolError(f"bare CR/LF in response header {line!r}")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"malformed response header {line!r}")
            resp.headers.append((name, value.strip()))
        if resp.status < 200 or resp.status in (204, 304):
            return resp
        if resp.header("transfer-encoding") is not None:
            raise ProtocolError("the server is not expected to send chunked responses")
        cl = resp.header("content-length")
        if cl is None:
            raise ProtocolError(f"response without Content-Length: {head!r}")
        if not head_request:
            resp.body = self._take(int(cl), deadline)
        return resp

    def roundtrip(self, data: bytes, head_request: bool = False) -> Response:
        self.send(data)
        return self.read_response(head_request=head_request)

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Wait until the server closes (EOF or reset); returns any bytes that
        arrived before the close. Raises TimeoutError if it stays open."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            if len(self.buf) > 1024 * 1024:
                raise ProtocolError("server kept sending instead of closing")
        out, self.buf = self.buf, b""
        return out

    def is_open_after(self, seconds: float) -> bool:
        """True if the server neither closed nor sent anything for `seconds`."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except (socket.timeout, TimeoutError):
            return True
        except ConnectionResetError:
            self.eof = True
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
        return False


def fetch(port: int, data: bytes | None = None, head_request: bool = False,
          timeout: float = DEFAULT_TIMEOUT) -> Response:
    """One request on a fresh connection."""
    with Conn(port, timeout=timeout) as c:
        return c.roundtrip(data if data is not None else get(), head_request=head_request)
