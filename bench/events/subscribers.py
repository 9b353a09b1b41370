#!/usr/bin/env python3
"""
bench/events/subscribers.py - what GET /v1/events costs a web thread with
many subscribers, measured against a real trireme and PostgreSQL.

    DATABASE_URL=postgresql://... python3 bench/events/subscribers.py \
        [--bin zig-out/bin/trireme] [--streams 1000] [--jobs 200] [--seconds 10]

It creates a scratch database next to DATABASE_URL's (dropped at the end),
starts `trireme run --roles=web --threads=1` on it, and measures:

  idle      the web process's CPU over --seconds with no stream open, then
            with --streams streams open and no job changing (the feed polls)
  busy      --jobs jobs enqueued evenly over --seconds (one POST each) with
            the streams open and filtered on their kind: every stream gets
            every job's `created` event; the web process's CPU, the events
            delivered, and the delay from each POST's answer to each
            stream's event (p50, p99, max)

The client (this script, one thread, select) shares the machine: on a small
machine it competes with the server for CPU, so the delays are an upper
bound. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request

KEY = "bench-events-key"


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post(port: int, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/jobs", json.dumps(body).encode(),
                                 {"Authorization": f"Bearer {KEY}",
                                  "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="zig-out/bin/trireme")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    base = os.environ["DATABASE_URL"]
    db = f"evsub_{os.getpid()}"
    url = base.rsplit("/", 1)[0] + "/" + db
    subprocess.run(["psql", "-X", "-q", base, "-c", f"CREATE DATABASE {db}"], check=True)
    proc = None
    try:
        subprocess.run([a.bin, "migrate"], env={**os.environ, "DATABASE_URL": url}, check=True,
                       capture_output=True)
        port = free_port()
        kind = "bench_events"
        proc = subprocess.Popen([a.bin, "run", "--roles=web", "--threads=1", "--host=127.0.0.1",
                                 f"--port={port}", f"--pull-kinds={kind}"],
                                env={**os.environ, "DATABASE_URL": url, "TRIREME_API_KEYS": KEY,
                                     "LOG_LEVEL": "warn"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        out = {"streams": a.streams, "jobs": a.jobs, "seconds": a.seconds}
        c0 = cpu_s(proc.pid)
        time.sleep(a.seconds)
        out["idle_no_stream_cpu_ms_per_s"] = round((cpu_s(proc.pid) - c0) * 1000 / a.seconds, 2)

        sel = selectors.DefaultSelector()
        socks = []
        for i in range(a.streams):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /v1/events?kind={kind} HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {KEY}\r\n\r\n".encode())
            s.setblocking(False)
            st = {"buf": b"", "head": False, "events": []}
            sel.register(s, selectors.EVENT_READ, st)
            socks.append(s)
        heads = 0
        t_end = time.monotonic() + 30
        while heads < a.streams and time.monotonic() < t_end:
            for k, _ in sel.select(0.5):
                st = k.data
                st["buf"] += k.fileobj.recv(1 << 16)
                if not st["head"] and b"\r\n\r\n" in st["buf"]:
                    st["head"] = True
                    st["buf"] = st["buf"].split(b"\r\n\r\n", 1)[1]
                    heads += 1
        out["streams_open"] = heads

        def pump(until: float, sent: dict):
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    return
                for k, _ in sel.select(min(left, 0.05)):
                    st = k.data
                    data = k.fileobj.recv(1 << 16)
                    now = time.monotonic()
                    st["buf"] += data
                    while b"\n\n" in st["buf"]:
                        block, st["buf"] = st["buf"].split(b"\n\n", 1)
                        for line in block.split(b"\n"):
                            if line.startswith(b"data: "):
                                jid = json.loads(line[6:])["id"]
                                st["events"].append((jid, now))

        c0 = cpu_s(proc.pid)
        pump(time.monotonic() + a.seconds, {})
        out["idle_streams_open_cpu_ms_per_s"] = round((cpu_s(proc.pid) - c0) * 1000 / a.seconds, 2)

        sent = {}
        c0 = cpu_s(proc.pid)
        t0 = time.monotonic()
        for i in range(a.jobs):
            due = t0 + i * a.seconds / a.jobs
            pump(due, sent)
            jid = post(port, {"kind": kind, "payload": {"i": i}})["id"]
            sent[jid] = time.monotonic()
        pump(time.monotonic() + 3.0, sent)  # the last polls
        busy_s = time.monotonic() - t0
        out["busy_cpu_ms_per_s"] = round((cpu_s(proc.pid) - c0) * 1000 / busy_s, 2)
        delays = [(at - sent[jid]) * 1000 for s in socks for jid, at in
                  sel.get_key(s).data["events"] if jid in sent]
        out["events_expected"] = a.jobs * heads
        out["events_delivered"] = len(delays)
        out["delay_ms_p50"] = round(pct(delays, 50), 1) if delays else None
        out["delay_ms_p99"] = round(pct(delays, 99), 1) if delays else None
        out["delay_ms_max"] = round(max(delays), 1) if delays else None
        out["web_cpu_us_per_event"] = round(out["busy_cpu_ms_per_s"] * busy_s * 1000 /
                                            max(1, len(delays)), 2)
        for s in socks:
            s.close()
        print(json.dumps(out))
        return 0
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
        subprocess.run(["psql", "-X", "-q", base, "-c", f"DROP DATABASE IF EXISTS {db}"])


if __name__ == "__main__":
    sys.exit(main())
