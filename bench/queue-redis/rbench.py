#!/usr/bin/env python3
"""Measurements for bench/queue-redis/run.sh (loopback only).

Run with Debian's /usr/bin/python3 (redis and celery are Debian packages).
Reuses bench/queue-pg/qbench.py's process and CPU bookkeeping and its Celery
burn-down, so both benchmarks measure Celery the same way.

  rbench.py burndown     Trireme on --queue-backend=redis: (1) an idle worker's
                         RSS; (2) preload N noop jobs through POST /v1/jobs
                         (batches of PRELOAD_BATCH, PRELOAD_CONNS connections:
                         the end-to-end enqueue rate); (3) start the worker and
                         time until the consumer group has nothing pending and
                         nothing unread (only this drain is timed); check every
                         job is succeeded, attempts 1.
  rbench.py celery       qbench's Celery burn-down (Redis broker, same Redis)
  rbench.py report       the RESULTS.md section on stdout

Environment (set by run.sh): QB_* as qbench.py reads them, plus RB_N,
RB_THREADS, RB_TR_FLAGS, RB_PRELOAD_BATCH, RB_PRELOAD_CONNS.
"""
import http.client
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queue-pg"))
import qbench  # noqa: E402
from qbench import E, PROCS, CpuMeter, env_int, log, out, tmp  # noqa: E402

# Every job hash. Ids start above a clock floor, not at 1, so they never
# repeat after Redis loses its data (modules/rqueue, docs/reliability.md).
COUNT_LUA = """
local n, bad = 0, 0
for _, k in ipairs(redis.call('KEYS', 'trireme:job:*')) do
  if string.match(k, '^trireme:job:%d+$') then
    local h = redis.call('HMGET', k, 'status', 'attempts')
    if h[1] == 'succeeded' and h[2] == '1' then n = n + 1 else bad = bad + 1 end
  end
end
return {n, bad}
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tr_env():
    return {"REDIS_URL": E["QB_REDIS_URL"], "QUEUE_BACKEND": "redis", "LOG_LEVEL": "warn",
            "TRIREME_INSECURE_NO_AUTH": "true", "TRIREME_ACCESS_LOG": "false"}


def worker_cmd(system):
    """trireme: the defaults, no flags at all; trireme-tuned: THREADS and TR_FLAGS."""
    cmd = [E["QB_TR_BIN"], "run", "--roles=worker"]
    if system == "trireme-tuned":
        cmd += ["--threads=%d" % env_int("RB_THREADS", 1)] + E.get("RB_TR_FLAGS", "").split()
    return cmd


def left(r):
    """Entries of the default queue not yet acknowledged (pending or unread),
    -1 before the consumer group exists. Plain XINFO, no script: the
    harness adds nothing to the scripts' statistics."""
    import redis

    try:
        groups = r.xinfo_groups("trireme:q:default")
    except redis.ResponseError:
        return -1
    for g in groups:
        name = g.get("name")
        if name in (b"trireme", "trireme"):
            return int(g.get("pending") or 0) + int(g.get("lag") or 0)
    return -1


