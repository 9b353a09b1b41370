"""
pgtools.py - PostgreSQL, job API and timing helpers for the job-queue tests
(tests/e2e/test_jobs_*.py). Python stdlib + pytest only: the database is
reached through the `psql` command line, HTTP through http.client.

Test modules load it with `pytest_plugins = ["pgtools"]`, which registers:

- `pg_url` (session): TRIREME_TEST_DATABASE_URL, schema applied once with
  `trireme migrate`. Unset → every test using it fails with a clear message
  (never skipped: the job queue is not optional).
- `db` (per test): a Database on that URL, with trireme.jobs truncated and
  every e2e_* table a test created dropped first, so each test starts empty
  (tests create theirs as public.e2e_*).

Every wait here is bounded; every subprocess has a timeout.
"""
from __future__ import annotations

import http.client as httpclient
import json
import os
import re
import select
import subprocess
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest

from conftest import HOST, run_cli

API_KEY = "e2e-test-key-7f3a"
PSQL_TIMEOUT = 30.0
HTTP_TIMEOUT = 15.0  # generous: the ASan build on 2 cores, a database restarting


# --- waiting -----------------------------------------------------------------

def wait_until(predicate, timeout: float, interval: float = 0.05, what=""):
    """Call predicate until it returns something truthy (returned); after
    `timeout` seconds fail, quoting the last value it returned. `what`
    describes the wait: a string, or a callable evaluated only on failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            desc = what() if callable(what) else (what or predicate)
            raise AssertionError(f"not true within {timeout}s: {desc}; last value: {value!r}")
        time.sleep(interval)


# --- psql --------------------------------------------------------------------

def _psql_env() -> dict[str, str]:
    # PG* variables of the developer's shell would change what psql connects to.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    return env


def sql_literal(v) -> str:
    """A value as an SQL literal (the helpers take no bind parameters)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (dict, list)):
        v = json.dumps(v)
    return "'" + str(v).replace("'", "''") + "'"


class Database:
    def __init__(self, url: str):
        self.url = url

    def psql(self, script: str, timeout: float = PSQL_TIMEOUT) -> str:
        """Run a script (one psql process, statements in order); stdout text.
        Any error fails the call."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.url],
                           input=script, capture_output=True, text=True, timeout=timeout,
                           env=_psql_env())
        if p.returncode != 0:
            raise AssertionError(f"psql failed (exit {p.returncode}): {p.stderr.strip()}\n"
                                 f"script: {script[:500]}")
        return p.stdout

    def exec(self, sql: str):
        self.psql(sql)

    def rows(self, sql: str) -> list[dict]:
        """Rows of one SELECT (or DML ... RETURNING) as dicts, values as json_agg renders them."""
        out = self.psql(f"WITH t AS ({sql}) SELECT coalesce(json_agg(t), '[]')::text FROM t;")
        return json.loads(out.strip())

    def scalar(self, sql: str):
        rows = self.rows(sql)
        assert len(rows) == 1, f"expected one row from {sql!r}, got {rows}"
        return next(iter(rows[0].values()))

    def job(self, job_id) -> dict:
        rows = self.rows(f"SELECT * FROM trireme.jobs WHERE id = {int(job_id)}")
        assert rows, f"job {job_id} not in trireme.jobs"
        return rows[0]

    def status_counts(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in
                self.rows("SELECT status, count(*) AS n FROM trireme.jobs GROUP BY status")}

    def count(self, where: str = "true") -> int:
        return int(self.scalar(f"SELECT count(*) FROM trireme.jobs WHERE {where}"))

    def wait_status(self, job_id, statuses, timeout: float) -> dict:
        """Wait until the job's status is one of `statuses`; returns the row."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(
            self.job(job_id)), timeout, interval=0.1,
            what=lambda: f"job {job_id} reaches {statuses}; now {self.job(job_id)}")

    def wait_all(self, where: str, n: int, timeout: float, interval: float = 0.2):
        """Wait until at least n jobs match `where`."""
        return wait_until(lambda: self.count(where) >= n, timeout, interval=interval,
                          what=lambda: f"{n} jobs with {where}; have {self.status_counts()}")

    def env(self, **extra) -> dict[str, str]:
        """Environment for a server or CLI call using this database."""
        e = {"DATABASE_URL": self.url, "TRIREME_API_KEYS": API_KEY}
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def session(self) -> "PsqlSession":
        return PsqlSession(self.url)


