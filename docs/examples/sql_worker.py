#!/usr/bin/env python3
"""sql_worker.py - a Trireme worker that needs nothing but a PostgreSQL driver.

It claims jobs of a pull kind with trireme.claim(), does its own writes and
calls trireme.complete() in the SAME transaction: the job is done exactly
when the worker's data is committed. A crash or a rollback before COMMIT
leaves neither the row nor the completion; the lease then expires and
the job is retried. A lost lease makes trireme.complete() raise SQLSTATE
TR409, which aborts the transaction, so the stale attempt writes nothing.

    DATABASE_URL=postgresql://... sql_worker.py KIND [MAX_JOBS]

The user's table here is sql_worker_results(job_id bigint primary key,
digest text); a real worker writes its own tables.
"""
import hashlib
import json
import os
import sys
import time

import psycopg

kind = sys.argv[1]
max_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # 0: run forever
done = 0
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS sql_worker_results "
                 "(job_id bigint PRIMARY KEY, digest text NOT NULL)")
    conn.commit()
    idle = 0.0
    while not max_jobs or done < max_jobs:
        # One transaction per batch: claim, work, write, complete, commit.
        with conn.transaction():
            jobs = conn.execute("SELECT id, payload, token FROM trireme.claim(%s, max => 20, "
                                "lease => '30 s')", ([kind],)).fetchall()
            for job_id, payload, token in jobs:
                digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
                conn.execute("INSERT INTO sql_worker_results VALUES (%s, %s)", (job_id, digest))
                conn.execute("SELECT trireme.complete(%s, %s, %s)",
                             (job_id, token, json.dumps({"digest": digest})))
        done += len(jobs)
        idle = 0.0 if jobs else min(idle + 0.05, 0.5)  # empty queue: back off a little
        time.sleep(idle)
print(f"sql_worker: {done} jobs done", flush=True)
