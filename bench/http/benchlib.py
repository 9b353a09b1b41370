#!/usr/bin/env python3
"""Small helpers for bench/http/run.sh (stdlib only, loopback only).

  benchlib.py freeport                     print a free TCP port on 127.0.0.1
  benchlib.py waitlisten PORT N TIMEOUT    wait until N sockets LISTEN on
                                           127.0.0.1:PORT (no request is sent,
                                           so the server stays untouched)
  benchlib.py get PORT PATH TIMEOUT        GET http://127.0.0.1:PORT/PATH once
                                           (retrying until TIMEOUT seconds) on
                                           a keep-alive connection; prints
                                           line 1 Content-Type, line 2 the
                                           body, line 3 the response's bytes
                                           on the wire; exit 1 unless 200
  benchlib.py mem PID                      "RSS_KIB PSS_KIB NPROCS" summed
                                           over PID and all its descendants
"""
import os
import socket
import sys
import time


def freeport():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    print(port)


def listeners(port):
    n = 0
    want = "0100007F:%04X" % port  # 127.0.0.1, little-endian as /proc shows it
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # 0A = LISTEN
                n += 1
    return n


def waitlisten(port, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listeners(port) >= count:
            return 0
        time.sleep(0.05)
    sys.stderr.write("benchlib: nothing listening on 127.0.0.1:%d after %ss\n" % (port, timeout))
    return 1


def get_once(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed inside the body")
            body += chunk
        return status, headers.get("content-type", ""), body, len(head) + 4 + len(body)


def get(port, path, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, ctype, body, wire = get_once(port, path)
            print(ctype)
            print(body.decode())
            print(wire)
            return 0 if status == 200 else 1
        except (OSError, ValueError, IndexError) as e:  # refused while starting, etc.
            last = e
            time.sleep(0.1)
    sys.stderr.write("benchlib: GET 127.0.0.1:%d%s failed: %s\n" % (port, path, last))
    return 1


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # the command may hold spaces and parentheses: split after the last ')'
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def field_kib(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid):
    kids = children_map()
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return seen


def mem(pid):
    seen = tree(pid)
    rss = sum(field_kib("/proc/%d/status" % p, "VmRSS") for p in seen)
    pss = sum(field_kib("/proc/%d/smaps_rollup" % p, "Pss") for p in seen)
    print(rss, pss, len(seen))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "freeport":
        return freeport()
    if len(argv) == 5 and argv[1] == "waitlisten":
        return waitlisten(int(argv[2]), int(argv[3]), float(argv[4]))
    if len(argv) == 5 and argv[1] == "get":
        return get(int(argv[2]), argv[3], float(argv[4]))
    if len(argv) == 3 and argv[1] == "mem":
        return mem(int(argv[2]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
