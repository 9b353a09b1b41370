#!/usr/bin/env python3
"""Open many keep-alive connections to a server and hold them idle.

  hold_conns.py --port P [--host 127.0.0.1] [--count 10000] [--path /healthz]
                [--open-timeout 60] [--hold 120]

Each connection sends one `GET <path>` and reads the whole answer (status line,
headers, Content-Length body), so the server has done real work on it and
keeps it as an idle keep-alive connection. When all are open the script prints
one line to stdout and flushes it:

  ready opened=N ok=M failed=K seconds=S

then holds every connection until stdin reaches end of file or --hold seconds
pass, whichever is first. On the way out it prints

  done still_open=N closed_by_server=M

(counted just before closing, without sending anything), then closes all.
Stdlib only; RLIMIT_NOFILE is raised as far as the hard limit allows.
"""
import argparse
import resource
import select
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        try:  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            need = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def read_response(s):
    """Read one HTTP/1.1 response with a Content-Length body; return status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return status


def still_open(s):
    """True when the peer has not closed the connection (nothing is sent)."""
    try:
        s.setblocking(False)  # else Python polls for the socket timeout first
        data = s.recv(1, socket.MSG_PEEK)
        return len(data) > 0  # b"" = the server closed it
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--open-timeout", type=float, default=60.0,
                    help="give up opening connections after this many seconds")
    ap.add_argument("--hold", type=float, default=120.0,
                    help="hold at most this many seconds, even if stdin stays open")
    a = ap.parse_args()

    raise_nofile(a.count + 64)
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (a.path, a.host, a.port)).encode()
    socks, ok, failed, first_error = [], 0, 0, None
    start = time.monotonic()
    deadline = start + a.open_timeout
    for _ in range(a.count):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection((a.host, a.port), timeout=10)
            socks.append(s)
            s.sendall(req)
            if read_response(s) == 200:
                ok += 1
            else:
                failed += 1
        except (OSError, ValueError, IndexError) as e:
            failed += 1
            if first_error is None:
                first_error = e
    if first_error is not None:
        sys.stderr.write("hold_conns: first error: %r\n" % (first_error,))
    print("ready opened=%d ok=%d failed=%d seconds=%.2f"
          % (len(socks), ok, failed, time.monotonic() - start), flush=True)

    end = time.monotonic() + a.hold
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([sys.stdin], [], [], left)
        if r and not sys.stdin.buffer.read1(4096):
            break  # end of file: the caller is done measuring

    alive = sum(1 for s in socks if still_open(s))
    print("done still_open=%d closed_by_server=%d" % (alive, len(socks) - alive), flush=True)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
