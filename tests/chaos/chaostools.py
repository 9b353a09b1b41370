"""
chaostools.py - load, fault and count helpers for the chaos scenarios
(test_chaos.py).

A scenario enqueues a steady mix of jobs over HTTP (Load: half `sql` jobs
that each insert one row tagged with a number of their own, half `sleep`
jobs), injects one fault while jobs run, then waits until every job the
API acknowledged is finished and counts:

- lost: acknowledged jobs that did not succeed (missing, dead, or still
  not done after a generous wait), plus `sql` jobs that succeeded without
  their row;
- duplicated: jobs started more than once (attempts > 1; a job handed
  back at a drain gets its attempt back, so it does not count);
- sql_dup: tags with more than one row (an `sql` job's effect applied
  twice; the kind is exactly-once, so this must be 0);
- recovery: seconds from the fault to the moment the last job that was
  running at the fault finished (each scenario says what it measures).

How many times each scenario runs, and how big its load is, come from
CHAOS_RUNS (default 1) and CHAOS_SCALE (default 1): the CI variant is the
defaults, run-long.sh sets both.
"""
from __future__ import annotations

import glob
import os
import random
import subprocess
import threading
import time

import pytest

from pgtools import http, wait_until

RUNS = int(os.environ.get("CHAOS_RUNS", "1"))
SCALE = float(os.environ.get("CHAOS_SCALE", "1"))

STATEMENTS = "add: INSERT INTO public.e2e_chaos (tag) VALUES ($1::int)\n"
MAX_ATTEMPTS = 25  # faults cost attempts; a job must not die of them


def pg_dir() -> str:
    d = os.environ.get("TRIREME_TEST_PG_DIR")
    if not d:
        pytest.fail("TRIREME_TEST_PG_DIR is not set: the chaos suite stops and restarts the "
                    "test PostgreSQL (its data directory)", pytrace=False)
    return d


