#!/usr/bin/env python3
"""
bench/failover/run.py - how long a worker fleet in --worker-mode=leader is
without a leader, for both election backends.

For each backend and each way of losing the leader (kill -9, SIGTERM), runs
TRIALS trials with two `trireme run --roles=worker` instances: waits for a
leader, removes it, and measures from the signal to the standby's
"Acquired leader lock" line (log timestamps, milliseconds, the same clock).
The removed instance is restarted as the next standby. Appends a dated
section to bench/RESULTS.md.

Environment: TRIALS (default 20), TRIREME_BIN (default: a ReleaseFast build
made by run.sh), DATABASE_URL and REDIS_URL (run.sh starts private ones),
LEADER_TTL (default 2s, Trireme's default).
"""
import datetime
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TRIALS = int(os.environ.get("TRIALS", "20"))
BIN = os.environ["TRIREME_BIN"]
TTL = os.environ.get("LEADER_TTL", "2s")
TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z")


def log_ms(line: str) -> float:
    m = TS.match(line)
    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc)
    return dt.timestamp() * 1000.0


class Worker:
    def __init__(self, backend: str, tmp: str, n: int):
        self.log = os.path.join(tmp, f"{backend}-{n}.log")
        env = dict(os.environ, LOG_LEVEL="info", LOG_FORMAT="text")
        self.proc = subprocess.Popen(
            [BIN, "run", "--roles=worker", "--threads=1", f"--leader={backend}",
             "--worker-mode=leader", f"--leader-ttl={TTL}", "--queues=failover-bench"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env=env)

    def lines(self, pattern: str):
        with open(self.log) as f:
            return [ln for ln in f if pattern in ln]

    def is_leader(self) -> bool:
        acq, lost = self.lines("Acquired leader lock"), self.lines("Lost leader lock")
        return len(acq) > len(lost)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_for(pred, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError("timed out")


def trials(backend: str, how: str, tmp: str) -> list[float]:
    a, b = Worker(backend, tmp, 0), Worker(backend, tmp, 1)
    n = 2
    out = []
    try:
        for _ in range(TRIALS):
            leader = wait_for(lambda: next((w for w in (a, b) if w.is_leader()), None), 30)
            standby = b if leader is a else a
            time.sleep(0.3)  # the standby is connected and waiting
            before = len(standby.lines("Acquired leader lock"))
            t0 = time.time() * 1000.0
            leader.proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
            line = wait_for(lambda: (standby.lines("Acquired leader lock")[before:] or [None])[0], 30)
            out.append(log_ms(line) - t0)
            leader.proc.wait(30)
            replacement = Worker(backend, tmp, n)
            n += 1
            if leader is a:
                a = replacement
            else:
                b = replacement
    finally:
        a.stop()
        b.stop()
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="trireme-failover-")
    rows = []
    for backend in ("postgres", "redis"):
        for how in ("kill -9", "SIGTERM"):
            ms = trials(backend, how, tmp)
            rows.append((backend, how, statistics.median(ms), max(ms), min(ms), len(ms)))
            print(f"{backend:8} {how:8} p50 {statistics.median(ms):8.1f} ms  max {max(ms):8.1f} ms",
                  flush=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    version = subprocess.run([BIN, "version"], capture_output=True, text=True).stdout.strip()
    targets = {("postgres", "kill -9"): 100, ("redis", "kill -9"): 2500,
               ("postgres", "SIGTERM"): 50, ("redis", "SIGTERM"): 50}
    section = [
        "",
        f"## Leader failover — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        "",
        f"- machine: {platform.node()}, Linux {platform.release()}, {cpu}, {os.cpu_count()} CPUs",
        f"- {version}; leader TTL {TTL} (renewal every third); PostgreSQL and Redis on loopback",
        f"- command: `bash bench/failover/run.sh` (TRIALS={TRIALS})",
        "- measured: from the signal to the standby's `Acquired leader lock` log line (its token is",
        "  recorded in PostgreSQL before that line), two instances, the removed one restarted each trial",
        "",
        "| backend | leader removed by | p50 ms | max ms | min ms | trials | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, how, p50, mx, mn, n in rows:
        t = targets[(backend, how)]
        section.append(f"| {backend} | {how} | {p50:.1f} | {mx:.1f} | {mn:.1f} | {n} | "
                       f"≤ {t} ms: {'met' if mx <= t else 'missed'} (max) |")
    section.append("")
    with open(os.path.join(os.path.dirname(__file__), "..", "RESULTS.md"), "a") as f:
        f.write("\n".join(section))
    print("\n".join(section))


if __name__ == "__main__":
    sys.exit(main())
