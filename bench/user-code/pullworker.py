#!/usr/bin/env python3
"""pullworker.py - an external worker for bench/user-code/run.sh, two ways:

  pullworker.py http URL KIND each|batch BATCH MAX_SECONDS
      Trireme's pull protocol: POST /v1/claim {"kinds": [KIND], "max": BATCH,
      "lease": 60, "wait": 0}, then for each job hashjob.handle(payload) and
      its result reported by POST /v1/jobs/{id}/complete {"token", "result"}
      ("each": a request per job), or all of the batch's by one POST
      /v1/outcomes ("batch"); one keep-alive connection (http.client). Stops
      when a claim comes back empty.
  pullworker.py sql DSN each|batch BATCH MAX_SECONDS
      The same work on a plain table (bench.jobs, made by ucbench.py) with
      psycopg2: one transaction claims BATCH pending rows with
      SELECT ... FOR UPDATE SKIP LOCKED (UPDATE ... RETURNING, status
      running, attempts + 1, a lease), commit; then each job's result is
      written by one UPDATE per job, autocommit ("each": what the pull
      protocol's one callback per job does), or all of the batch's results by
      one UPDATE ... FROM (VALUES ...) ("batch"). Stops when a claim comes
      back empty.

Prints one JSON line at the end: {"jobs", "claims", "seconds", "errors"}.
Every loop is bounded by MAX_SECONDS. Debian's /usr/bin/python3.
"""
import http.client
import json
import os
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hashjob import handle  # noqa: E402

CLAIM_SQL = """
WITH c AS (
    SELECT id FROM bench.jobs WHERE status = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE bench.jobs j SET status = 'running', attempts = attempts + 1, started_at = now(),
       lease_until = now() + interval '60 seconds'
FROM c WHERE j.id = c.id
RETURNING j.id, j.payload
"""
DONE_SQL = ("UPDATE bench.jobs SET status = 'succeeded', result = %s, finished_at = clock_timestamp() "
            "WHERE id = %s AND status = 'running'")
DONE_BATCH_SQL = """
UPDATE bench.jobs j SET status = 'succeeded', result = v.result::jsonb, finished_at = clock_timestamp()
FROM (VALUES %s) AS v(id, result) WHERE j.id = v.id AND j.status = 'running'
"""


def run_http(url, kind, mode, batch, max_s):
    u = urlparse(url)
    h = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    hdr = {"Content-Type": "application/json"}
    claim = json.dumps({"kinds": [kind], "max": batch, "lease": 60, "wait": 0})
    jobs = claims = errors = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_s:
        h.request("POST", "/v1/claim", claim, hdr)
        r = h.getresponse()
        body = r.read()
        claims += 1
        if r.status == 204:
            break
        if r.status != 200:
            raise SystemExit("claim answered %d: %s" % (r.status, body[:200]))
        got = json.loads(body)["jobs"]
        if not got:
            break
        if mode == "batch":
            outs = [{"id": job["id"], "token": job["token"], "ok": True,
                     "result": handle(job["payload"])} for job in got]
            h.request("POST", "/v1/outcomes", json.dumps({"outcomes": outs}), hdr)
            r = h.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit("outcomes answered %d: %s" % (r.status, body[:200]))
            ok = sum(o.get("status") == "succeeded" for o in json.loads(body)["outcomes"])
            jobs += ok
            errors += len(outs) - ok
            continue
        for job in got:
            res = handle(job["payload"])
            h.request("POST", "/v1/jobs/%d/complete" % job["id"],
                      json.dumps({"token": job["token"], "result": res}), hdr)
            r = h.getresponse()
            r.read()
            if r.status != 200:
                errors += 1
            else:
                jobs += 1
    return jobs, claims, errors, time.monotonic() - t0


def run_sql(dsn, mode, batch, max_s):
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(dsn, application_name="pullworker-sql")
    cur = conn.cursor()
    jobs = claims = errors = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_s:
        conn.autocommit = False
        cur.execute(CLAIM_SQL, (batch,))
        got = cur.fetchall()
        conn.commit()
        claims += 1
        if not got:
            break
        conn.autocommit = True
        done = [(i, json.dumps(handle(p))) for i, p in got]
        if mode == "each":
            for i, res in done:
                cur.execute(DONE_SQL, (res, i))
                jobs += cur.rowcount
                errors += cur.rowcount != 1
        else:
            execute_values(cur, DONE_BATCH_SQL, done, template="(%s::bigint, %s)", page_size=len(done))
            jobs += cur.rowcount
            errors += len(done) - cur.rowcount
    conn.close()
    return jobs, claims, errors, time.monotonic() - t0


def main():
    how, where, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if how == "http":
        mode, batch, max_s = sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        jobs, claims, errors, secs = run_http(where, arg, mode, batch, max_s)
    else:
        batch, max_s = int(sys.argv[4]), float(sys.argv[5])
        jobs, claims, errors, secs = run_sql(where, arg, batch, max_s)
    print(json.dumps({"jobs": jobs, "claims": claims, "errors": errors, "seconds": round(secs, 3)}),
          flush=True)


if __name__ == "__main__":
    main()