def pg_ctl(*args: str):
    """pg_ctl on the test PostgreSQL (as the postgres user when we are root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                  key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    assert bins, "pg_ctl not found under /usr/lib/postgresql"
    d = pg_dir()
    cmd = [bins[-1], "-D", d, "-l", os.path.join(d, "server.log"), "-w", "-t", "60", *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=90)
    assert p.returncode == 0, f"pg_ctl {args} failed: {p.stderr}"


def setup_db(db, tmp_path):
    """The side table the sql jobs write to, and the statements file."""
    db.exec("CREATE TABLE public.e2e_chaos (tag int NOT NULL); TRUNCATE trireme.sql_effects;")
    stmts = tmp_path / "chaos-sql.txt"
    stmts.write_text(STATEMENTS)
    return stmts


class Load:
    """Enqueues `total` jobs over HTTP at a steady rate for `seconds`, in a
    thread, in batches of ten (five sql, five sleep). A refused batch (503
    while a store is down) is sent again later; only acknowledged jobs are
    counted. `sleep_ms` bounds the sleep jobs' durations."""

    def __init__(self, port: int, total: int, seconds: float, sleep_ms=(50, 250)):
        self.port = port
        self.total = total
        self.seconds = seconds
        self.sleep_ms = sleep_ms
        self.ids: list[int] = []
        self.sql_tags: dict[int, int] = {}  # job id -> tag
        self.refused = 0
        self.errors: list[str] = []
        self.answers: list[tuple[float, int, float, str | None]] = []  # (t, status, secs, Retry-After)
        self.rng = random.Random(1234)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _batch(self, first_tag: int):
        jobs, tags = [], []
        for i in range(10):
            if i % 2 == 0:
                tag = first_tag + i // 2
                tags.append(tag)
                jobs.append({"kind": "sql", "payload": {"statement": "add", "params": [tag]},
                             "max_attempts": MAX_ATTEMPTS})
            else:
                jobs.append({"kind": "sleep", "payload": {"ms": self.rng.randint(*self.sleep_ms)},
                             "max_attempts": MAX_ATTEMPTS})
        return jobs, tags

    def _run(self):
        batches = max(1, self.total // 10)
        every = self.seconds / batches
        t0 = time.monotonic()
        sent = 0
        tag = 1
        while sent < batches and not self._stop.is_set():
            jobs, tags = self._batch(tag)
            t = time.monotonic()
            try:
                r = http(self.port, "POST", "/v1/jobs", jobs, timeout=20)
            except Exception as e:  # noqa: BLE001 - reported by the scenario
                self.errors.append(repr(e))
                self._stop.wait(0.1)
                continue
            took = time.monotonic() - t
            self.answers.append((time.time(), r.status, took, r.header("Retry-After")))
            if r.status == 201:
                got = [j["id"] for j in r.json["jobs"]]
                self.ids += got
                for k, tg in enumerate(tags):
                    self.sql_tags[got[2 * k]] = tg
                tag += 5
                sent += 1
            else:
                self.refused += 1
                self._stop.wait(0.05)
                continue
            self._stop.wait(max(0.0, t0 + sent * every - time.monotonic()))

    def join(self, timeout: float = 120):
        self._t.join(timeout)
        assert not self._t.is_alive(), "the load thread hung"
        assert not self.errors, f"requests failed without an HTTP answer: {self.errors[:5]}"

    def stop(self):
        self._stop.set()
        self.join()

    def wait_started(self, n: int, timeout: float = 20):
        wait_until(lambda: len(self.ids) >= n, timeout, what=f"{n} jobs enqueued")


def id_list(ids) -> str:
    return ",".join(str(int(i)) for i in ids) or "0"


class PgCount:
    """The counts on the PostgreSQL backend (straight from the tables)."""

    def __init__(self, db):
        self.db = db

    def running(self, worker_pid: int | None = None) -> list[int]:
        where = "status = 'running'"
        if worker_pid:
            where += f" AND worker_id LIKE '%:{int(worker_pid)}:%'"
        return [r["id"] for r in self.db.rows(f"SELECT id FROM trireme.jobs WHERE {where}")]

    def wait_done(self, ids, timeout: float):
        """Until every id has finished (any end state) or the time is up."""
        ids = list(ids)
        try:
            wait_until(lambda: self.db.count(f"id IN ({id_list(ids)}) AND status IN "
                                             f"('succeeded', 'dead', 'cancelled')") >= len(ids),
                       timeout, interval=0.25, what="every acknowledged job finished")
        except AssertionError:
            pass  # what is not done counts as lost below

    def finished_at(self, ids) -> list[float]:
        rows = self.db.rows("SELECT extract(epoch FROM finished_at)::float8 AS f FROM trireme.jobs "
                            f"WHERE id IN ({id_list(ids)}) AND finished_at IS NOT NULL")
        return [float(r["f"]) for r in rows]

    def counts(self, load: Load) -> dict:
        ids = id_list(load.ids)
        ok = int(self.db.scalar(f"SELECT count(*) FROM trireme.jobs WHERE id IN ({ids}) "
                                "AND status = 'succeeded'"))
        dup = int(self.db.scalar(f"SELECT count(*) FROM trireme.jobs WHERE id IN ({ids}) "
                                 "AND attempts > 1"))
        return effects(self.db, load, len(load.ids) - ok, dup)


class RedisCount:
    """The counts on the Redis backend (through the job API of a web role)."""

    def __init__(self, port: int):
        self.port = port

    def job(self, jid: int) -> dict | None:
        r = http(self.port, "GET", f"/v1/jobs/{jid}")
        return r.json if r.status == 200 else None

    def running(self) -> list[int]:
        r = http(self.port, "GET", "/v1/jobs?status=running&limit=500")
        assert r.status == 200, r
        return [j["id"] for j in r.json["jobs"]]

    def wait_done(self, ids, timeout: float):
        left = set(ids)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            for jid in list(left):
                j = self.job(jid)
                if j and j["status"] in ("succeeded", "dead", "cancelled"):
                    left.discard(jid)
            if left:
                time.sleep(0.25)

    def finished_at(self, ids) -> list[float]:
        from datetime import datetime
        out = []
        for jid in ids:
            j = self.job(jid)
            if j and j.get("finished_at"):
                out.append(datetime.fromisoformat(j["finished_at"].replace("Z", "+00:00"))
                           .timestamp())
        return out

    def counts(self, load: Load, db) -> dict:
        bad, dup = 0, 0
        for jid in load.ids:
            j = self.job(jid)
            if not j or j["status"] != "succeeded":
                bad += 1
            elif j["attempts"] > 1:
                dup += 1
        return effects(db, load, bad, dup)


def effects(db, load: Load, lost: int, dup: int) -> dict:
    """Adds the sql side table's counts: rows applied twice, and acknowledged
    sql jobs with no row (an effect lost: counted with the lost jobs)."""
    rows = db.rows("SELECT tag, count(*) AS n FROM public.e2e_chaos GROUP BY tag")
    per_tag = {int(r["tag"]): int(r["n"]) for r in rows}
    sql_dup = sum(1 for n in per_tag.values() if n > 1)
    missing = sum(1 for t in load.sql_tags.values() if per_tag.get(t, 0) == 0)
    return {"jobs": len(load.ids), "lost": lost + missing, "duplicated": dup,
            "sql_dup": sql_dup, "sql_missing": missing}


def recovery(finished: list[float], t_fault: float, floor: float = 0.0) -> float:
    """Seconds from the fault until the last of `finished` (never below floor)."""
    return max([floor] + [f - t_fault for f in finished])


def check(rec: dict):
    """The invariants every scenario holds to."""
    assert rec["jobs"] > 0, rec
    assert rec["lost"] == 0, f"jobs lost: {rec}"
    assert rec["sql_dup"] == 0, f"an sql job's effect applied twice: {rec}"
    assert rec["duplicated"] <= rec["dup_bound"], f"more jobs ran twice than were in flight: {rec}"
