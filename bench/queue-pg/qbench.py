#!/usr/bin/env python3
"""Measurements for bench/queue-pg/run.sh (loopback only).

Run with Debian's /usr/bin/python3 (psycopg2, redis and celery come from
Debian packages). run.sh exports the settings below and calls:

  qbench.py freeport                 a free TCP port on 127.0.0.1
  qbench.py burndown SYSTEM          (a) pre-insert N jobs, start the worker, time until none left
  qbench.py sustained SYSTEM         (b) enqueue for DURATION s while the worker drains
  qbench.py latency SYSTEM           (c) enqueue->start latency, one job at a time, idle queue
  qbench.py enqueue_cost trireme     (c) SELECT trireme.enqueue() against the plain INSERT, alternating
  qbench.py versions                 versions of everything, as JSON
  qbench.py report                   the RESULTS.md section (markdown) on stdout

SYSTEM: trireme, python1 / python2 (bench/peers/pg_skip_locked_worker.py, 1
or 2 processes) or celery; for latency also trireme-http (enqueue by POST
/v1/jobs instead of SELECT trireme.enqueue()). Each measurement appends one
JSON object to $QB_OUT. One that goes wrong (the worker exits, jobs stay
pending, counts do not add up, a statement fails) is recorded with ok=false
and what was seen, and the command still exits 0 so the run goes on.

Every process started here runs in its own session and is stopped (SIGTERM,
then SIGKILL of its process group after QB_STOP_WAIT seconds) before the
command returns, also on SIGTERM/SIGINT. Every loop is bounded.

Environment (set by run.sh): DATABASE_URL, QB_PGDATA, QB_OUT, QB_TMP, QB_SRC,
QB_TR_BIN, QB_THREADS, QB_TR_FLAGS, QB_PY, QB_PEERS, QB_REDIS_URL,
QB_REDIS_PID, QB_N, QB_CELERY_N, QB_DURATION, QB_LAT_N, QB_LAT_WARMUP,
QB_LAT_GAP_MS, QB_COST_N, QB_POLL_MS, QB_TIMEOUT, QB_STALL, QB_PY_BATCH,
QB_PY_PRODUCERS, QB_WRK_CONNS, QB_WRK_THREADS, QB_CELERY_CONCURRENCY,
QB_STOP_WAIT; for the report also QB_STARTED, QB_NOTE, QB_KERNEL, QB_CPU,
QB_NPROC, QB_MEM_GIB, QB_LOAD_START, QB_LOAD_END, QB_GIT, QB_ZIG,
QB_COMMAND, QB_BUILD, QB_VERSIONS_FILE.
"""
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

E = os.environ


def env_int(name, default):
    v = E.get(name, "")
    return int(v) if v.strip() else default


def env_float(name, default):
    v = E.get(name, "")
    return float(v) if v.strip() else default


POLL = env_int("QB_POLL_MS", 100) / 1000.0
TIMEOUT = env_float("QB_TIMEOUT", 900)  # one burn-down or drain, seconds
STALL = env_float("QB_STALL", 30)  # no progress for this long = stuck
STOP_WAIT = env_float("QB_STOP_WAIT", 15)
CLK = os.sysconf("SC_CLK_TCK")
QUEUE_CELERY = "bench_noop"
TR_LAT_SQL = "SELECT trireme.enqueue('noop')"
PEER_SQL = "INSERT INTO trireme.jobs (kind) VALUES ('noop') RETURNING id"


def log(msg):
    sys.stderr.write("qbench: %s\n" % msg)
    sys.stderr.flush()


def tmp(name):
    return os.path.join(E["QB_TMP"], name)


# ----------------------------------------------------------------- processes

class Procs:
    """Processes this command started. They are reaped here with wait4, so
    the CPU time of one that already exited is still known (cpu_s)."""

    def __init__(self):
        self.items = []  # (name, Popen)
        self.cpu_s = {}  # pid -> user+system seconds, once reaped

    def spawn(self, name, cmd, env=None, cwd=None, stdout_path=None):
        logf = open(tmp(name + ".log"), "ab")
        outf = open(stdout_path, "wb") if stdout_path else logf
        full_env = dict(E)
        full_env.update(env or {})
        p = subprocess.Popen(cmd, stdout=outf, stderr=logf, env=full_env, cwd=cwd,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        if outf is not logf:
            outf.close()
        self.items.append((name, p))
        return p

    def poll(self, p):
        if p.returncode is None:
            try:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            except ChildProcessError:
                p.returncode = -1
                return p.returncode
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s[p.pid] = ru.ru_utime + ru.ru_stime
        return p.returncode

    def wait(self, p, timeout):
        end = time.monotonic() + timeout
        while self.poll(p) is None and time.monotonic() < end:
            time.sleep(0.02)
        return p.returncode

    def stop(self, p):
        if self.poll(p) is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(p, STOP_WAIT) is None:
                log("pid %d did not stop %.0f s after SIGTERM: SIGKILL" % (p.pid, STOP_WAIT))
        try:  # whatever is left of its session (celery's pool children, say)
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.wait(p, 5)
        return p.returncode

    def stop_all(self):
        return {name: self.stop(p) for name, p in reversed(self.items)}


PROCS = Procs()


def on_term(signum, frame):
    raise SystemExit(128 + signum)


# ----------------------------------------------------------------- CPU from /proc

def all_stats():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()  # rest[0] is field 3 (state)
        out[int(d)] = (int(rest[1]), [int(x) for x in rest[11:15]])  # ppid, utime stime cutime cstime
    return out


def tree_ticks(roots, stats):
    """utime+stime+cutime+cstime of roots and all their descendants (a child
    that exited and was reaped is in its parent's cutime/cstime)."""
    kids = {}
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo, total = set(), [r for r in roots if r], 0
    while todo:
        p = todo.pop()
        if p in seen or p not in stats:
            continue
        seen.add(p)
        total += sum(stats[p][1])
        todo.extend(kids.get(p, []))
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])  # guest time is already inside user
    return total - idle, total


