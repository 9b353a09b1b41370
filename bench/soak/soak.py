#!/usr/bin/env python3
"""
soak.py - mixed load on one trireme process for a long time, sampled each
interval, with PostgreSQL restarted on a period; bench/soak/run.sh drives it
(and tests/e2e/test_soak.py runs a short variant).

  soak.py --binary B --database-url U --pg-dir D --minutes M [--restart-every S]
          [--sample-every S] [--rate R] [--markdown OUT]

What runs, all on loopback:
  - `trireme run --roles=web,worker,beat` (one process) with a `sql` job
    kind that inserts a row per job (soak_effects), two schedules (@every 1s
    noop, @every 5s sql), and retention short enough (--retention-succeeded
    = a third of the soak, at least 1 min) for the jobs table to be bounded
    within the run;
  - LOAD_THREADS clients POSTing jobs at --rate per second in all: 60% noop,
    20% sleep 5 ms, 20% sql; each job carries a unique_key, and a refused
    enqueue (503 while PostgreSQL restarts, a dropped connection) is sent
    again with the same key until accepted, so a job is never lost on the
    client's side nor counted twice; a client GETs a job it made every tenth
    request (progress polling);
  - `pg_ctl restart -m fast` every --restart-every seconds.

Sampled every --sample-every seconds: trireme's RSS and open descriptors,
rows and total bytes of trireme.jobs, enqueue latency p50/p99 (accepted
requests in the interval), requests answered 503 or failed, jobs succeeded.

At the end the load stops and the script waits (bounded) for the queue to
drain, then checks: no accepted job lost (every accepted id is succeeded,
or gone by retention, which only deletes finished jobs; none pending,
running or dead), and each sql job's row inserted exactly once. Exit 0
only then. Prints a Markdown section (and writes it to --markdown).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

API_KEY = "soak-" + uuid.uuid4().hex[:12]
LOAD_THREADS = 4
DRAIN_TIMEOUT_S = 120


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(url: str, sql: str) -> str:
    # On stdin: the end checks name every accepted id, far past ARG_MAX.
    r = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1"], input=sql,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout.strip()


def psql_retry(url: str, sql: str, tries: int = 60) -> str:
    for i in range(tries):
        try:
            return psql(url, sql)
        except RuntimeError:
            if i == tries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat_ms: list[float] = []
        self.refused = 0
        self.errors = 0
        self.accepted: dict[str, list[int]] = {"noop": [], "sleep": [], "sql": []}

    def take_window(self):
        with self.lock:
            lat, self.lat_ms = self.lat_ms, []
            refused, errors = self.refused, self.errors
            self.refused = self.errors = 0
        return lat, refused, errors


def client(port: int, rate: float, stop: threading.Event, stats: Stats, seed: int):
    rnd = random.Random(seed)
    conn = None
    interval = LOAD_THREADS / rate
    next_at = time.monotonic()
    n = 0
    mine: list[int] = []
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    while not stop.is_set():
        r = rnd.random()
        kind = "noop" if r < 0.6 else ("sleep" if r < 0.8 else "sql")
        key = uuid.uuid4().hex
        job = {"kind": kind, "unique_key": key}
        if kind == "sleep":
            job["payload"] = {"ms": 5}
        elif kind == "sql":
            job["payload"] = {"statement": "effect", "params": [key]}
        body = json.dumps(job)
        while not stop.is_set():  # until accepted: same key, so never twice
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/v1/jobs", body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn = None
                with stats.lock:
                    stats.errors += 1
                time.sleep(0.1)
                continue
            if resp.status in (200, 201):
                jid = json.loads(data)["id"]
                with stats.lock:
                    stats.lat_ms.append((time.monotonic() - t0) * 1000)
                    stats.accepted[kind].append(jid)
                mine.append(jid)
                break
            with stats.lock:
                if resp.status == 503:
                    stats.refused += 1
                else:
                    stats.errors += 1
            if resp.status != 503:
                print(f"soak: unexpected {resp.status}: {data[:200]!r}", file=sys.stderr)
            time.sleep(0.1)
        n += 1
        if n % 10 == 0 and mine and conn is not None:
            try:
                conn.request("GET", f"/v1/jobs/{rnd.choice(mine[-50:])}", headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn = None
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # behind: do not burst to catch up


def proc_rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--pg-dir", required=True, help="data directory, for pg_ctl restart")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--restart-every", type=float, default=300)
    ap.add_argument("--sample-every", type=float, default=60)
    ap.add_argument("--rate", type=float, default=200, help="enqueues per second, all clients")
    ap.add_argument("--markdown")
    a = ap.parse_args()

    url = a.database_url
    psql(url, "CREATE TABLE IF NOT EXISTS soak_effects (key text NOT NULL, at timestamptz "
              "DEFAULT now())")
    psql(url, "TRUNCATE soak_effects")
    tmp = Path(tempfile.mkdtemp(prefix="trireme-soak-"))
    (tmp / "sql_jobs").write_text("effect: INSERT INTO soak_effects (key) VALUES ($1)\n")
    sched_name = "soak-" + uuid.uuid4().hex[:6]
    (tmp / "schedules.json").write_text(json.dumps({"schedules": [
        {"name": sched_name + "-tick", "cron": "@every 1s", "kind": "noop"},
        {"name": sched_name + "-sql", "cron": "@every 5s", "kind": "sql",
         "payload": {"statement": "effect", "params": ["beat"]}},
    ]}))
    seconds = a.minutes * 60
    keep = max(60, int(seconds / 3))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIREME_", "DATABASE_",
                                                                    "REDIS_"))}
    env.update(DATABASE_URL=url, TRIREME_API_KEYS=API_KEY, LOG_LEVEL="warn")
    args = [a.binary, "run", "--roles=web,worker,beat", "--host=127.0.0.1", f"--port={port}",
            f"--sql-jobs={tmp / 'sql_jobs'}", f"--schedules={tmp / 'schedules.json'}",
            f"--retention-succeeded={keep}s", "--retention-interval=15s",
            f"--retention-fires={keep}s", "--access-log=false"]
    log = open(tmp / "trireme.log", "wb")
    srv = subprocess.Popen(args, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or srv.poll() is not None:
            print((tmp / "trireme.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit("soak: trireme did not become ready")
        time.sleep(0.2)

    stats = Stats()
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(port, a.rate, stop, stats, i), daemon=True)
               for i in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    start = time.monotonic()
    next_restart = start + a.restart_every
    next_sample = start + a.sample_every
    restarts = 0
    rows = []
    fd0 = len(os.listdir(f"/proc/{srv.pid}/fd"))
    rss0 = proc_rss_kb(srv.pid)
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_restart:
            subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D", a.pg_dir, "-m",
                            "fast", "-w", "restart", "-l", f"{a.pg_dir}/restart.log"],
                           check=True, capture_output=True, timeout=120,
                           env={**os.environ, "PATH": pg_bin() + ":" + os.environ["PATH"]})
            restarts += 1
            next_restart += a.restart_every
        if now >= next_sample:
            lat, refused, errors = stats.take_window()
            jobs_rows, jobs_bytes, succeeded = psql_retry(
                url, "SELECT count(*), pg_total_relation_size('trireme.jobs'), "
                     "count(*) FILTER (WHERE status = 'succeeded') FROM trireme.jobs").split("|")
            rows.append({
                "minute": round((now - start) / 60, 1),
                "rss_kb": proc_rss_kb(srv.pid),
                "fds": len(os.listdir(f"/proc/{srv.pid}/fd")),
                "jobs_rows": int(jobs_rows), "jobs_mb": int(jobs_bytes) / 2**20,
                "succeeded_rows": int(succeeded),
                "accepted": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99),
                "refused": refused, "errors": errors, "restarts": restarts,
            })
            print("soak:", json.dumps(rows[-1]), file=sys.stderr, flush=True)
            next_sample += a.sample_every
        if srv.poll() is not None:
            print((tmp / "trireme.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"soak: trireme exited with {srv.returncode}")
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    # Drain, then the invariants.
    with stats.lock:
        accepted = {k: list(v) for k, v in stats.accepted.items()}
    all_ids = [i for v in accepted.values() for i in v]
    ids = ",".join(str(i) for i in all_ids) or "0"
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        left = int(psql_retry(url, f"SELECT count(*) FROM trireme.jobs WHERE id IN ({ids}) "
                                   "AND status IN ('pending', 'running')"))
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    bad = psql_retry(url, f"SELECT count(*) FROM trireme.jobs WHERE id IN ({ids}) "
                          "AND status <> 'succeeded'")
    dup = psql_retry(url, "SELECT count(*) FROM (SELECT key FROM soak_effects WHERE key <> "
                          "'beat' GROUP BY key HAVING count(*) > 1) d")
    effects = int(psql_retry(url, "SELECT count(DISTINCT key) FROM soak_effects "
                                  "WHERE key <> 'beat'"))
    srv.terminate()
    rc = srv.wait(timeout=60)
    lost = int(bad)
    ok = lost == 0 and int(dup) == 0 and effects == len(accepted["sql"]) and rc == 0

    lines = ["| minute | RSS MiB | fds | jobs rows | jobs MiB | enqueued | p50 ms | p99 ms | "
             "503s | errors | PG restarts |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['minute']} | {r['rss_kb'] / 1024:.1f} | {r['fds']} | {r['jobs_rows']} "
                     f"| {r['jobs_mb']:.1f} | {r['accepted']} | {r['p50']:.2f} | {r['p99']:.2f} "
                     f"| {r['refused']} | {r['errors']} | {r['restarts']} |")
    summary = (f"start: RSS {rss0 / 1024:.1f} MiB, {fd0} fds. Accepted "
               f"{len(all_ids)} jobs ({len(accepted['noop'])} noop, {len(accepted['sleep'])} "
               f"sleep, {len(accepted['sql'])} sql) at --rate {a.rate:g}/s, {restarts} "
               f"PostgreSQL restarts (-m fast, every {a.restart_every:g} s), retention of "
               f"succeeded jobs {keep} s. After the drain: {lost} accepted jobs not succeeded "
               f"(lost or dead), {dup} sql effects duplicated, {effects} of "
               f"{len(accepted['sql'])} sql effects present; trireme exit {rc}. "
               f"{'PASS' if ok else 'FAIL'}.")
    text = "\n".join(lines) + "\n\n" + summary + "\n"
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text)
    return 0 if ok else 1


def pg_bin() -> str:
    import glob
    return sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]


if __name__ == "__main__":
    sys.exit(main())