def wait_left(r, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = left(r)
        if pred(v):
            return v
        time.sleep(0.005)
    return None


def preload(port, n, batch, conns):
    body = json.dumps([{"kind": "noop"}] * batch)
    per = n // batch
    errors = []

    def client(k):
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(k):
            h.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            resp = h.getresponse()
            data = resp.read()
            if resp.status != 201:
                errors.append("%d %s" % (resp.status, data[:200]))
                return
        h.close()

    shares = [per // conns + (1 if i < per % conns else 0) for i in range(conns)]
    ts = [threading.Thread(target=client, args=(k,)) for k in shares]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - t0, per * batch, errors


def burndown(system):
    import redis

    n = env_int("RB_N", 200000)
    batch, conns = env_int("RB_PRELOAD_BATCH", 1000), env_int("RB_PRELOAD_CONNS", 4)
    rec = {"test": "burndown", "system": system, "n": n, "ok": False}
    r = redis.Redis.from_url(E["QB_REDIS_URL"])
    r.flushdb()
    # (1) idle RSS
    cmd = worker_cmd(system)
    rec["command"] = " ".join(cmd[1:]) + "  (env QUEUE_BACKEND=redis LOG_LEVEL=warn)"
    w = PROCS.spawn("trireme-idle", cmd, env=tr_env())
    if wait_left(r, lambda v: v == 0, 15) is None:
        rec["error"] = "the idle worker did not create its consumer group"
        return out(rec)
    time.sleep(1.0)
    rec["rss_idle_kib"] = rss_kib(w.pid)
    PROCS.stop(w)
    # (2) preload over HTTP
    port = qbench.freeport()
    web = PROCS.spawn("trireme-web", [E["QB_TR_BIN"], "run", "--roles=web", "--threads=1",
                                      "--host=127.0.0.1", "--port=%d" % port], env=tr_env())
    qbench.wait_listen(port, 15)
    enq_s, sent, errors = preload(port, n, batch, conns)
    PROCS.stop(web)
    rec.update(enqueue_s=round(enq_s, 3), enqueue_per_s=round(sent / enq_s),
               preload="POST /v1/jobs, %d jobs per request, %d connections" % (batch, conns))
    if errors or sent != n:
        rec["error"] = "preload failed: %s" % (errors[:3] or "sent %d of %d" % (sent, n))
        return out(rec)
    rec["queued"] = left(r)
    redis_pid = env_int("QB_REDIS_PID", 0)
    procs = []
    meter = CpuMeter({"worker": lambda: [p.pid for p in procs], "redis": lambda: [redis_pid]})
    # (3) the timed drain
    r.config_resetstat()
    c0 = meter.sample()
    t0 = time.monotonic()
    procs.append(PROCS.spawn("trireme-worker", cmd, env=tr_env()))
    v = wait_left(r, lambda x: x == 0, qbench.TIMEOUT)
    t1 = time.monotonic()
    c1 = meter.sample()
    rec["rss_after_kib"] = rss_kib(procs[0].pid)
    rec.update(CpuMeter.delta(c0, c1))
    rec["exit_codes"] = [PROCS.stop(procs[0])]
    if v is None:
        rec["error"] = "timeout: %s left" % left(r)
        return out(rec)
    rec["wall_s"] = round(t1 - t0, 3)
    rec["jobs_per_s"] = round(n / (t1 - t0))
    # Where Redis spent its time, per job (EVALSHA includes the commands
    # its scripts call, which are also listed on their own). Read before the
    # check below, whose script (an HMGET per job) is not the worker's work.
    info = r.info("commandstats")
    good, bad = r.register_script(COUNT_LUA)()
    rec["succeeded_attempt_1"], rec["other"] = good, bad
    rec["redis_us_per_job"] = {k[len("cmdstat_"):]: round(v["usec"] / n, 2)
                               for k, v in sorted(info.items(), key=lambda kv: -kv[1]["usec"])[:8]
                               if v["usec"] / n >= 0.05}
    rec["redis_scripts"] = info.get("cmdstat_evalsha", {}).get("calls")
    rec["log"] = qbench.log_summary(tmp("trireme-worker.log"))
    rec["ok"] = good == n and bad == 0
    if not rec["ok"]:
        rec["error"] = "%d of %d succeeded with one attempt" % (good, n)
    out(rec)


def report():
    recs = [json.loads(x) for x in open(E["QB_OUT"]) if x.strip()]
    trs = [x for x in recs if x.get("system") in ("trireme", "trireme-tuned")]
    tr = trs[0] if trs else {}
    ce = next((x for x in recs if x.get("system") == "celery"), {})
    v = json.load(open(E["QB_VERSIONS_FILE"]))
    L = []
    L.append("## Job queue on Redis: Trireme vs Celery, %s" % E["QB_STARTED"])
    L.append("")
    if E.get("QB_NOTE"):
        L.append("**%s**" % E["QB_NOTE"])
        L.append("")
    L.append("- Machine: %s CPUs (%s), %s GiB, Linux %s. **2 cores shared by Redis, the worker "
             "and the harness; other work may have been running** (load average %s at the start, "
             "%s at the end)." % (E["QB_NPROC"], E["QB_CPU"], E["QB_MEM_GIB"], E["QB_KERNEL"],
                                  E["QB_LOAD_START"], E["QB_LOAD_END"]))
    L.append("- Versions: trireme %s (git %s), Redis %s, Celery %s (kombu %s, redis-py %s), "
             "Python %s; %s." % (v.get("trireme"), E["QB_GIT"], v.get("redis"), v.get("celery"),
                                 v.get("kombu"), v.get("redis_py"), v.get("python"), E["QB_ZIG"]))
    L.append("- Command: `%s`; build `%s`." % (E["QB_COMMAND"], E["QB_BUILD"]))
    L.append("- One private redis-server (no persistence) on loopback for both systems.")
    L.append("")
    L.append("| system | jobs | drain s | jobs/s | worker CPU s | Redis CPU s | notes |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    for t in trs:
        L.append("| Trireme%s `%s` | %s | %s | **%s** | %s | %s | %s |" % (
            ", defaults" if t["system"] == "trireme" else ", tuned",
            t.get("command", "?"), t.get("n"), t.get("wall_s", "-"), t.get("jobs_per_s", "-"),
            t.get("worker_cpu_s", "-"), t.get("redis_cpu_s", "-"),
            "ok: %s succeeded with 1 attempt" % t.get("succeeded_attempt_1") if t.get("ok")
            else "FAILED: %s" % t.get("error")))
    if ce:
        L.append("| Celery prefork, concurrency %s | %s | %s | **%s** | %s | %s | %s |" % (
            E.get("QB_CELERY_CONCURRENCY", "2"), ce.get("n"), ce.get("wall_s_to_last", "-"),
            ce.get("jobs_per_s", "-"), ce.get("worker_cpu_s", "-"), ce.get("redis_cpu_s", "-"),
            "ok" if ce.get("ok") else "FAILED: %s" % ce.get("error")))
    L.append("")
    for t in trs:
        v = t.get("jobs_per_s")
        L.append("- Target (issue 13 item 10), %s: drain >= 150,000 jobs/s: %s jobs/s, %s." % (
            "default settings" if t["system"] == "trireme" else "tuned", v,
            "met" if t.get("ok") and v and v >= 150000 else "**missed**"))
    for tr in trs:
        L.append("- Trireme (%s): the %s jobs were preloaded first through `POST /v1/jobs` (%s), "
                 "%s jobs/s end to end into Redis; only the drain is timed, from starting "
                 "`trireme run --roles=worker` until the consumer group has no pending and no "
                 "unread entry. Every job's hash was then checked: status succeeded, attempts 1 "
                 "(results kept for --result-ttl, 1 h)." % (tr["system"], tr.get("n"), tr.get("preload"),
                                                          tr.get("enqueue_per_s")))
        L.append("- Trireme RSS: %s KiB idle before, %s KiB after the %s jobs." % (
            tr.get("rss_idle_kib"), tr.get("rss_after_kib"), tr.get("n")))
        if tr.get("redis_us_per_job"):
            L.append("- Redis time per job by command (µs; `evalsha` includes the commands its "
                     "scripts run, also listed on their own): %s; %s script calls in all." % (
                         ", ".join("%s %s" % kv for kv in tr["redis_us_per_job"].items()),
                         tr.get("redis_scripts")))
        if tr.get("wall_s"):
            L.append("- CPU during the drain: Redis %.0f%% of one core, the Trireme worker %.0f%%, "
                     "machine %s%% busy." % (
                         100 * tr.get("redis_cpu_s", 0) / tr["wall_s"],
                         100 * tr.get("worker_cpu_s", 0) / tr["wall_s"],
                         tr.get("machine_busy_pct")))
    if ce:
        L.append("- Celery: %s tasks enqueued with `apply_async` (%s/s) before the worker started; "
                 "timed from spawning the worker to the last task (results ignored, as "
                 "bench/peers/celery_noop.py configures it)." % (ce.get("n"),
                                                                ce.get("enqueue_per_s")))
    L.append("")
    print("\n".join(L))


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, qbench.on_term)
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if what == "burndown":
            burndown(sys.argv[2] if len(sys.argv) > 2 else "trireme")
        elif what == "celery":
            qbench.celery_burndown()
        elif what == "report":
            report()
        elif what == "versions":
            qbench.versions()
        else:
            sys.exit("usage: rbench.py burndown|celery|report|versions")
    finally:
        PROCS.stop_all()
