"""oneshot.py - one-shot exec kinds: jobs/s and the worker's overhead per job.

Usage (PostgreSQL queue backend; a database URL to a throwaway database):
  python3 bench/user-code/oneshot.py --bin PATH/trireme --db URL [--jobs 1000] [--concurrency 2]

Timed runs of the same number of jobs through one worker (--threads=1):
`noop` jobs (the queue alone), a one-shot exec kind running /bin/true, a
pool-mode kind running docs/examples/pool_worker.py with `concurrency`
processes, and, with no trireme at all, /bin/true spawned by this script as
many times with the same concurrency (the program's own start-up). The
exec overhead per job is (exec - noop - direct) / jobs spread over the
concurrency. Prints the numbers; writes nothing else.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time


def psql(db: str, sql: str) -> str:
    return subprocess.run(["psql", db, "-qAtX", "-c", sql], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def burn(args, kind: str, kinds_file: str) -> float:
    """Seconds from the worker seeing `jobs` pending jobs of kind to all done."""
    queue = f"bench_{kind}_{os.getpid()}"
    psql(args.db, f"INSERT INTO trireme.jobs (queue, kind) SELECT '{queue}', '{kind}' "
                  f"FROM generate_series(1, {args.jobs})")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIREME_", "DATABASE_"))}
    env.update({"DATABASE_URL": args.db, "TRIREME_INSECURE_NO_AUTH": "true"})
    log = tempfile.NamedTemporaryFile(prefix="oneshot-", suffix=".log", delete=False)
    t0 = time.monotonic()
    srv = subprocess.Popen([args.bin, "run", "--roles=worker", "--threads=1", "--host=127.0.0.1",
                            f"--port={free_port()}", f"--queues={queue}", f"--kinds={kinds_file}",
                            "--log-level=warn", f"--concurrency={max(args.concurrency, 64)}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while True:
            left = int(psql(args.db, f"SELECT count(*) FROM trireme.jobs WHERE queue = '{queue}' "
                                     "AND status <> 'succeeded'"))
            if left == 0:
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"{kind}: {left} jobs left after 600 s (log: {log.name})")
            time.sleep(0.02)
        span = psql(args.db, "SELECT extract(epoch FROM max(finished_at) - min(started_at)) "
                             f"FROM trireme.jobs WHERE queue = '{queue}'")
    finally:
        srv.terminate()
        srv.wait(timeout=60)
    psql(args.db, f"DELETE FROM trireme.jobs WHERE queue = '{queue}'")
    return float(span)


def direct(args) -> float:
    """Seconds to run /bin/true `jobs` times, `concurrency` at once, from Python."""
    t0 = time.monotonic()
    running: list[subprocess.Popen] = []
    for _ in range(args.jobs):
        if len(running) >= args.concurrency:
            running.pop(0).wait()
        running.append(subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL))
    for p in running:
        p.wait()
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        here = os.path.dirname(os.path.abspath(__file__))
        json.dump({"kinds": {"true": {"type": "exec", "argv": ["/bin/true"],
                                      "concurrency": args.concurrency},
                             "hash": {"type": "exec", "mode": "pool",
                                      "processes": args.concurrency,
                                      "argv": ["python3", os.path.join(
                                          here, "../../docs/examples/pool_worker.py")]}}}, f)
    subprocess.run([args.bin, "migrate"], env={**os.environ, "DATABASE_URL": args.db}, check=True,
                   capture_output=True)
    noop = burn(args, "noop", f.name)
    ex = burn(args, "true", f.name)
    pool = burn(args, "hash", f.name)
    d = direct(args)
    os.unlink(f.name)
    n, c = args.jobs, args.concurrency
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"noop          {n} jobs  {noop:.3f} s  {n / noop:,.0f} jobs/s")
    print(f"exec /bin/true {n} jobs  {ex:.3f} s  {n / ex:,.0f} jobs/s  (concurrency {c})")
    print(f"pool python   {n} jobs  {pool:.3f} s  {n / pool:,.0f} jobs/s  ({c} processes)")
    print(f"direct spawn  {n} runs  {d:.3f} s  {n / d:,.0f} runs/s  (Python subprocess, {c} at once)")
    print(f"exec per job: {ex / n * c * 1000:.3f} ms of a program slot; beyond noop and the "
          f"direct spawn: {(ex - noop - d) / n * c * 1000:.3f} ms")


if __name__ == "__main__":
    main()