def pg_pid():
    try:
        with open(os.path.join(E["QB_PGDATA"], "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError, KeyError):
        return 0


class CpuMeter:
    """CPU seconds of process groups (trees), of this harness alone and of the
    whole machine, between two samples."""

    def __init__(self, groups):
        self.groups = groups  # name -> callable returning root pids

    def sample(self):
        st = all_stats()
        busy, total = machine_ticks()
        me = st.get(os.getpid(), (0, [0, 0, 0, 0]))[1]
        return {"t": time.monotonic(), "busy": busy, "total": total, "self": me[0] + me[1],
                "g": {n: tree_ticks(f(), st) for n, f in self.groups.items()}}

    @staticmethod
    def delta(a, b, extra=None):
        """extra: name -> CPU seconds of processes reaped in between."""
        wall = b["t"] - a["t"]
        d = {"wall_s": round(wall, 3), "ncpu": os.cpu_count() or 1}
        for n in b["g"]:
            d[n + "_cpu_s"] = round((b["g"][n] - a["g"].get(n, 0)) / CLK + (extra or {}).get(n, 0), 2)
        d["harness_cpu_s"] = round((b["self"] - a["self"]) / CLK, 2)
        tot = b["total"] - a["total"]
        d["machine_busy_pct"] = round(100.0 * (b["busy"] - a["busy"]) / tot, 1) if tot else None
        d["machine_cpu_s"] = round((b["busy"] - a["busy"]) / CLK, 2)
        return d


# ----------------------------------------------------------------- helpers

def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listen(port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def pct(s, p):
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)] if s else None


def dist(vals):
    s = sorted(vals)
    if not s:
        return {}
    return {"n": len(s), "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
            "max": s[-1], "min": s[0], "mean": sum(s) / len(s)}


def log_summary(path, limit=6):
    """Lines at WARN or worse (Trireme's text log; tracebacks of the peers)."""
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return {"lines": 0, "warn_or_worse": 0, "first": [], "tail": []}
    bad = [l for l in lines if re.search(r"\b(WARN|ERROR|FATAL|Traceback|CRITICAL)\b", l)]
    return {"lines": len(lines), "warn_or_worse": len(bad), "first": bad[:limit], "tail": lines[-limit:]}


def pg_error_text(e):
    txt = (getattr(e, "pgerror", None) or str(e)).strip()
    return re.sub(r"\s+", " ", txt)


# ----------------------------------------------------------------- PostgreSQL

def pg():
    import psycopg2

    c = psycopg2.connect(E["DATABASE_URL"], application_name="qbench")
    c.autocommit = True
    return c


def q1(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def qall(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def has_pgss(conn):
    return bool(q1(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")[0])


def db_prepare(conn, fill=0):
    """The same start for every PostgreSQL run: empty (or N fresh pending
    jobs), vacuumed, analyzed, checkpointed, statistics reset."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE trireme.jobs RESTART IDENTITY")
        cur.execute("VACUUM ANALYZE trireme.jobs")
        if fill:
            cur.execute("INSERT INTO trireme.jobs (kind) SELECT 'noop' FROM generate_series(1, %s)", (fill,))
            cur.execute("VACUUM ANALYZE trireme.jobs")
        cur.execute("CHECKPOINT")
        if has_pgss(conn):
            cur.execute("SELECT pg_stat_statements_reset()")


def pgss_top(conn, limit=6):
    """Top statements by total execution time, and the total over all."""
    if not has_pgss(conn):
        return [], None
    where = ("FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
             "WHERE d.datname = current_database() AND query NOT ILIKE '%%pg_stat_statements%%'")
    rows = qall(conn, "SELECT regexp_replace(left(query, 3000), '\\s+', ' ', 'g'), calls, total_exec_time, rows "
                + where + " ORDER BY total_exec_time DESC LIMIT %s", (limit,))
    total = q1(conn, "SELECT coalesce(sum(total_exec_time), 0) " + where)[0]
    return ([{"query": r[0], "calls": r[1], "total_ms": round(r[2], 1), "rows": r[3]} for r in rows],
            round(float(total), 1))


def pg_counters(conn):
    q1(conn, "SELECT pg_stat_force_next_flush()")
    r = q1(conn, """SELECT d.xact_commit, w.wal_records, w.wal_bytes, w.wal_write, w.wal_sync
                    FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()""")
    return dict(zip(("commits", "wal_records", "wal_bytes", "wal_writes", "wal_syncs"), (int(x) for x in r)))


def counters_delta(a, b):
    return {k: b[k] - a[k] for k in a}


class Waits:
    """What the database's active client backends wait on, sampled."""

    SQL = """SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU (no wait event)'), count(*)
             FROM pg_stat_activity
             WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
               AND datname = current_database()
             GROUP BY 1"""

    def __init__(self, conn):
        self.conn, self.samples, self.tally = conn, 0, {}

    # PostgreSQL serializes the commits of transactions that sent NOTIFY with
    # a lock on "object 0 of pg_database" (async.c, PreCommit_Notify), held
    # through the commit record's flush: the waiters show as Lock:object.
    NOTIFY_LOCK = """SELECT count(*) FROM pg_locks
                     WHERE locktype = 'object' AND classid = 'pg_database'::regclass AND objid = 0
                       AND NOT granted"""

    def sample(self):
        self.samples += 1
        for w, n in qall(self.conn, self.SQL):
            self.tally[w] = self.tally.get(w, 0) + n
        self.notify_waiters = getattr(self, "notify_waiters", 0) + q1(self.conn, self.NOTIFY_LOCK)[0]

    def result(self):
        top = sorted(self.tally.items(), key=lambda kv: -kv[1])[:6]
        return {"samples": self.samples,
                "top": [[w, round(n / max(self.samples, 1), 2)] for w, n in top],
                "notify_lock_waiters": round(getattr(self, "notify_waiters", 0) / max(self.samples, 1), 2)}


def job_counts(conn):
    rows = qall(conn, "SELECT status, count(*), sum(attempts) FROM trireme.jobs GROUP BY 1 ORDER BY 1")
    return {r[0]: {"count": r[1], "attempts": int(r[2] or 0)} for r in rows}


def open_count(conn):
    return q1(conn, "SELECT count(*) FROM trireme.jobs WHERE status IN ('pending', 'running')")[0]


def any_open(conn):
    """Whether any job is pending or running, cheaply enough for ten times a
    second during a burn-down: a count (or an EXISTS that meets dead index
    entries first) costs tens of ms of PostgreSQL CPU on 200,000 rows. The
    jobs are claimed lowest id first, so the highest open id stays open the
    longest and a backward primary-key scan finds it at once; only the last
    poll, when none is left, walks the table. Confirmed by a count."""
    if q1(conn, """SELECT id FROM trireme.jobs WHERE status IN ('pending', 'running')
                   ORDER BY id DESC LIMIT 1""") is not None:
        return True
    return open_count(conn) > 0


def c_define(src, header, name):
    """The string a C header #defines, as the C preprocessor expands it (so
    macros inside it, such as a stringified limit, become their text)."""
    unit = '#include "%s"\nQB_BEGIN %s QB_END\n' % (header, name)
    cc = ["cc"] if shutil.which("cc") else ["python3", "-m", "ziglang", "cc"]  # the build's own
    p = subprocess.run(cc + ["-E", "-P", "-I", src, "-isystem", "/usr/include/postgresql",
                             "-x", "c", "-"], input=unit, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("cc -E %s: %s" % (header, p.stderr.strip()[:300]))
    m = re.search(r"QB_BEGIN(.*)QB_END", p.stdout, re.S)
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)) if m else []
    return "".join(parts).replace('\\"', '"').replace("\\\\", "\\") or None


def explain(conn, sql, args):
    """EXPLAIN ANALYZE of a statement that writes, rolled back."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, args)
            return [r[0] for r in cur.fetchall()]
        finally:
            cur.execute("ROLLBACK")


def explain_claims(conn, limit=100):
    """Trireme's claim statement as the source defines it, and the peer's,
    on the freshly filled table: how each finds the next jobs."""
    res = {"limit": limit}
    try:
        sql = c_define(E["QB_SRC"], "modules/queue/pg_worker_sql.h", "SQL_CLAIM")
        if sql:
            # PQsendQueryParams with an unnamed statement: planned with the values (custom plan).
            with conn.cursor() as cur:
                cur.execute("DEALLOCATE ALL")
                cur.execute("PREPARE qb_claim AS " + sql)
            res["trireme"] = explain(conn, "EXECUTE qb_claim(%s, %s, %s, %s)",
                                     ("{default}", str(limit), "qbench-explain", "30000"))
            with conn.cursor() as cur:
                cur.execute("DEALLOCATE qb_claim")
        sys.path.insert(0, E["QB_PEERS"])
        import pg_skip_locked_worker as peer

        res["peer"] = explain(conn, peer.CLAIM, {"queue": "default", "limit": limit})
    except Exception as e:  # noqa: BLE001 - diagnostics only
        res["error"] = "%s: %s" % (type(e).__name__, pg_error_text(e))
    return res


def out(rec):
    rec["at"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with open(E["QB_OUT"], "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    brief = {k: rec[k] for k in ("test", "system", "ok", "error", "jobs_per_s", "busy_jobs_per_s",
                                 "e2e_jobs_per_s", "http_req_per_s") if k in rec}
    if rec.get("start"):
        brief["p50_ms"], brief["p99_ms"] = rec["start"].get("p50"), rec["start"].get("p99")
    log("result %s" % json.dumps(brief))


# ----------------------------------------------------------------- the systems' commands

def tr_cmd(roles, port=None, tuned=False):
    cmd = [E["QB_TR_BIN"], "run", "--roles=" + roles, "--threads=" + E.get("QB_THREADS", "0"),
           "--migrate=off", "--log-level=warn"]
    if port:
        cmd += ["--host=127.0.0.1", "--port=%d" % port, "--access-log=false"]
    cmd += E.get("QB_TR_FLAGS", "").split()
    return cmd + (E.get("QB_TUNED_FLAGS", "").split() if tuned else [])


def py_worker_cmd():
    return [E["QB_PY"], os.path.join(E["QB_PEERS"], "pg_skip_locked_worker.py"),
            "--dsn", E["DATABASE_URL"], "--batch", str(env_int("QB_PY_BATCH", 20))]


def py_producer_cmd(seconds):
    return [E["QB_PY"], os.path.join(E["QB_PEERS"], "pg_producer.py"),
            "--dsn", E["DATABASE_URL"], "--seconds", str(seconds)]


def celery_cmd():
    return [E["QB_PY"], "-m", "celery", "-A", "celery_noop", "worker",
            "--concurrency=%d" % env_int("QB_CELERY_CONCURRENCY", 2), "--pool=prefork",
            "-Q", QUEUE_CELERY, "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel=WARNING"]


def shown(cmd):
    """A command line for the report, machine-specific parts replaced."""
    s = " ".join(cmd)
    for var, name in (("DATABASE_URL", "$DATABASE_URL"), ("QB_TR_BIN", "trireme"),
                      ("QB_PY", "python3")):
        if E.get(var):
            s = s.replace(E[var], name)
    if E.get("QB_PEERS"):
        s = s.replace(E["QB_PEERS"] + "/", "bench/peers/")
    return re.sub(r"--port=\d+", "--port=<free>", s)


def start_workers(system):
    """SYSTEM's worker process(es) for the PostgreSQL queue: (procs, command)."""
    if system in ("trireme", "trireme-tuned"):
        cmd = tr_cmd("worker", tuned=system == "trireme-tuned")
        return [PROCS.spawn("trireme-worker", cmd)], shown(cmd)
    k = {"python1": 1, "python2": 2}[system]
    cmd = py_worker_cmd()
    ps = [PROCS.spawn("pyworker%d" % i, cmd, stdout_path=tmp("pyworker%d.out" % i)) for i in range(k)]
    return ps, shown(cmd) + ("" if k == 1 else "  (%d processes)" % k)


def py_worker_outputs(k=2):
    res = []
    for i in range(k):
        try:
            with open(tmp("pyworker%d.out" % i)) as f:
                lines = f.read().strip().splitlines()
            if lines:
                res.append(json.loads(lines[-1]))
            os.unlink(tmp("pyworker%d.out" % i))
        except (OSError, ValueError):
            pass
    return res


def start_trireme_web(conn, name):
    """trireme --roles=web,worker on a free port, one job through the API and
    the worker before returning: (proc, port, key, command) or raises."""
    port = freeport()
    key = secrets.token_hex(16)
    cmd = tr_cmd("web,worker", port)
    p = PROCS.spawn(name, cmd, env={"TRIREME_API_KEYS": key})
    if not wait_listen(port, 20):
        raise RuntimeError("trireme did not listen on 127.0.0.1:%d within 20 s" % port)
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, body = post_job(h, key)
    h.close()
    if status not in (200, 201):
        raise RuntimeError("probe POST /v1/jobs answered %s: %s" % (status, body[:300]))
    jid = json.loads(body)["id"]
    end = time.monotonic() + 20
    while q1(conn, "SELECT status FROM trireme.jobs WHERE id = %s", (jid,))[0] != "succeeded":
        if time.monotonic() > end:
            raise RuntimeError("probe job %s not succeeded 20 s after POST /v1/jobs" % jid)
        time.sleep(0.02)
    return p, port, key, shown(cmd)


def post_job(h, key):
    h.request("POST", "/v1/jobs", body=b'{"kind":"noop"}',
              headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    resp = h.getresponse()
    return resp.status, resp.read().decode(errors="replace")


# ----------------------------------------------------------------- (a) burn-down

def burndown(system):
    if system == "celery":
        return celery_burndown()
    n = env_int("QB_N", 200000)
    conn = pg()
    rec = {"test": "burndown", "system": system, "n": n, "ok": False}
    log("%s burn-down: %d jobs" % (system, n))
    db_prepare(conn, fill=n)
    if system in ("trireme", "trireme-tuned"):
        rec["explain"] = explain_claims(conn)
        q1(conn, "SELECT pg_stat_statements_reset()") if has_pgss(conn) else None
    procs = []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs], "pg": lambda: [pg_pid()]})
    waits = Waits(conn)
    k0 = pg_counters(conn)
    c0 = meter.sample()
    t_spawn = time.time()
    procs, rec["command"] = start_workers(system)
    last, last_change, err, c1 = n, time.monotonic(), None, None
    end = time.monotonic() + TIMEOUT
    next_count = time.monotonic() + 5
    left = n
    while True:
        time.sleep(POLL)
        if not any_open(conn):
            c1 = meter.sample()
            rec["wall_s_polled"] = round(time.time() - t_spawn, 3)
            break
        now = time.monotonic()
        waits.sample()
        if now >= next_count:  # progress, for the stall check: a count every 5 s
            next_count = now + 5
            left = open_count(conn)
            if left != last:
                last, last_change = left, now
        dead = [(p.pid, p.returncode) for p in procs if PROCS.poll(p) is not None]
        if dead:
            err = "worker exited (pid, exit code) %s with %d jobs pending or running" % (dead, left)
            break
        if now - last_change > STALL:
            err = "stuck: %d jobs pending or running, no progress for %.0f s" % (left, STALL)
            break
        if now > end:
            err = "timeout: %d jobs pending or running after %.0f s" % (left, TIMEOUT)
            break
    rec.update(CpuMeter.delta(c0, c1 or meter.sample()))
    rec["waits"] = waits.result()
    rec["counts_at_end"] = job_counts(conn)
    rec["exit_codes"] = [PROCS.stop(p) for p in procs]
    time.sleep(0.5)  # exited backends flush their statistics
    rec["pg"] = counters_delta(k0, pg_counters(conn))
    rec["counts_after_stop"] = job_counts(conn)
    succ, total, attempts, first_start, last_finish = q1(conn, """
        SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*), coalesce(sum(attempts), 0),
               extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at))
        FROM trireme.jobs""")
    rec.update({"succeeded": succ, "rows": total, "attempts": int(attempts), "poll_ms": POLL * 1000})
    rec["pgss"], rec["pgss_total_ms"] = pgss_top(conn)
    if system in ("trireme", "trireme-tuned"):
        rec["log"] = log_summary(tmp("trireme-worker.log"))
    else:
        rec["peer_out"] = py_worker_outputs()
        rec["log"] = log_summary(tmp("pyworker0.log"))
    if first_start is not None and last_finish is not None and succ:
        first_start, last_finish = float(first_start), float(last_finish)
        rec["wall_s_to_last"] = round(last_finish - t_spawn, 3)
        rec["jobs_per_s"] = round(succ / (last_finish - t_spawn))
        rec["start_ms"] = round((first_start - t_spawn) * 1000, 1)
        rec["busy_s"] = round(last_finish - first_start, 3)
        rec["busy_jobs_per_s"] = round(succ / max(last_finish - first_start, 1e-6))
    if err is None:
        if succ != n or total != n:
            err = "wrong counts: %d rows, %d succeeded, %d expected" % (total, succ, n)
        elif int(attempts) != n:
            err = "%d attempts for %d jobs (some ran more than once)" % (attempts, n)
    rec["error"], rec["ok"] = err, err is None
    conn.close()
    out(rec)


def celery_app():
    sys.path.insert(0, E["QB_PEERS"])
    os.environ["BENCH_REDIS_URL"] = E["QB_REDIS_URL"]
    import celery_noop

    return celery_noop


def celery_burndown():
    import redis

    n = env_int("QB_CELERY_N", 20000)
    rec = {"test": "burndown", "system": "celery", "n": n, "ok": False}
    r = redis.Redis.from_url(E["QB_REDIS_URL"])
    r.flushdb()
    mod = celery_app()
    log("celery burn-down: enqueueing %d tasks with apply_async" % n)
    t0 = time.monotonic()
    for _ in range(n):
        mod.noop.apply_async(queue=QUEUE_CELERY)
    enq = time.monotonic() - t0
    rec["enqueue_s"], rec["enqueue_per_s"] = round(enq, 3), round(n / enq)
    rec["queued"] = r.llen(QUEUE_CELERY)
    procs = []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs],
                      "redis": lambda: [env_int("QB_REDIS_PID", 0)]})
    c0 = meter.sample()
    t_spawn = time.time()
    cmd = celery_cmd()
    procs = [PROCS.spawn("celery-worker", cmd, cwd=E["QB_PEERS"],
                         env={"BENCH_REDIS_URL": E["QB_REDIS_URL"], "BENCH_TARGET": str(n)})]
    rec["command"] = shown(cmd) + "  (in bench/peers)"
    last, last_change, err, c1 = 0, time.monotonic(), None, None
    end = time.monotonic() + TIMEOUT
    while True:
        time.sleep(POLL)
        done = int(r.get("bench:done") or 0)
        now = time.monotonic()
        if done >= n:
            c1 = meter.sample()
            break
        if done != last:
            last, last_change = done, now
        if PROCS.poll(procs[0]) is not None:
            err = "celery worker exited (exit code %s) at %d of %d" % (procs[0].returncode, done, n)
            break
        if now - last_change > STALL + 30:  # + celery's start-up
            err = "stuck at %d of %d for %.0f s" % (done, n, STALL + 30)
            break
        if now > end:
            err = "timeout at %d of %d" % (done, n)
            break
    rec.update(CpuMeter.delta(c0, c1 or meter.sample()))
    rec["queue_left"] = r.llen(QUEUE_CELERY)
    rec["exit_codes"] = [PROCS.stop(procs[0])]
    done = int(r.get("bench:done") or 0)
    rec["succeeded"] = done
    done_at, first_at = r.get("bench:done_at"), r.get("bench:first_at")
    if done_at and first_at:
        done_at, first_at = float(done_at), float(first_at)
        rec["wall_s_to_last"] = round(done_at - t_spawn, 3)
        rec["jobs_per_s"] = round(n / (done_at - t_spawn))
        rec["start_ms"] = round((first_at - t_spawn) * 1000, 1)
        rec["busy_s"] = round(done_at - first_at, 3)
        rec["busy_jobs_per_s"] = round(n / max(done_at - first_at, 1e-6))
    rec["log"] = log_summary(tmp("celery-worker.log"))
    if err is None and (done != n or rec["queue_left"]):
        err = "wrong counts: %d done of %d, %d left in the queue" % (done, n, rec["queue_left"])
    rec["error"], rec["ok"] = err, err is None
    out(rec)


