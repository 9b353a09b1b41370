#!/usr/bin/env python3
"""Measurements for bench/user-code/run.sh (loopback only).

Run with Debian's /usr/bin/python3 (psycopg2, redis, celery). Reuses
bench/queue-pg/qbench.py's process and CPU bookkeeping: every process
started here runs in its own session and is stopped before the command
returns, also on SIGTERM. The job everywhere is hashjob.py's handle()
(SHA-256 of the payload).

  ucbench.py pool trireme pg|redis   exec kind in pool mode (POOL_PROCS processes),
                                     N jobs enqueued first, then the worker starts
  ucbench.py pool celery             Celery prefork -c POOL_PROCS (Redis), CELERY_N tasks
  ucbench.py oneshot python|true     one-shot exec kind (concurrency ONESHOT_C) vs the
                                     same program run directly as many times, and the
                                     same number of noop jobs (the queue alone)
  ucbench.py pull trireme-each|trireme-batch
                                     2 processes (PULL_PROCS) claiming PULL_BATCH via
                                     POST /v1/claim + a complete callback per job
                                     (each), or one POST /v1/outcomes per claim (batch)
  ucbench.py pull sql-each|sql-batch the same processes on a plain table with SKIP LOCKED
  ucbench.py versions | report

Environment (set by run.sh): QB_* as qbench.py reads them, and UC_N,
UC_CELERY_N, UC_POOL_PROCS, UC_THREADS, UC_ONESHOT_N, UC_ONESHOT_C,
UC_PULL_N, UC_PULL_PROCS, UC_PULL_BATCH, UC_PULL_THREADS, UC_PRELOAD_BATCH.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queue-pg"))
sys.path.insert(0, os.path.join(HERE, "..", "queue-redis"))
import qbench  # noqa: E402
from qbench import E, PROCS, CpuMeter, any_open, env_int, freeport, log, open_count, out, pg, q1, tmp, wait_listen  # noqa: E402,E501

HASHJOB = os.path.join(HERE, "hashjob.py")
PAYLOAD_SQL = "jsonb_build_object('n', g, 'text', repeat('trireme ', 8))"
COUNT_IDS_LUA = """
local n, bad = 0, 0
for _, id in ipairs(ARGV) do
  local h = redis.call('HMGET', 'trireme:job:' .. id, 'status', 'attempts')
  if h[1] == 'succeeded' and h[2] == '1' then n = n + 1 else bad = bad + 1 end
