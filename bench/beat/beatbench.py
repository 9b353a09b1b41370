"""
beatbench.py - the measurements behind bench/beat/run.sh (which builds,
starts PostgreSQL and Redis, and calls this with their URLs).

  lateness  N schedules @every 1s for DURATION s on Trireme's beat role:
            per fired slot, job run_at - slot and created_at - slot (the
            database clock when the firing transaction began), and the
            "Sending due task" log line's time (written after the commit)
            - slot. Celery beat (bench/peers/celery_beat_peer.py): N
            entries every 1 s on a Redis broker, message sent - due.
            With SYSTEMS containing trireme-redis, the same on
            --queue-backend=redis: job created_at (Redis' clock, in the
            enqueue script) - slot, and the "Sending due task" log line
            (after the PostgreSQL record) - slot.
  idle      IDLE_N daily schedules at seeded random times of day, loaded;
            CPU% (utime+stime from /proc/PID/stat over IDLE_SECONDS) and
            RSS (VmRSS) of the Trireme beat process, then of Celery beat
            with IDLE_N crontab entries.

Prints one JSON document with every number; run.sh renders it.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

BIN, PG, REDIS, TMP = sys.argv[1:5]
N = int(os.environ.get("N", "100"))
DURATION = int(os.environ.get("DURATION", "12"))
IDLE_N = int(os.environ.get("IDLE_N", "10000"))
IDLE_SECONDS = int(os.environ.get("IDLE_SECONDS", "30"))
SYSTEMS = os.environ.get("SYSTEMS", "trireme celery").split()
PY = os.environ.get("PY", "/usr/bin/python3")
HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "..", "peers")
CLK = os.sysconf("SC_CLK_TCK")


def psql(sql: str) -> str:
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", PG],
                       input=sql, capture_output=True, text=True, timeout=300)
    if p.returncode:
        raise SystemExit(f"psql: {p.stderr}")
    return p.stdout


def pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def stats(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3)}


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def idle_measure(pid: int) -> dict:
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(IDLE_SECONDS)
    t1, c1 = time.monotonic(), cpu_ticks(pid)
    return {"cpu_percent": round(100.0 * (c1 - c0) / CLK / (t1 - t0), 3),
            "cpu_seconds": round((c1 - c0) / CLK, 3), "seconds": round(t1 - t0, 1),
            "rss_kb": rss_kb(pid)}


def start_trireme(log: str, redis: bool = False) -> subprocess.Popen:
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": PG, "LOG_LEVEL": "info"}
    if redis:
        env.update({"REDIS_URL": REDIS, "QUEUE_BACKEND": "redis"})
    f = open(log, "wb")
    return subprocess.Popen([BIN, "run", "--roles=beat", "--threads=1"], stdout=f, stderr=f,
                            env=env)


def wait_log(path: str, pattern: str, timeout: float):
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            if rx.search(f.read()):
                return
        time.sleep(0.05)
    raise SystemExit(f"{pattern!r} not in {path} within {timeout}s")


def stop(p: subprocess.Popen):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def reset():
    psql("SET client_min_messages = warning; TRUNCATE trireme.schedules CASCADE; "
         "TRUNCATE trireme.jobs;")


def log_lateness(log: str, t0: int, t1: int) -> list[float]:
    logged = []
    rx = re.compile(r"^(\S+)Z INFO  Sending due task \S+ slot=(\S+)Z ")
    with open(log) as f:
        for ln in f:
            m = rx.match(ln)
            if not m:
                continue
            ts = datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc).timestamp()
            slot = datetime.fromisoformat(m.group(2)).replace(tzinfo=timezone.utc).timestamp()
            if t0 <= slot <= t1:
                logged.append((ts - slot) * 1000)
    return logged


def trireme_redis_lateness() -> dict:
    reset()
    redis_flush()
    log = os.path.join(TMP, "trireme-redis-lateness.log")
    p = start_trireme(log, redis=True)
    try:
        wait_log(log, r"beat: schedules loaded", 30)
        psql("INSERT INTO trireme.schedules (name, cron, kind) SELECT 'b' || g, '@every 1s', "
             f"'noop' FROM generate_series(1, {N}) g;")
        time.sleep(1.5)
        t0 = int(time.time()) + 1
        time.sleep(DURATION + 1.5)
        t1 = t0 + DURATION - 1
    finally:
        stop(p)
    rows = [ln.split("|") for ln in psql(
        "SELECT extract(epoch FROM f.slot)::bigint, f.job_id FROM trireme.schedule_fires f "
        f"WHERE f.reason = 'due' AND f.slot BETWEEN to_timestamp({t0}) AND "
        f"to_timestamp({t1})").split("\n") if ln]
    cmds = "".join(f"HGET trireme:job:{j} created_at\n" for _, j in rows)
    out = subprocess.run(["redis-cli", "-u", REDIS], input=cmds, capture_output=True, text=True,
                         timeout=120).stdout.split("\n")
    created = [float(c) - int(slot) * 1000 for (slot, _), c in zip(rows, out) if c]
    redis_flush()
    return {"slots_expected": N * DURATION, "created_at": stats(created),
            "committed_log": stats(log_lateness(log, t0, t1))}


def trireme_lateness() -> dict:
    reset()
    log = os.path.join(TMP, "trireme-lateness.log")
    p = start_trireme(log)
    try:
        wait_log(log, r"beat: schedules loaded", 30)
        psql("INSERT INTO trireme.schedules (name, cron, kind) SELECT 'b' || g, '@every 1s', "
             f"'noop' FROM generate_series(1, {N}) g;")
        time.sleep(1.5)  # the inserts' notifications are loaded
        t0 = int(time.time()) + 1
        time.sleep(DURATION + 1.5)
        t1 = t0 + DURATION - 1
    finally:
        stop(p)
    rows = psql("SELECT extract(epoch FROM f.slot)::bigint, "
                "extract(epoch FROM j.run_at - f.slot) * 1000, "
                "extract(epoch FROM j.created_at - f.slot) * 1000, s.name "
                "FROM trireme.schedule_fires f JOIN trireme.jobs j ON j.id = f.job_id "
                "JOIN trireme.schedules s ON s.id = f.schedule_id "
                f"WHERE f.reason = 'due' AND f.slot BETWEEN to_timestamp({t0}) AND "
                f"to_timestamp({t1})").split("\n")
    run_at, created = [], []
    for ln in rows:
        if ln:
            _, a, c, _ = ln.split("|")
            run_at.append(float(a))
            created.append(float(c))
    logged = log_lateness(log, t0, t1)
    expected = N * DURATION
    return {"slots_expected": expected, "run_at": stats(run_at), "created_at": stats(created),
            "committed_log": stats(logged)}


def trireme_idle() -> dict:
    reset()
    rnd = random.Random(1)
    values = ",".join(f"('d{i}', '{rnd.randrange(60)} {rnd.randrange(24)} * * *', 'noop')"
                      for i in range(IDLE_N))
    psql(f"INSERT INTO trireme.schedules (name, cron, kind) VALUES {values};")
    log = os.path.join(TMP, "trireme-idle.log")
    p = start_trireme(log)
    try:
        wait_log(log, rf"beat: schedules loaded schedules={IDLE_N}\b", 60)
        time.sleep(2)
        fired0 = int(psql("SELECT count(*) FROM trireme.schedule_fires").strip())
        m = idle_measure(p.pid)
        m["fired_during"] = int(psql("SELECT count(*) FROM trireme.schedule_fires").strip()) - fired0
    finally:
        stop(p)
    return m


def celery_env(mode: str, n: int, out: str) -> dict:
    return {"PATH": os.environ["PATH"], "BROKER_URL": REDIS, "BEAT_MODE": mode,
            "BEAT_N": str(n), "BEAT_OUT": out, "PYTHONPATH": PEERS}


def celery_start(mode: str, n: int, out: str, log: str) -> subprocess.Popen:
    f = open(log, "wb")
    return subprocess.Popen([PY, "-m", "celery", "-A", "celery_beat_peer", "beat",
                             "-S", "celery_beat_peer.RecordingScheduler", "--loglevel=INFO",
                             "--pidfile="], stdout=f, stderr=f, cwd=TMP,
                            env=celery_env(mode, n, out))


def redis_flush():
    subprocess.run(["redis-cli", "-u", REDIS, "flushall"], capture_output=True, timeout=30)


def celery_lateness() -> dict:
    redis_flush()
    out = os.path.join(TMP, "celery-sends.txt")
    log = os.path.join(TMP, "celery-lateness.log")
    p = celery_start("interval", N, out, log)
    try:
        wait_log(log, r"beat: Starting", 60)
        time.sleep(1.5)
        t0 = time.time()
        time.sleep(DURATION)
        t1 = time.time()
    finally:
        stop(p)
    late, per = [], {}
    with open(out) as f:
        for ln in f:
            name, due, sent = ln.split()
            due, sent = float(due), float(sent)
            if t0 <= due <= t1:
                late.append((sent - due) * 1000)
                per[name] = per.get(name, 0) + 1
    redis_flush()
    return {"sent": stats(late), "slots_expected": N * DURATION,
            "sends_in_window": len(late)}


def celery_idle() -> dict:
    redis_flush()
    log = os.path.join(TMP, "celery-idle.log")
    p = celery_start("idle", IDLE_N, "/dev/null", log)
    try:
        wait_log(log, r"beat: Starting", 120)
        time.sleep(5)
        m = idle_measure(p.pid)
    finally:
        stop(p)
    redis_flush()
    return m


res = {"N": N, "DURATION": DURATION, "IDLE_N": IDLE_N, "IDLE_SECONDS": IDLE_SECONDS}
if "trireme" in SYSTEMS:
    res["trireme_lateness"] = trireme_lateness()
    res["trireme_idle"] = trireme_idle()
if "trireme-redis" in SYSTEMS:
    res["trireme_redis_lateness"] = trireme_redis_lateness()
if "celery" in SYSTEMS:
    res["celery_lateness"] = celery_lateness()
    res["celery_idle"] = celery_idle()
reset()
print(json.dumps(res))