# ----------------------------------------------------------------- (b) sustained

WRK_LUA = """-- generated by bench/queue-pg/qbench.py: one job per request
wrk.method = "POST"
wrk.body = '{"kind":"noop"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def parse_wrk(text):
    def ms(v):
        for suf, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
            if v.endswith(suf):
                return float(v[: -len(suf)]) * f
        return float(v)

    res = {}
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    res["http_req_per_s"] = round(float(m.group(1))) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+),", text)
    res["http_requests"] = int(m.group(1)) if m else None
    for p in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+\w+)" % p, text, re.M)
        res["http_p%s_ms" % p] = round(ms(m.group(1)), 3) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    res["http_non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["http_socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def sustained(system):
    dur = env_int("QB_DURATION", 60)
    conn = pg()
    rec = {"test": "sustained", "system": system, "duration_s": dur, "ok": False}
    log("%s sustained: %d s" % (system, dur))
    db_prepare(conn)
    procs, loaders = [], []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs], "load": lambda: [p.pid for p in loaders],
                      "pg": lambda: [pg_pid()]})
    waits = Waits(conn)
    err = None
    k0 = pg_counters(conn)
    if system == "trireme":
        try:
            p, port, key, rec["command"] = start_trireme_web(conn, "trireme-web-worker")
            procs = [p]
        except Exception as e:  # noqa: BLE001 - Trireme did not come up: that is the result
            rec["error"] = str(e)
            PROCS.stop_all()
            rec["log"] = log_summary(tmp("trireme-web-worker.log"))
            return out(rec)
        lua = tmp("post_noop.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA % key)
        conns, wthreads = env_int("QB_WRK_CONNS", 64), env_int("QB_WRK_THREADS", 2)
        wrk = ["wrk", "-t%d" % wthreads, "-c%d" % conns, "-d%ds" % dur, "--latency", "-s", lua,
               "http://127.0.0.1:%d/v1/jobs" % port]
        rec["load_command"] = "wrk -t%d -c%d -d%ds --latency -s post_noop.lua http://127.0.0.1:<port>/v1/jobs" % (
            wthreads, conns, dur)
        c0 = meter.sample()
        t0 = time.time()
        loaders = [PROCS.spawn("wrk", wrk, stdout_path=tmp("wrk.txt"))]
    else:
        procs, rec["command"] = start_workers(system)
        time.sleep(1.0)  # connected and listening
        k = env_int("QB_PY_PRODUCERS", 2)
        pcmd = py_producer_cmd(dur)
        rec["load_command"] = shown(pcmd) + "  (%d processes; %s)" % (k, PEER_SQL.replace("'noop'", "%s"))
        c0 = meter.sample()
        t0 = time.time()
        loaders = [PROCS.spawn("producer%d" % i, pcmd, stdout_path=tmp("producer%d.out" % i))
                   for i in range(k)]
    end = time.monotonic() + dur + 60
    while time.monotonic() < end and any(PROCS.poll(p) is None for p in loaders):
        time.sleep(0.1)
        waits.sample()
        if any(PROCS.poll(p) is not None for p in procs):
            err = "worker exited during the load (exit codes %s)" % [p.returncode for p in procs]
            break
    t1 = time.time()
    c1 = meter.sample()
    backlog = open_count(conn)
    for p in loaders:
        if PROCS.poll(p) is None:
            err = err or "load generator still running 60 s after its end"
            PROCS.stop(p)
    reaped = sum(PROCS.cpu_s.get(p.pid, 0) for p in loaders)
    rec.update(CpuMeter.delta(c0, c1, {"load": reaped}))
    rec["waits"] = waits.result()
    rec["window_s"] = round(t1 - t0, 3)
    rec["backlog_at_end"] = backlog
    created, finished = q1(conn, """
        SELECT count(*) FILTER (WHERE created_at BETWEEN to_timestamp(%(a)s) AND to_timestamp(%(b)s)),
               count(*) FILTER (WHERE status = 'succeeded'
                                  AND finished_at BETWEEN to_timestamp(%(a)s) AND to_timestamp(%(b)s))
        FROM trireme.jobs""", {"a": t0, "b": t1})
    rec["created_in_window"], rec["succeeded_in_window"] = created, finished
    rec["e2e_jobs_per_s"] = round(finished / (t1 - t0))
    rec["created_per_s"] = round(created / (t1 - t0))
    # What was left drains (bounded); then every count must add up. Requests
    # in flight when the load stopped may still commit: checked again after 1 s.
    t_d0 = last_change = time.monotonic()
    left = last = backlog
    zero_at = None if backlog else t_d0
    while err is None and (left or time.monotonic() - t_d0 < 1.0):
        time.sleep(POLL)
        left = open_count(conn)
        now = time.monotonic()
        zero_at = (zero_at or now) if not left else None
        if left != last:
            last, last_change = left, now
        if now - last_change > STALL:
            err = "stuck after the load: %d jobs pending or running, no progress for %.0f s" % (left, STALL)
        elif now - t_d0 > TIMEOUT:
            err = "backlog of %d not drained after %.0f s" % (left, TIMEOUT)
    rec["drain_s"] = round((zero_at or time.monotonic()) - t_d0, 2)
    rec["counts"] = job_counts(conn)
    total = sum(v["count"] for v in rec["counts"].values())
    succ = rec["counts"].get("succeeded", {}).get("count", 0)
    attempts = sum(v["attempts"] for v in rec["counts"].values())
    rec["rows"] = total
    if system == "trireme":
        with open(tmp("wrk.txt"), errors="replace") as f:
            wtxt = f.read()
        rec.update(parse_wrk(wtxt))
        rec["wrk_tail"] = wtxt.splitlines()[-8:]
        if rec["http_requests"] is None:
            err = err or "cannot read wrk's output: %s" % " / ".join(wtxt.splitlines()[-3:])
        else:
            ok2xx = rec["http_requests"] - rec["http_non2xx"]
            rec["http_2xx"] = ok2xx
            # +1: the probe job. wrk does not count answers still in flight when it
            # stops, so the table may hold up to one job per connection more.
            rec["rows_minus_2xx"] = total - 1 - ok2xx
            if err is None and not 0 <= total - 1 - ok2xx <= env_int("QB_WRK_CONNS", 64):
                err = "%d jobs in the table for %d 2xx answers (+1 probe)" % (total, ok2xx)
    else:
        made = 0
        for i in range(len(loaders)):
            try:
                with open(tmp("producer%d.out" % i)) as f:
                    made += json.loads(f.read().strip().splitlines()[-1])["jobs"]
            except (OSError, ValueError, IndexError):
                err = err or "producer %d printed no count: %s" % (
                    i, " / ".join(log_summary(tmp("producer%d.log" % i))["tail"][-2:]))
        rec["enqueued"] = made
        if err is None and made != total:
            err = "%d jobs in the table, the producers report %d" % (total, made)
    if err is None and (succ != total or attempts != total):
        err = "after draining: %d jobs, %d succeeded, %d attempts" % (total, succ, attempts)
    rec["pgss"], rec["pgss_total_ms"] = pgss_top(conn, 8)
    rec["exit_codes"] = PROCS.stop_all()
    time.sleep(0.5)
    rec["pg"] = counters_delta(k0, pg_counters(conn))
    if system == "trireme":
        rec["log"] = log_summary(tmp("trireme-web-worker.log"))
    else:
        rec["peer_out"] = py_worker_outputs()
        rec["log"] = log_summary(tmp("pyworker0.log"))
    rec["error"], rec["ok"] = err, err is None
    conn.close()
    out(rec)


# ----------------------------------------------------------------- (c) latency

def latency(system):
    if system == "celery":
        return celery_latency()
    n, warm = env_int("QB_LAT_N", 1000), env_int("QB_LAT_WARMUP", 20)
    gap = env_int("QB_LAT_GAP_MS", 10) / 1000.0
    conn = pg()
    rec = {"test": "latency", "system": system, "n": n, "warmup": warm, "gap_ms": gap * 1000, "ok": False}
    log("%s latency: %d samples" % (system, n))
    db_prepare(conn)
    h = key = None
    try:
        if system == "trireme-http":
            p, port, key, rec["command"] = start_trireme_web(conn, "trireme-latency-web")
            procs = [p]
            h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            rec["enqueue"] = "POST /v1/jobs {\"kind\":\"noop\"} (one keep-alive connection)"
        else:
            procs, rec["command"] = start_workers(system)
            rec["enqueue"] = TR_LAT_SQL if system == "trireme" else PEER_SQL
    except Exception as e:  # noqa: BLE001 - Trireme did not come up: that is the result
        rec["error"] = str(e)
        PROCS.stop_all()
        rec["log"] = log_summary(tmp("trireme-latency-web.log"))
        return out(rec)
    starts, dones, calls, afters, timeouts, err = [], [], [], [], 0, None
    cur = conn.cursor()
    for i in range(warm + n):
        t_a = time.monotonic()
        try:
            if h:
                status, body = post_job(h, key)
                if status not in (200, 201):
                    err = "POST /v1/jobs answered %s: %s" % (status, body[:300])
                    break
                jid = json.loads(body)["id"]
            else:
                cur.execute(rec["enqueue"])
                jid = cur.fetchone()[0]
        except Exception as e:  # noqa: BLE001 - the enqueue failing is the result
            err = "enqueue failed: %s: %s" % (type(e).__name__, pg_error_text(e))
            break
        t_b, t_ret = time.monotonic(), time.time()
        limit = 30.0 if i < warm else 5.0  # the first jobs also wait for the worker to start
        end = time.monotonic() + limit
        row = None
        while time.monotonic() < end:
            time.sleep(0.001)
            cur.execute("""SELECT status, extract(epoch FROM started_at - created_at) * 1000,
                                  extract(epoch FROM finished_at - created_at) * 1000,
                                  extract(epoch FROM started_at)
                           FROM trireme.jobs WHERE id = %s""", (jid,))
            row = cur.fetchone()
            if row[0] == "succeeded":
                break
        if not row or row[0] != "succeeded":
            timeouts += 1
            log("%s latency: job %s is %s %.0f s after its enqueue" % (system, jid, row and row[0], limit))
            if i < warm or timeouts >= 5:
                err = "job %s still %s %.0f s after its enqueue (%d timeouts)" % (
                    jid, row and row[0], limit, timeouts)
                break
            continue
        if i >= warm:
            starts.append(float(row[1]))
            dones.append(float(row[2]))
            calls.append((t_b - t_a) * 1000)
            afters.append((float(row[3]) - t_ret) * 1000)
        if any(PROCS.poll(p) is not None for p in procs):
            err = "worker exited during the latency test (exit codes %s)" % [p.returncode for p in procs]
            break
        time.sleep(gap)
    cur.close()
    if h:
        h.close()
    rec["counts"] = job_counts(conn)
    rec["exit_codes"] = PROCS.stop_all()
    rec["start"], rec["done"], rec["enqueue_call"] = dist(starts), dist(dones), dist(calls)
    rec["after_return"] = dist(afters)
    rec["timeouts"] = timeouts
    if system.startswith("trireme"):
        rec["log"] = log_summary(tmp("trireme-latency-web.log" if h else "trireme-worker.log"))
    else:
        py_worker_outputs()
        rec["log"] = log_summary(tmp("pyworker0.log"))
    if err is None and len(starts) != n:
        err = "%d samples of %d" % (len(starts), n)
    rec["error"], rec["ok"] = err, err is None
    conn.close()
    out(rec)


def enqueue_cost(system):
    """What one enqueue call costs the producer: SELECT trireme.enqueue()
    against the peer's plain INSERT (whose statement trigger sends the same
    NOTIFY), both on one connection with durable commits, alternating call
    by call (which goes first alternates too) so both meet the same machine.
    No worker runs: the statement and its commit alone. Paired differences
    give the verdict, since the two sets share every drift of the run."""
    n, warm = env_int("QB_COST_N", 2000), 50
    conn = pg()
    rec = {"test": "enqueue_cost", "system": system, "n": n, "warmup": warm, "ok": False,
           "enqueue": TR_LAT_SQL, "peer": PEER_SQL}
    log("%s enqueue cost: %d calls of each, alternating" % (system, n))
    db_prepare(conn)
    cur = conn.cursor()
    ours, peers, diffs = [], [], []
    for i in range(warm + n):
        t = {}
        for sql in ((TR_LAT_SQL, PEER_SQL) if i % 2 else (PEER_SQL, TR_LAT_SQL)):
            t0 = time.perf_counter()
            cur.execute(sql)
            cur.fetchone()
            t[sql] = (time.perf_counter() - t0) * 1000
        if i >= warm:
            ours.append(t[TR_LAT_SQL])
            peers.append(t[PEER_SQL])
            diffs.append(t[TR_LAT_SQL] - t[PEER_SQL])
    cur.close()
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    half = 1.96 * sd / math.sqrt(len(diffs))
    rec["ours"], rec["peers"], rec["diff"] = dist(ours), dist(peers), dist(diffs)
    rec["diff_mean_ci"] = [mean - half, mean + half]
    rec["counts"] = job_counts(conn)
    made = sum(v["count"] for v in rec["counts"].values())
    err = None if made == 2 * (warm + n) else "%d jobs in the table after %d calls" % (made, 2 * (warm + n))
    rec["error"], rec["ok"] = err, err is None
    conn.close()
    out(rec)


def celery_latency():
    import redis

    n, warm = env_int("QB_LAT_N", 1000), env_int("QB_LAT_WARMUP", 20)
    gap = env_int("QB_LAT_GAP_MS", 10) / 1000.0
    rec = {"test": "latency", "system": "celery", "n": n, "warmup": warm, "gap_ms": gap * 1000,
           "ok": False, "enqueue": "noop.apply_async(args=[time.time()])"}
    log("celery latency: %d samples" % n)
    r = redis.Redis.from_url(E["QB_REDIS_URL"])
    r.flushdb()
    mod = celery_app()
    cmd = celery_cmd()
    p = PROCS.spawn("celery-latency", cmd, cwd=E["QB_PEERS"],
                    env={"BENCH_REDIS_URL": E["QB_REDIS_URL"], "BENCH_TARGET": "0"})
    rec["command"] = shown(cmd) + "  (in bench/peers)"
    starts, calls, afters, timeouts, err = [], [], [], 0, None
    for i in range(warm + n):
        t = time.time()
        t_a = time.monotonic()
        mod.noop.apply_async(args=[t], queue=QUEUE_CELERY)
        t_b, t_ret = time.monotonic(), time.time()
        limit = 30 if i < warm else 5
        got = r.blpop("bench:lat", timeout=limit)
        if got is None:
            timeouts += 1
            if i < warm or timeouts >= 5:
                err = "no sample %d s after the enqueue (%d timeouts)" % (limit, timeouts)
                break
            continue
        if i >= warm:
            starts.append(float(got[1]) * 1000)
            calls.append((t_b - t_a) * 1000)
            afters.append((t + float(got[1]) - t_ret) * 1000)
        if PROCS.poll(p) is not None:
            err = "celery worker exited during the latency test (exit code %s)" % p.returncode
            break
        time.sleep(gap)
    rec["exit_codes"] = PROCS.stop_all()
    rec["start"], rec["enqueue_call"], rec["after_return"] = dist(starts), dist(calls), dist(afters)
    rec["timeouts"] = timeouts
    rec["log"] = log_summary(tmp("celery-latency.log"))
    if err is None and len(starts) != n:
        err = "%d samples of %d" % (len(starts), n)
    rec["error"], rec["ok"] = err, err is None
    out(rec)


# ----------------------------------------------------------------- versions

def run_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def versions():
    v = {"trireme": (run_out([E["QB_TR_BIN"], "version"]).splitlines() or ["?"])[0]}
    try:
        c = pg()
        v["postgres"] = q1(c, "SHOW server_version")[0]
        v["pg_stat_statements"] = has_pgss(c)
        c.close()
    except Exception as e:  # noqa: BLE001
        v["postgres"] = "unknown (%s)" % e
    v["python"] = sys.version.split()[0]
    try:
        import celery
        import kombu
        import psycopg2
        import redis

        v.update(celery=celery.__version__, kombu=kombu.__version__, redis_py=redis.__version__,
                 psycopg2=psycopg2.__version__.split()[0])
    except ImportError as e:
        v["import_error"] = str(e)
    m = re.search(r"v=(\S+)", run_out(["redis-server", "--version"]))
    v["redis"] = m.group(1) if m else "unknown"
    w = run_out(["wrk", "-v"]).splitlines()
    v["wrk"] = re.sub(r"\s*Copyright.*", "", w[0]) if w else "wrk ?"
    print(json.dumps(v))


# ----------------------------------------------------------------- report

NAMES = {"trireme": "Trireme", "trireme-http": "Trireme (POST /v1/jobs)",
         "trireme-tuned": "Trireme, tuned (TUNED_FLAGS)",
         "python1": "Python SKIP LOCKED, 1 process", "python2": "Python SKIP LOCKED, 2 processes",
         "celery": "Celery + Redis"}
LAT_NAMES = dict(NAMES, trireme="Trireme (SELECT trireme.enqueue())")


def fmt(v, nd=0, suffix=""):
    if v is None:
        return "n/a"
    if nd == 0:
        return "{:,}".format(int(round(v))) + suffix
    return ("%." + str(nd) + "f") % v + suffix


def md_cell(s):
    return str(s).replace("|", "\\|").replace("`", "'")


def check(r):
    if r.get("ok"):
        return "ok"
    e = str(r.get("error"))
    return "**%s**" % md_cell(e if len(e) <= 160 else e[:160] + " ... (see notes)")


def report():
    meta = {k: E.get("QB_" + k.upper(), "") for k in (
        "started", "note", "kernel", "cpu", "nproc", "mem_gib", "load_start", "load_end", "git", "zig",
        "command", "build", "py_batch")}
    try:
        with open(E["QB_VERSIONS_FILE"]) as f:
            ver = json.load(f)
    except (OSError, ValueError, KeyError):
        ver = {}
    recs = []
    try:
        with open(E["QB_OUT"]) as f:
            recs = [json.loads(l) for l in f if l.strip()]
    except OSError:
        pass
    ncpu = os.cpu_count() or 1
    L = []
    a = L.append
    a("## %s - bench/queue-pg/run.sh" % meta["started"])
    a("")
    if meta["note"]:
        a("**Note: %s**" % meta["note"])
        a("")
    a("- Machine: Linux %s, %s, %s CPUs (nproc), %s GiB RAM; load average %s at start, %s at end"
      % (meta["kernel"], meta["cpu"], meta["nproc"], meta["mem_gib"], meta["load_start"], meta["load_end"]))
    a("- Versions: %s (git %s), PostgreSQL %s, Python %s (Debian's /usr/bin/python3, for the peers and "
      "the harness), Celery %s (kombu %s, redis-py %s), Redis %s, psycopg2 %s, %s, zig %s"
      % (ver.get("trireme"), meta["git"], ver.get("postgres"), ver.get("python"), ver.get("celery"),
         ver.get("kombu"), ver.get("redis_py"), ver.get("redis"), ver.get("psycopg2"), ver.get("wrk"),
         meta["zig"]))
    a("- Command: `%s`" % meta["command"])
    a("  - build: `%s`" % meta["build"])
    a("  - PostgreSQL: a fresh private cluster from `tools/pg-local.sh start` (fsync on, shared_buffers "
      "256MB)%s. Before every PostgreSQL run: `TRUNCATE trireme.jobs RESTART IDENTITY`, `VACUUM ANALYZE`; "
      "for (a) then `INSERT INTO trireme.jobs (kind) SELECT 'noop' FROM generate_series(1, N)`, "
      "`VACUUM ANALYZE`, `CHECKPOINT`."
      % (" plus `shared_preload_libraries = 'pg_stat_statements'`" if ver.get("pg_stat_statements") else ""))
    if any(r["system"] == "celery" for r in recs):
        a("  - Redis: `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no`")
    seen = set()
    for r in recs:
        c = r.get("command")
        if c and c not in seen:
            seen.add(c)
            a("  - %s: `%s`" % (NAMES.get(r["system"], r["system"]), c))
    for r in recs:
        if r["test"] == "sustained" and r.get("load_command"):
            a("  - load (b), %s: `%s`" % (NAMES.get(r["system"], r["system"]), r["load_command"]))
    a("")

    bd = [r for r in recs if r["test"] == "burndown"]
    if bd:
        a("### (a) Burn-down: N jobs inserted, then the worker started")
        a("")
        a("jobs/s = N / (last job's finished_at - worker process start), start-up included; busy = first "
          "job's started_at to last finished_at. CPU = user+system seconds over the run (/proc/PID/stat, "
          "process trees); machine = all %d CPUs, whoever used them." % ncpu)
        a("")
        a("| system | N | jobs/s | wall | first job after start | busy | jobs/s busy | worker CPU | "
          "PostgreSQL / Redis CPU | machine busy | check |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in bd:
            store = r.get("pg_cpu_s", r.get("redis_cpu_s"))
            a("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES.get(r["system"], r["system"]), fmt(r["n"]), fmt(r.get("jobs_per_s")),
                fmt(r.get("wall_s_to_last"), 2, " s"), fmt(r.get("start_ms"), 0, " ms"),
                fmt(r.get("busy_s"), 2, " s"), fmt(r.get("busy_jobs_per_s")),
                fmt(r.get("worker_cpu_s"), 1, " s"), fmt(store, 1, " s"),
                fmt(r.get("machine_busy_pct"), 0, "%"), check(r)))
        a("")

    su = [r for r in recs if r["test"] == "sustained"]
    if su:
        a("### (b) Sustained enqueue for %s s while the worker drains" % su[0].get("duration_s"))
        a("")
        a("end-to-end jobs/s = jobs whose finished_at falls inside the load window / window; created/s "
          "likewise by created_at. Backlog = jobs pending or running when the load stopped; they drain "
          "afterwards and every job is then checked (succeeded, one attempt).")
        a("")
        a("| system | window | HTTP req/s | HTTP p50 | HTTP p99 | HTTP errors | created/s | "
          "**end-to-end jobs/s** | backlog at end | drained in | worker CPU | load gen. CPU | "
          "PostgreSQL CPU | check |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in su:
            http_ = r.get("http_req_per_s") is not None
            a("| %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s |" % (
                NAMES.get(r["system"], r["system"]), fmt(r.get("window_s"), 1, " s"),
                fmt(r.get("http_req_per_s")) if http_ else "n/a (SQL)",
                fmt(r.get("http_p50_ms"), 2, " ms") if http_ else "n/a",
                fmt(r.get("http_p99_ms"), 2, " ms") if http_ else "n/a",
                fmt(r.get("http_non2xx", 0) + r.get("http_socket_errors", 0)) if http_ else "n/a",
                fmt(r.get("created_per_s")), fmt(r.get("e2e_jobs_per_s")), fmt(r.get("backlog_at_end")),
                fmt(r.get("drain_s"), 1, " s"), fmt(r.get("worker_cpu_s"), 1, " s"),
                fmt(r.get("load_cpu_s"), 1, " s"), fmt(r.get("pg_cpu_s"), 1, " s"), check(r)))
        a("")

    la = [r for r in recs if r["test"] == "latency"]
    if la:
        a("### (c) Enqueue -> start latency, one job at a time, idle queue")
        a("")
        a("PostgreSQL systems: started_at - created_at of each job (both the database's now(): created_at "
          "is the enqueueing transaction's start, so its durable commit is inside; started_at is the "
          "claiming transaction's start). Celery: time.time() at the task's start minus time.time() just "
          "before apply_async. Enqueue call = the producer's round trip for one enqueue (for "
          "PostgreSQL: statement and durable commit). Start after the enqueue returned = start time minus "
          "the producer's clock when its enqueue call returned (same machine clock; negative when the "
          "worker started the job before the producer saw its commit): the wake-up alone. %s warm-up jobs "
          "first; %s ms pause between samples." % (la[0].get("warmup"), fmt(la[0].get("gap_ms"))))
        a("")
        a("| system | enqueue | samples | p50 | p90 | p99 | max | mean | enqueue call p50 | "
          "start after the enqueue returned, p50 / p99 | timeouts | check |")
        a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in la:
            s, c, f = r.get("start") or {}, r.get("enqueue_call") or {}, r.get("after_return") or {}
            a("| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                LAT_NAMES.get(r["system"], r["system"]), md_cell(r.get("enqueue", "")), fmt(s.get("n")),
                fmt(s.get("p50"), 3, " ms"), fmt(s.get("p90"), 3, " ms"), fmt(s.get("p99"), 3, " ms"),
                fmt(s.get("max"), 3, " ms"), fmt(s.get("mean"), 3, " ms"), fmt(c.get("p50"), 3, " ms"),
                "%s / %s" % (fmt(f.get("p50"), 3, " ms"), fmt(f.get("p99"), 3, " ms")) if f else "n/a",
                fmt(r.get("timeouts")), check(r)))
        a("")

    ec = [r for r in recs if r["test"] == "enqueue_cost"]
    if ec:
        a("### (c) Enqueue cost: trireme.enqueue() against a plain INSERT, alternating")
        a("")
        a("One connection, durable commits, no worker running: `%s` and the peer's `%s` (its statement "
          "trigger sends the same NOTIFY) called in turn, which one goes first alternating, %s calls of "
          "each after %s pairs of warm-up. Time = the producer's round trip (statement and commit). "
          "Difference = trireme.enqueue() minus the INSERT next to it, so both share every drift of the "
          "run." % (md_cell(TR_LAT_SQL), md_cell(PEER_SQL), fmt(ec[0].get("n")), ec[0].get("warmup")))
        a("")
        a("| statement | p50 | p90 | p99 | mean | check |")
        a("|---|---:|---:|---:|---:|---|")
        for r in ec:
            for key, name in (("ours", "SELECT trireme.enqueue('noop')"), ("peers", "plain INSERT")):
                d = r.get(key) or {}
                a("| %s | %s | %s | %s | %s | %s |" % (
                    name, fmt(d.get("p50"), 3, " ms"), fmt(d.get("p90"), 3, " ms"),
                    fmt(d.get("p99"), 3, " ms"), fmt(d.get("mean"), 3, " ms"), check(r)))
            d, ci = r.get("diff") or {}, r.get("diff_mean_ci")
            if ci:
                a("| difference, paired | %s | | | %s (95%%: %.3f to %.3f ms) | |" % (
                    fmt(d.get("p50"), 3, " ms"), fmt(d.get("mean"), 3, " ms"), ci[0], ci[1]))
        a("")

    def first(test, system):
        return next((r for r in recs if r["test"] == test and r["system"] == system), None)

    def verdict(ok):
        return "met" if ok else "**missed**"

    tb, ts = first("burndown", "trireme"), first("sustained", "trireme")
    a("### Targets (Trireme)")
    a("")
    a("| target | measured | |")
    a("|---|---|---|")
    if tb:
        v = tb.get("jobs_per_s")
        a("| (a) burn-down >= 50,000 jobs/s | %s jobs/s (busy: %s) | %s |" % (
            fmt(v), fmt(tb.get("busy_jobs_per_s")), verdict(tb["ok"] and v is not None and v >= 50000)))
        # Defaults that reach the limits: the defaults against the tuned
        # settings and the two-process peer, all of this run.
        a("| (a) burn-down at default settings >= 60,000 jobs/s | %s jobs/s | %s |" % (
            fmt(v), verdict(tb["ok"] and v is not None and v >= 60000)))
        tt, p2 = first("burndown", "trireme-tuned"), first("burndown", "python2")
        for other, name, k in ((tt, "the tuned figure", 0.9), (p2, "the two-process Python peer", 2)):
            ov = other.get("jobs_per_s") if other else None
            if v and ov:
                a("| (a) defaults >= %s x %s | %.2f x (%s vs %s jobs/s) | %s |" % (
                    k, name, v / ov, fmt(v), fmt(ov), verdict(tb["ok"] and other["ok"] and v >= k * ov)))
    if ts:
        v = ts.get("e2e_jobs_per_s")
        a("| (b) sustained HTTP enqueue, end to end >= 10,000 jobs/s | %s jobs/s | %s |" % (
            fmt(v), verdict(ts["ok"] and v is not None and v >= 10000)))
    for sysname in ("trireme", "trireme-http"):
        tl = first("latency", sysname)
        if not tl:
            continue
        s = tl.get("start") or {}
        for p, lim in (("p50", 1), ("p99", 5)):
            a("| (c) enqueue->start %s <= %d ms, %s | %s | %s |" % (
                p, lim, LAT_NAMES[sysname], fmt(s.get(p), 3, " ms"),
                verdict(tl["ok"] and s.get(p) is not None and s[p] <= lim)))
    tc = first("enqueue_cost", "trireme")
    if tc and tc.get("diff_mean_ci"):
        # No more than the INSERT: the paired difference is not above zero
        # beyond its 95% interval.
        lo, hi = tc["diff_mean_ci"]
        a("| (c) SELECT trireme.enqueue() costs no more than a plain INSERT (paired mean difference) "
          "| %+.3f ms (95%%: %+.3f to %+.3f) | %s |" % (
              tc["diff"]["mean"], lo, hi, verdict(tc["ok"] and lo <= 0)))
    a("")

    a("Notes (generated from the measurements):")
    a("")
    a("- Everything (PostgreSQL, Redis, the workers, the load generators, this harness) shares the "
      "machine's %d CPUs. \"Everything else\" below is CPU time used on the machine by processes outside "
      "this benchmark." % ncpu)
    for r in bd + su:
        w = r.get("wall_s")
        if not w:
            continue
        parts = ["worker %.1f s (%.0f%% of one CPU)" % (r.get("worker_cpu_s", 0), 100 * r.get("worker_cpu_s", 0) / w)]
        for key, name in (("pg_cpu_s", "PostgreSQL"), ("redis_cpu_s", "Redis"), ("load_cpu_s", "load generator")):
            if key in r:
                parts.append("%s %.1f s (%.0f%%)" % (name, r[key], 100 * r[key] / w))
        ours = sum(r.get(k, 0) for k in ("worker_cpu_s", "pg_cpu_s", "redis_cpu_s", "load_cpu_s", "harness_cpu_s"))
        parts.append("harness %.1f s" % r.get("harness_cpu_s", 0))
        parts.append("everything else %.1f s" % max((r.get("machine_cpu_s") or 0) - ours, 0))
        a("- CPU, %s %s (%.1f s): %s; machine %.0f%% busy." % (
            NAMES.get(r["system"], r["system"]), {"burndown": "(a)", "sustained": "(b)"}[r["test"]], w,
            ", ".join(parts), r.get("machine_busy_pct") or 0))
    for r in bd + su:
        k, jobs = r.get("pg"), r.get("succeeded") or r.get("rows")
        if k and jobs:
            a("- PostgreSQL work per job, %s %s: %.2f commits, %.2f WAL syncs, %.0f WAL bytes, %.2f WAL records "
              "(pg_stat_database / pg_stat_wal deltas over the run%s)." % (
                  NAMES.get(r["system"], r["system"]), {"burndown": "(a)", "sustained": "(b)"}[r["test"]],
                  k["commits"] / jobs, k["wal_syncs"] / jobs, k["wal_bytes"] / jobs, k["wal_records"] / jobs,
                  ", drain included" if r["test"] == "sustained" else ""))
    for r in bd + su:
        wt = r.get("waits") or {}
        if wt.get("top"):
            a("- Active PostgreSQL client backends, %s %s, by wait event (mean count over %d samples, one "
              "every ~100 ms): %s. Backends waiting for the NOTIFY commit lock (pg_locks: object 0 of "
              "pg_database, not granted; each transaction that sent NOTIFY holds it through its commit, "
              "WAL flush included): %.2f." % (
                  NAMES.get(r["system"], r["system"]), {"burndown": "(a)", "sustained": "(b)"}[r["test"]],
                  wt["samples"], ", ".join("%s %.2f" % (w, n) for w, n in wt["top"]),
                  wt.get("notify_lock_waiters", 0)))
    for r in bd:
        ex = r.get("explain") or {}
        if ex.get("trireme") or ex.get("peer"):
            def exec_ms(lines):
                m = re.search(r"Execution Time: ([\d.]+) ms", " ".join(lines or []))
                return float(m.group(1)) if m else None
            a("- How the claim finds jobs on the freshly filled table (N = %s pending), `EXPLAIN (ANALYZE, "
              "BUFFERS)` inside a rolled-back transaction, LIMIT %s: Trireme's SQL_CLAIM "
              "(as modules/worker/worker_sql.h defines it in the measured tree) %s ms; the Python peer's claim "
              "%s ms." % (fmt(r["n"]), ex.get("limit"), fmt(exec_ms(ex.get("trireme")), 3),
                                        fmt(exec_ms(ex.get("peer")), 3)))
            a("")
            for name, key in (("Trireme", "trireme"), ("Python peer", "peer")):
                if ex.get(key):
                    a("  <details><summary>%s's claim plan</summary>" % name)
                    a("")
                    a("  ```")
                    for line in ex[key]:
                        a("  " + line)
                    a("  ```")
                    a("")
                    a("  </details>")
                    a("")
        elif ex.get("error"):
            a("- EXPLAIN of the claims failed: %s" % ex["error"])
    for r in bd + su:
        if r.get("pgss") and r["system"] == "trireme":
            a("- pg_stat_statements, Trireme %s: top statements by total execution time (all statements: %s ms; "
              "execution inside PostgreSQL only: no parse, commit, network):" % (
                  {"burndown": "(a)", "sustained": "(b)"}[r["test"]], fmt(r.get("pgss_total_ms"))))
            a("")
            a("  | statement | calls | total | mean | rows/call |")
            a("  |---|---:|---:|---:|---:|")
            for s in r["pgss"]:
                q = s["query"]
                q = q[:120] + " ..." if len(q) > 120 else q
                a("  | `%s` | %s | %s ms | %.3f ms | %.2f |" % (
                    md_cell(q), fmt(s["calls"]), fmt(s["total_ms"]), s["total_ms"] / max(s["calls"], 1),
                    s["rows"] / max(s["calls"], 1)))
            a("")
    for r in la:
        d = r.get("done") or {}
        if d:
            a("- %s (c): enqueue->finished p50 %.3f ms, p99 %.3f ms (finished_at - created_at)."
              % (LAT_NAMES.get(r["system"], r["system"]), d["p50"], d["p99"]))
    for r in recs:
        lg = r.get("log") or {}
        if r["system"].startswith("trireme") and lg.get("warn_or_worse"):
            a("- Trireme's log in %s %s: %d line(s) at WARN or worse; first: %s" % (
                r["test"], r["system"], lg["warn_or_worse"],
                "; ".join("`%s`" % md_cell(x[:240]) for x in lg["first"][:3])))
        if not r.get("ok"):
            counts = r.get("counts_after_stop") or r.get("counts")
            a("- %s %s did not complete cleanly: %s.%s%s" % (
                LAT_NAMES.get(r["system"], r["system"]) if r["test"] == "latency" else NAMES.get(r["system"], r["system"]),
                r["test"], md_cell(r.get("error")),
                (" Job counts by status: `%s`." % json.dumps(counts)) if counts else "",
                (" Log tail: %s" % " / ".join("`%s`" % md_cell(x[:240]) for x in lg.get("tail", [])[-3:]))
                if lg.get("tail") else ""))
    if su:
        for r in su:
            if r.get("http_2xx") is not None:
                a("- %s (b): wrk counted %s 2xx answers; the table holds %s jobs (the probe job, and %s "
                  "answered after wrk stopped counting)." % (
                      NAMES["trireme"], fmt(r["http_2xx"]), fmt(r.get("rows")), fmt(r.get("rows_minus_2xx"))))
            elif r.get("enqueued") is not None:
                a("- %s (b): the producers enqueued %s jobs; the table holds %s." % (
                    NAMES.get(r["system"], r["system"]), fmt(r["enqueued"]), fmt(r.get("rows"))))
    a("- Python peer (bench/peers/pg_skip_locked_worker.py): claim (`FOR UPDATE SKIP LOCKED`, LIMIT %s) and "
      "completion in one transaction, session `synchronous_commit=off` as Trireme's worker sets on its "
      "own connections; it sleeps on LISTEN trireme_jobs when a claim comes back short. Its producers "
      "and its latency test enqueue with a plain INSERT (durable commits; the table's statement trigger "
      "sends the NOTIFY). Celery: defaults otherwise (prefetch multiplier 4, early acks), results "
      "ignored; its task does one INCR (or RPUSH) on the same Redis." % meta["py_batch"])
    a("")
    sys.stdout.write("\n".join(L) + "\n")


# ----------------------------------------------------------------- main

def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    cmds = {"burndown": burndown, "sustained": sustained, "latency": latency,
            "enqueue_cost": enqueue_cost}
    try:
        if len(argv) == 2 and argv[1] == "freeport":
            print(freeport())
        elif len(argv) == 2 and argv[1] == "versions":
            versions()
        elif len(argv) == 2 and argv[1] == "report":
            report()
        elif len(argv) == 3 and argv[1] in cmds:
            try:
                cmds[argv[1]](argv[2])
            except Exception as e:  # noqa: BLE001 - recorded; the run goes on
                tb = traceback.format_exc()
                log(tb)
                PROCS.stop_all()
                out({"test": argv[1], "system": argv[2], "ok": False,
                     "error": "harness error: %s: %s" % (type(e).__name__, pg_error_text(e)),
                     "traceback": tb.splitlines()[-6:]})
        else:
            sys.stderr.write(__doc__)
            return 2
    finally:
        PROCS.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