end
return {n, bad}
"""


def payload(i):
    return {"n": i, "text": "trireme " * 8}


def shown(cmd):
    s = qbench.shown(cmd).replace(E["QB_TMP"], "<tmp>").replace(HERE + "/", "bench/user-code/")
    return re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:<port>", s)


def tr_env(backend="pg"):
    env = {"TRIREME_INSECURE_NO_AUTH": "true", "TRIREME_ACCESS_LOG": "false", "LOG_LEVEL": "warn"}
    if backend == "redis":
        env.update(REDIS_URL=E["QB_REDIS_URL"], QUEUE_BACKEND="redis")
    return env


def kinds_file(name, kinds):
    path = tmp("kinds-%s.json" % name)
    with open(path, "w") as f:
        json.dump({"kinds": kinds}, f)
    return path


def worker_cmd(kinds, threads=None):
    return [E["QB_TR_BIN"], "run", "--roles=worker", "--threads=%d" % (threads or env_int("UC_THREADS", 1)),
            "--migrate=off", "--log-level=warn", "--kinds=" + kinds]


def fill_pg(conn, kind, n, pull=False):
    with conn.cursor() as cur:
        cur.execute("TRUNCATE trireme.jobs RESTART IDENTITY")
        cur.execute("INSERT INTO trireme.jobs (kind, payload, pull) SELECT %s, " + PAYLOAD_SQL
                    + ", %s FROM generate_series(1, %s) g", (kind, pull, n))
        cur.execute("VACUUM ANALYZE trireme.jobs")
        cur.execute("CHECKPOINT")


def preload_redis(kinds, kind, n, batch):
    port = freeport()
    web = PROCS.spawn("trireme-web", [E["QB_TR_BIN"], "run", "--roles=web", "--threads=1",
                                      "--host=127.0.0.1", "--port=%d" % port, "--kinds=" + kinds],
                      env=tr_env("redis"))
    if not wait_listen(port, 15):
        raise RuntimeError("web role did not listen")
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent, ids = 0, []
    while sent < n:
        k = min(batch, n - sent)
        h.request("POST", "/v1/jobs", json.dumps([{"kind": kind, "payload": payload(sent + i + 1)}
                                                  for i in range(k)]),
                  {"Content-Type": "application/json"})
        resp = h.getresponse()
        data = resp.read()
        if resp.status != 201:
            raise RuntimeError("preload: %d %s" % (resp.status, data[:200]))
        ids += [int(x) for x in re.findall(rb'"id"\s*:\s*(\d+)', data)]
        sent += k
    h.close()
    PROCS.stop(web)
    if len(ids) != n:
        raise RuntimeError("preload: %d ids for %d jobs" % (len(ids), n))
    return ids


def wait_done(left, procs, n, stop_when_exited=False, timeout=None):
    """Polls left() until 0; returns an error or None. Bounded by TIMEOUT
    (or timeout) and STALL. stop_when_exited: the processes exiting ends the
    wait too."""
    timeout = timeout or qbench.TIMEOUT
    t0 = time.monotonic()
    last, last_change = n, t0
    while True:
        time.sleep(qbench.POLL)
        now = time.monotonic()
        v = left()
        if v == 0:
            return None
        if v != last:
            last, last_change = v, now
        dead = [p for p in procs if PROCS.poll(p) is not None]
        if dead and (not stop_when_exited or len(dead) == len(procs)):
            if stop_when_exited:
                v = left()
                return None if v == 0 else "workers exited (at their time limit or on an error) with %d jobs left" % v
            return "process exited (code %s) with %d jobs left" % (dead[0].returncode, v)
        if now - last_change > qbench.STALL:
            return "stuck at %d jobs left for %.0f s" % (v, qbench.STALL)
        if now - t0 > timeout:
            return "timeout: %d jobs left after %.0f s" % (v, timeout)


def pg_verify(conn, n, rec, t_spawn):
    succ, rows, first, lastf = q1(conn, """
        SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1), count(*),
               extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at))
        FROM trireme.jobs""")
    rec["succeeded_attempt_1"] = succ
    if succ != n or rows != n:
        return "%d of %d rows succeeded with one attempt (%d expected)" % (succ, rows, n)
    rec["wall_s"] = round(float(lastf) - t_spawn, 3)
    rec["busy_s"] = round(float(lastf) - float(first), 3)
    rec["jobs_per_s"] = round(n / rec["wall_s"])
    rec["busy_jobs_per_s"] = round(n / max(rec["busy_s"], 1e-6))
    return None


def trireme_burndown(rec, backend, kinds, kind, n, name, threads=None):
    """N jobs of kind enqueued, then the worker: fills rec."""
    conn = pg()
    r = ids = None
    if backend == "pg":
        fill_pg(conn, kind, n)
    else:
        import redis

        r = redis.Redis.from_url(E["QB_REDIS_URL"])
        r.flushdb()
        ids = preload_redis(kinds, kind, n, env_int("UC_PRELOAD_BATCH", 1000))
    cmd = worker_cmd(kinds, threads) + (["--concurrency=%d" % max(64, env_int("UC_ONESHOT_C", 2))])
    procs = []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs],
                      "store": lambda: [qbench.pg_pid() if backend == "pg" else env_int("QB_REDIS_PID", 0)]})

    def left():
        if backend == "pg":
            return open_count(conn) if any_open(conn) else 0
        import rbench

        v = rbench.left(r)
        return n if v < 0 else v

    c0 = meter.sample()
    t_spawn = time.time()
    procs.append(PROCS.spawn(name, cmd, env=tr_env(backend)))
    err = wait_done(left, procs, n)
    t_end = time.time()
    rec.update(CpuMeter.delta(c0, meter.sample()))
    rec["command"] = shown(cmd)
    rec["exit_codes"] = [PROCS.stop(procs[0])]
    rec["log"] = qbench.log_summary(tmp(name + ".log"))
    if err is None:
        if backend == "pg":
            err = pg_verify(conn, n, rec, t_spawn)
        else:
            good = bad = 0
            for i in range(0, n, 5000):
                g, b = r.register_script(COUNT_IDS_LUA)(args=ids[i:i + 5000])
                good, bad = good + g, bad + b
            rec["succeeded_attempt_1"] = good
            if good != n or bad:
                err = "%d of %d succeeded with one attempt" % (good, n)
            rec["wall_s"] = round(t_end - t_spawn, 3)
            rec["jobs_per_s"] = round(n / rec["wall_s"])
    conn.close()
    rec["error"], rec["ok"] = err, err is None


# ----------------------------------------------------------------- pool

def pool_trireme(backend):
    n, procs_n = env_int("UC_N", 20000), env_int("UC_POOL_PROCS", 2)
    rec = {"test": "pool", "system": "trireme", "backend": backend, "n": n, "processes": procs_n,
           "ok": False}
    log("pool burn-down trireme %s: %d jobs, %d processes" % (backend, n, procs_n))
    kdecl = {"type": "exec", "mode": "pool", "processes": procs_n, "argv": [E["QB_PY"], HASHJOB, "pool"]}
    kinds = kinds_file("pool", {"hash": kdecl})
    trireme_burndown(rec, backend, kinds, "hash", n, "trireme-pool")
    rec["kind"] = dict(kdecl, argv=shown(kdecl["argv"]).split())
    out(rec)


def pool_celery():
    import redis

    n, c = env_int("UC_CELERY_N", 5000), env_int("UC_POOL_PROCS", 2)
    rec = {"test": "pool", "system": "celery", "n": n, "processes": c, "ok": False}
    log("pool burn-down celery -c %d: %d tasks" % (c, n))
    r = redis.Redis.from_url(E["QB_REDIS_URL"])
    r.flushdb()
    os.environ.update(BENCH_REDIS_URL=E["QB_REDIS_URL"], BENCH_QUEUE="bench_hash")
    sys.path.insert(0, E["QB_PEERS"])
    import celery_hash

    t0 = time.monotonic()
    for i in range(n):
        celery_hash.hash_payload.apply_async(args=[payload(i + 1)], queue="bench_hash")
    rec["enqueue_per_s"] = round(n / (time.monotonic() - t0))
    cmd = [E["QB_PY"], "-m", "celery", "-A", "celery_hash", "worker", "--pool=prefork",
           "--concurrency=%d" % c, "-Q", "bench_hash", "--without-heartbeat", "--without-gossip",
           "--without-mingle", "--loglevel=WARNING"]
    rec["command"] = shown(cmd) + "  (in bench/peers)"
    procs = []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs], "store": lambda: [env_int("QB_REDIS_PID", 0)]})
    c0 = meter.sample()
    t_spawn = time.time()
    procs.append(PROCS.spawn("celery-pool", cmd, cwd=E["QB_PEERS"],
                             env={"BENCH_REDIS_URL": E["QB_REDIS_URL"], "BENCH_TARGET": str(n),
                                  "BENCH_QUEUE": "bench_hash"}))
    err = wait_done(lambda: n - int(r.get("bench:done") or 0), procs, n)
    rec.update(CpuMeter.delta(c0, meter.sample()))
    rec["exit_codes"] = [PROCS.stop(procs[0])]
    rec["log"] = qbench.log_summary(tmp("celery-pool.log"))
    done_at, first_at = r.get("bench:done_at"), r.get("bench:first_at")
    if err is None and done_at and first_at:
        rec["wall_s"] = round(float(done_at) - t_spawn, 3)
        rec["busy_s"] = round(float(done_at) - float(first_at), 3)
        rec["jobs_per_s"] = round(n / rec["wall_s"])
        rec["busy_jobs_per_s"] = round(n / max(rec["busy_s"], 1e-6))
    elif err is None:
        err = "no completion marks in Redis"
    rec["error"], rec["ok"] = err, err is None
    out(rec)


# ----------------------------------------------------------------- one-shot

def direct_runs(argv, n, c):
    """Runs argv n times, c at once, each fed one job line on stdin and its
    stdout read to the end, as trireme does: seconds."""
    job = json.dumps({"id": 1, "kind": "hash", "queue": "default", "attempt": 1, "max_attempts": 5,
                      "payload": payload(1)}).encode() + b"\n"
    running = []

    def finish(p):
        p.stdout.read()
        p.stdout.close()
        if p.wait(timeout=60) != 0:
            raise RuntimeError("%s exited %d" % (argv, p.returncode))

    t0 = time.monotonic()
    for _ in range(n):
        if len(running) >= c:
            finish(running.pop(0))
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:  # /bin/true does not read its stdin
            p.stdin.write(job)
            p.stdin.close()
        except BrokenPipeError:
            pass
        running.append(p)
        if time.monotonic() - t0 > qbench.TIMEOUT:
            raise RuntimeError("direct runs: timeout")
    for p in running:
        finish(p)
    return time.monotonic() - t0


def oneshot(program):
    n, c = env_int("UC_ONESHOT_N", 1000), env_int("UC_ONESHOT_C", 2)
    argv = [E["QB_PY"], HASHJOB, "oneshot"] if program == "python" else ["/bin/true"]
    rec = {"test": "oneshot", "program": program, "argv": shown(argv), "n": n, "concurrency": c,
           "ok": False}
    log("one-shot %s: %d jobs, concurrency %d" % (program, n, c))
    kinds = kinds_file("oneshot", {"hash1": {"type": "exec", "argv": argv, "concurrency": c}})
    noop = {}
    d_before = direct_runs(argv, n, c)
    trireme_burndown(noop, "pg", kinds, "noop", n, "trireme-noop")
    trireme_burndown(rec, "pg", kinds, "hash1", n, "trireme-oneshot")
    rec["noop_busy_s"] = noop.get("busy_s")
    if noop.get("error"):
        rec["error"], rec["ok"] = "noop: " + noop["error"], False
    if rec["ok"]:
        d_after = direct_runs(argv, n, c)
        # the faster of a run before and one after Trireme's: the least noise,
        # and the larger overhead
        d = min(d_before, d_after)
        rec["direct_runs_s"] = [round(d_before, 3), round(d_after, 3)]
        k = min(n, 200)
        rec["serial_startup_ms"] = round(direct_runs(argv, k, 1) / k * 1000, 3)
        rec["direct_s"] = round(d, 3)
        rec["direct_per_s"] = round(n / d)
        # per job, per slot: busy time of the c slots over n jobs
        rec["exec_ms_per_job"] = round(rec["busy_s"] * c / n * 1000, 3)
        rec["direct_ms_per_run"] = round(d * c / n * 1000, 3)
        rec["queue_ms_per_job"] = round(noop["busy_s"] * c / n * 1000, 3)
        rec["overhead_ms"] = round(rec["exec_ms_per_job"] - rec["direct_ms_per_run"], 3)
    out(rec)


# ----------------------------------------------------------------- pull

def pull(system):
    n, k, batch = env_int("UC_PULL_N", 20000), env_int("UC_PULL_PROCS", 2), env_int("UC_PULL_BATCH", 100)
    max_s = env_int("UC_PULL_TIMEOUT", 120)
    rec = {"test": "pull", "system": system, "n": n, "processes": k, "batch": batch, "ok": False}
    log("pull %s: %d jobs, %d processes, batch %d" % (system, n, k, batch))
    conn = pg()
    procs = []
    groups = {"workers": lambda: [p.pid for p in procs], "pg": lambda: [qbench.pg_pid()]}
    if system.startswith("trireme"):
        with conn.cursor() as cur:
            cur.execute("TRUNCATE trireme.jobs RESTART IDENTITY")
        port = freeport()
        kinds = kinds_file("pull", {"hash": {"type": "pull"}})
        wcmd = [E["QB_TR_BIN"], "run", "--roles=web", "--threads=%d" % env_int("UC_PULL_THREADS", 1),
                "--migrate=off", "--log-level=warn", "--host=127.0.0.1", "--port=%d" % port,
                "--access-log=false", "--kinds=" + kinds]
        web = PROCS.spawn("trireme-pull-web", wcmd, env=tr_env())
        if not wait_listen(port, 15):
            raise RuntimeError("web role did not listen")
        groups["trireme"] = lambda: [web.pid]
        # enqueued through the API, as a client would (it marks them pull)
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent, batch_e = 0, env_int("UC_PRELOAD_BATCH", 1000)
        while sent < n:
            m = min(batch_e, n - sent)
            h.request("POST", "/v1/jobs", json.dumps([{"kind": "hash", "payload": payload(sent + i + 1)}
                                                      for i in range(m)]),
                      {"Content-Type": "application/json"})
            resp = h.getresponse()
            data = resp.read()
            if resp.status != 201:
                raise RuntimeError("enqueue: %d %s" % (resp.status, data[:200]))
            sent += m
        h.close()
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE trireme.jobs")
            cur.execute("CHECKPOINT")
            cur.execute("SELECT count(*) FILTER (WHERE pull), count(*) FROM trireme.jobs")
            npull, nall = cur.fetchone()
        if npull != n or nall != n:
            raise RuntimeError("after the enqueue: %d pull jobs of %d rows, %d expected" % (npull, nall, n))
        rec["command"] = shown(wcmd)
        cmd = [E["QB_PY"], os.path.join(HERE, "pullworker.py"), "http", "http://127.0.0.1:%d" % port,
               "hash", system.split("-")[1], str(batch), str(max_s)]

        def left():
            return open_count(conn) if any_open(conn) else 0
    else:
        mode = system.split("-")[1]
        with conn.cursor() as cur:
            cur.execute("""DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench;
                CREATE TABLE bench.jobs (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending',
                    payload jsonb NOT NULL, result jsonb, attempts int NOT NULL DEFAULT 0,
                    started_at timestamptz, finished_at timestamptz, lease_until timestamptz);
                CREATE INDEX jobs_pending ON bench.jobs (id) WHERE status = 'pending';""")
            cur.execute("INSERT INTO bench.jobs (payload) SELECT " + PAYLOAD_SQL
                        + " FROM generate_series(1, %s) g", (n,))
            cur.execute("VACUUM ANALYZE bench.jobs")
            cur.execute("CHECKPOINT")
        rec["command"] = "bench.jobs (id, status, payload, result, attempts, started_at, finished_at, " \
                         "lease_until), partial index on id WHERE status = 'pending'"
        cmd = [E["QB_PY"], os.path.join(HERE, "pullworker.py"), "sql", E["DATABASE_URL"], mode,
               str(batch), str(max_s)]

        def left():
            return q1(conn, "SELECT count(*) FROM bench.jobs WHERE status <> 'succeeded'")[0]
    rec["worker_command"] = shown(cmd) + "  (%d processes)" % k
    meter = CpuMeter(groups)
    if qbench.has_pgss(conn):
        q1(conn, "SELECT pg_stat_statements_reset()")
    c0 = meter.sample()
    t_spawn = time.time()
    for i in range(k):
        procs.append(PROCS.spawn("pullworker%d" % i, cmd, stdout_path=tmp("pullworker%d.out" % i)))
    err = wait_done(left, procs, n, stop_when_exited=True, timeout=max_s + 5)
    for p in procs:
        PROCS.wait(p, 30)
    # the workers have exited (and were reaped): their CPU time comes from wait4
    rec.update(CpuMeter.delta(c0, meter.sample(),
                              extra={"workers": sum(PROCS.cpu_s.get(p.pid, 0) for p in procs)}))
    rec["pgss"], rec["pgss_total_ms"] = qbench.pgss_top(conn, 4)
    rec["exit_codes"] = [PROCS.stop(p) for p in procs]
    rec["worker_out"] = []
    for i in range(k):
        try:
            rec["worker_out"].append(json.loads(open(tmp("pullworker%d.out" % i)).read().strip().splitlines()[-1]))
        except (OSError, ValueError, IndexError):
            rec["worker_out"].append(None)
    rec["log"] = qbench.log_summary(tmp("pullworker0.log"))
    table = "trireme.jobs" if system.startswith("trireme") else "bench.jobs"
    if err is not None:  # the rate so far, so a slow system still shows a number
        done, lastf = q1(conn, "SELECT count(*), extract(epoch FROM max(finished_at)) FROM %s "
                               "WHERE status = 'succeeded'" % table)
        if done and lastf:
            rec["partial_done"] = done
            rec["partial_jobs_per_s"] = round(done / (float(lastf) - t_spawn))
    if err is None:
        succ, rows, first, lastf = q1(conn, """
            SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1), count(*),
                   extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at))
            FROM %s""" % table)
        rec["succeeded_attempt_1"] = succ
        if succ != n or rows != n:
            err = "%d of %d rows succeeded with one attempt" % (succ, rows)
        else:
            rec["wall_s"] = round(float(lastf) - t_spawn, 3)
            rec["busy_s"] = round(float(lastf) - float(first), 3)
            rec["jobs_per_s"] = round(n / rec["wall_s"])
            rec["busy_jobs_per_s"] = round(n / max(rec["busy_s"], 1e-6))
    conn.close()
    rec["error"], rec["ok"] = err, err is None
    PROCS.stop_all()
    out(rec)


# ----------------------------------------------------------------- report

def fmt(v):
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return "%.3f" % v if v < 10 else ("%.2f" % v if v < 100 else "{:,.0f}".format(v))
    if isinstance(v, int):
        return "{:,}".format(v)
    return str(v)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def note(x):
    if x.get("ok"):
        return "ok"
    if x.get("partial_jobs_per_s"):
        return "FAILED: %s (%s jobs done, %s jobs/s until then)" % (
            x.get("error"), fmt(x["partial_done"]), fmt(x["partial_jobs_per_s"]))
    return "FAILED: %s" % x.get("error")


def report():
    recs = [json.loads(x) for x in open(E["QB_OUT"]) if x.strip()]
    v = json.load(open(E["QB_VERSIONS_FILE"]))
    L = ["## User code: exec kinds (pool, one-shot) and pull workers vs Celery and plain SQL, %s"
         % E["QB_STARTED"], ""]
    if E.get("QB_NOTE"):
        L += ["**%s**" % E["QB_NOTE"], ""]
    L.append("- Machine: %s CPUs (%s), %s GiB, Linux %s. **The CPUs are shared by the queue store, "
             "Trireme, the Python processes and the harness; other work may have been running** "
             "(load average %s at the start, %s at the end)." % (
                 E["QB_NPROC"], E["QB_CPU"], E["QB_MEM_GIB"], E["QB_KERNEL"], E["QB_LOAD_START"],
                 E["QB_LOAD_END"]))
    L.append("- Versions: trireme %s (git %s), PostgreSQL %s, Redis %s, Celery %s (kombu %s), "
             "Python %s, psycopg2 %s; %s." % (
                 v.get("trireme"), E["QB_GIT"], v.get("postgres"), v.get("redis"), v.get("celery"),
                 v.get("kombu"), v.get("python"), v.get("psycopg2"), E["QB_ZIG"]))
    L.append("- Command: `%s`; build `%s`." % (E["QB_COMMAND"], E["QB_BUILD"]))
    L.append("- The job everywhere: `hashjob.handle(payload)` in bench/user-code/hashjob.py, SHA-256 "
             "of the payload as sorted JSON (payload `{\"n\": i, \"text\": \"trireme \" * 8}`).")
    pools = [x for x in recs if x["test"] == "pool"]
    if pools:
        L += ["", "### Pool: long-lived Python processes (burn-down: jobs enqueued first, then the worker)",
              "", "| system | queue | processes | jobs | s to last | jobs/s | busy jobs/s | worker CPU s "
              "| store CPU s | notes |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for x in pools:
            L.append("| %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s |" % (
                "Trireme exec pool" if x["system"] == "trireme" else "Celery prefork",
                {"pg": "PostgreSQL", "redis": "Redis"}.get(x.get("backend"), "Redis"),
                x.get("processes"), fmt(x["n"]), fmt(x.get("wall_s")), fmt(x.get("jobs_per_s")),
                fmt(x.get("busy_jobs_per_s")), fmt(x.get("worker_cpu_s")), fmt(x.get("store_cpu_s")),
                note(x)))
        tr = next((x for x in pools if x["system"] == "trireme"), None)
        ce = next((x for x in pools if x["system"] == "celery"), None)
        L.append("")
        if tr:
            L.append("- Trireme: `%s`, kind `%s`; worker CPU includes the pool processes." % (
                tr.get("command"), json.dumps(tr.get("kind"))))
        if ce:
            L.append("- Celery: `%s`; its task also does one Redis INCR (the completion count); "
                     "worker CPU includes the prefork children." % ce.get("command"))
        L.append("- s to last / jobs/s: from spawning the worker (its start-up and the pool's "
                 "included) to the last job finished; busy jobs/s: first job started to last "
                 "finished (not known on Trireme's Redis backend). Every Trireme job was checked: "
                 "succeeded, attempts 1.")
    ones = [x for x in recs if x["test"] == "oneshot"]
    if ones:
        L += ["", "### One-shot: a process per job", "",
              "| program | jobs | concurrency | Trireme jobs/s | exec ms per job (per slot) | "
              "run directly: runs/s | ms per run (per slot) | overhead ms per job | noop queue ms "
              "per job | start-up ms, one at a time | notes |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for x in ones:
            L.append("| `%s` | %s | %s | **%s** | %s | %s | %s | **%s** | %s | %s | %s |" % (
                x.get("argv"), fmt(x["n"]), x.get("concurrency"), fmt(x.get("busy_jobs_per_s")),
                fmt(x.get("exec_ms_per_job")), fmt(x.get("direct_per_s")), fmt(x.get("direct_ms_per_run")),
                fmt(x.get("overhead_ms")), fmt(x.get("queue_ms_per_job")), fmt(x.get("serial_startup_ms")),
                note(x) + (" (direct runs %s s)" % x.get("direct_runs_s") if x.get("ok") else "")))
        L += ["", "- Trireme: `%s` (`--kinds` with `{\"type\": \"exec\", \"argv\": ..., \"concurrency\": "
              "C}`), jobs enqueued first; jobs/s and ms per job from the first job started to the last "
              "finished (ms per job = busy time × concurrency / jobs). Run directly: the harness "
              "(Python `subprocess.Popen`) starts the same program as many times, C at once, writes "
              "the same job line on stdin and reads stdout to the end, once before and once after "
              "Trireme's runs; the faster is used. Overhead = exec ms − direct ms per job (a "
              "negative value is noise: Trireme was no slower than the harness' own spawning); the "
              "noop column is the queue alone (the same number of `noop` jobs), which the overhead "
              "includes; start-up ms: up to 200 direct runs one at a time." % ones[0].get("command")]
    pulls = [x for x in recs if x["test"] == "pull"]
    if pulls:
        L += ["", "### External pull workers (jobs enqueued first, then the processes start)", "",
              "| system | processes | claim size | jobs | s to last | jobs/s | busy jobs/s | workers CPU s "
              "| Trireme CPU s | PostgreSQL CPU s | notes |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        names = {"trireme-each": "Trireme POST /v1/claim + a complete callback per job",
                 "trireme-batch": "Trireme POST /v1/claim + one POST /v1/outcomes per batch",
                 "sql-each": "plain SQL: SKIP LOCKED claim, an UPDATE per job",
                 "sql-batch": "plain SQL: SKIP LOCKED claim, one UPDATE per batch"}
        for x in pulls:
            L.append("| %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |" % (
                names.get(x["system"], x["system"]), x.get("processes"), x.get("batch"), fmt(x["n"]),
                fmt(x.get("wall_s")), fmt(x.get("jobs_per_s")), fmt(x.get("busy_jobs_per_s")),
                fmt(x.get("workers_cpu_s")), fmt(x.get("trireme_cpu_s")), fmt(x.get("pg_cpu_s")), note(x)))
        t = next((x for x in pulls if x["system"].startswith("trireme")), None)
        L.append("")
        if t:
            L.append("- Trireme: `%s` (kind `{\"type\": \"pull\"}`); workers: `%s`, one keep-alive "
                     "connection each, `wait: 0`, stop at the first empty claim." % (
                         t.get("command"), t.get("worker_command")))
        for x in pulls:
            if x.get("pgss"):
                L.append("- PostgreSQL time, %s (pg_stat_statements, %s ms in all): %s." % (
                    names.get(x["system"], x["system"]), fmt(x.get("pgss_total_ms")), "; ".join(
                        "`%s` %s calls %s ms" % (q["query"][:160].replace("`", "'"), fmt(q["calls"]),
                                                fmt(q["total_ms"])) for q in x["pgss"][:3])))
        s = next((x for x in pulls if not x["system"].startswith("trireme")), None)
        if s:
            L.append("- Plain SQL: the same two processes (`%s`) on `%s`; synchronous_commit as the "
                     "server has it (on). jobs/s from spawning the processes to the last "
                     "`finished_at`." % (s.get("worker_command"), s.get("command")))
    # targets
    L += ["", "### Targets (issue 11 item 6)", "", "| target | measured | verdict |", "|---|---|---|"]
    ce = next((x for x in pools if x["system"] == "celery" and x.get("ok")), None)
    for x in pools:
        if x["system"] == "trireme" and x.get("ok") and ce:
            # conservative: Trireme's rate includes its start-up, Celery's busy rate does not
            cr = ce.get("busy_jobs_per_s") or ce["jobs_per_s"]
            ratio = x["jobs_per_s"] / cr
            L.append("| pool ≥ 3× Celery prefork (%s processes), Trireme on %s | Trireme %s jobs/s "
                     "(start-up included) vs Celery busy %s jobs/s = %.1f× | %s |" % (
                         x["processes"], x["backend"], fmt(x["jobs_per_s"]), fmt(cr), ratio,
                         verdict(ratio >= 3)))
    for x in ones:
        if x.get("ok"):
            L.append("| one-shot overhead ≤ 2 ms beyond start-up (`%s`) | %s ms | %s |" % (
                x["argv"], fmt(x["overhead_ms"]), verdict(x["overhead_ms"] <= 2)))
    for t in (x for x in pulls if x["system"].startswith("trireme")):
        if not (t.get("ok") or t.get("partial_jobs_per_s")):
            continue
        rate = t.get("jobs_per_s") if t.get("ok") else t["partial_jobs_per_s"]
        L.append("| pull ≥ 15,000 jobs/s (%d processes, claims of %d), %s | %s jobs/s%s | %s |" % (
            t["processes"], t["batch"], "outcomes per batch" if t["system"] == "trireme-batch"
            else "a callback per job", fmt(rate), "" if t.get("ok") else
            " (timed out after %s of %s jobs)" % (fmt(t["partial_done"]), fmt(t["n"])),
            verdict(rate >= 15000)))
    L.append("")
    print("\n".join(L))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, qbench.on_term)
    a = sys.argv[1:] + ["", "", ""]
    try:
        if a[0] == "pool" and a[1] == "trireme":
            pool_trireme(a[2])
        elif a[0] == "pool" and a[1] == "celery":
            pool_celery()
        elif a[0] == "oneshot":
            oneshot(a[1])
        elif a[0] == "pull":
            pull(a[1])
        elif a[0] == "report":
            report()
        elif a[0] == "versions":
            qbench.versions()
        else:
            sys.exit("usage: ucbench.py pool|oneshot|pull|report|versions ...")
    finally:
        PROCS.stop_all()