class PsqlSession:
    """One long-lived psql process (one database session), fed statement by
    statement: for holding a transaction open across checks."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                      "-d", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=_psql_env())
        self.n = 0
        self.buf = b""

    def execute(self, sql: str, timeout: float = PSQL_TIMEOUT) -> list[str]:
        """Send statements; returns their output lines once they completed."""
        self.n += 1
        marker = f"__e2e_done_{self.n}__".encode()
        self.proc.stdin.write(f"{sql}\n\\echo {marker.decode()}\n".encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        # Raw reads and our own line splitting: a buffered readline would
        # hide lines that already arrived from select().
        while marker + b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"psql session: {sql!r} did not finish in {timeout}s; "
                                     f"output: {self.buf[-500:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    text = self.buf.decode(errors="replace")
                    errs = [ln for ln in text.splitlines() if "ERROR" in ln or "FATAL" in ln]
                    raise AssertionError(f"psql session ended at {sql!r}: "
                                         f"{' | '.join(errs) or text[-500:]}")
                self.buf += chunk
        out, _, self.buf = self.buf.partition(marker + b"\n")
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("ERROR", "psql:", "FATAL"))]
        if errors:
            raise AssertionError(f"psql session: {sql!r} failed: {' '.join(lines)}")
        return lines

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def url_port(url: str) -> int:
    """The TCP port of a postgresql:// URL (5432 when absent)."""
    return urlsplit(url).port or 5432


# --- HTTP --------------------------------------------------------------------

class ApiResponse:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            raise AssertionError(f"HTTP {self.status} body is not JSON: {self.body[:300]!r}")

    def header(self, name: str):
        return self.headers.get(name)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def http(port: int, method: str, path: str, body=None, key: str | None = API_KEY,
         headers: dict[str, str] | None = None, timeout: float = HTTP_TIMEOUT) -> ApiResponse:
    """One request on a fresh connection. body: bytes/str sent as is, anything
    else as JSON. key: the Bearer API key, None for no Authorization."""
    h = {"Accept": "application/json"}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    if body is not None:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn = httpclient.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return ApiResponse(r.status, r.headers, r.read())
    finally:
        conn.close()


def enqueue(port: int, job, expect: int | None = 201):
    """POST /v1/jobs; returns the answer's JSON (asserting `expect` status)."""
    r = http(port, "POST", "/v1/jobs", job)
    if expect is not None:
        assert r.status == expect, f"POST /v1/jobs {str(job)[:200]} → {r}"
    return r.json


def get_job(port: int, job_id) -> dict:
    r = http(port, "GET", f"/v1/jobs/{job_id}")
    assert r.status == 200, f"GET /v1/jobs/{job_id} → {r}"
    return r.json


# --- server logs -------------------------------------------------------------

LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def log_time(line: str) -> float:
    """Seconds since the epoch of a text log line's timestamp."""
    m = LOG_TS.match(line)
    assert m, f"log line without a timestamp: {line!r}"
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp()


def pg_time(value: str) -> float:
    """Seconds since the epoch of a timestamptz as json_agg renders it."""
    return datetime.fromisoformat(value).timestamp()


def wait_worker_ready(srv, loops: int, timeout: float = 15.0):
    """Every worker loop LISTENs (so NOTIFY wakes it) and has a pooled connection."""
    srv.wait_log(r"worker listening for new jobs", timeout=timeout, count=loops)
    srv.wait_log(r"database connected", timeout=timeout, count=1)


def wait_db_connected(srv, timeout: float = 15.0):
    srv.wait_log(r"database connected", timeout=timeout)


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("TRIREME_TEST_DATABASE_URL")
    if not url:
        pytest.fail("TRIREME_TEST_DATABASE_URL is not set: the job-queue tests need a PostgreSQL "
                    "(tools/test.sh starts one; by hand: tools/pg-local.sh start DIR PORT and "
                    "export the URL it prints, and TRIREME_TEST_PG_DIR=DIR)", pytrace=False)
    r = run_cli("migrate", env={"DATABASE_URL": url}, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"`trireme migrate` against {url} failed (exit {r.returncode}): "
                    f"{r.stderr.strip()}", pytrace=False)
    return url


@pytest.fixture
def db(pg_url) -> Database:
    d = Database(pg_url)
    d.exec("""
SET lock_timeout = '10s';
SET client_min_messages = warning;
TRUNCATE trireme.jobs;
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT schemaname, tablename FROM pg_tables
             WHERE schemaname IN ('public', 'trireme') AND tablename LIKE 'e2e\\_%' LOOP
        EXECUTE format('DROP TABLE %I.%I', t.schemaname, t.tablename);
    END LOOP;
END $$;
""")
    return d
