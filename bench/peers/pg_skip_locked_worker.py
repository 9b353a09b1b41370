#!/usr/bin/env python3
"""A plain Python PostgreSQL job worker: the textbook FOR UPDATE SKIP LOCKED loop.

The peer of Trireme's worker in bench/queue-pg/run.sh. It works on the same
table (trireme.jobs, sql/001_jobs.sql) and only runs `noop` jobs: each
transaction claims up to --batch pending jobs of --queue, marks them
succeeded in one UPDATE and commits.

    python3 pg_skip_locked_worker.py --dsn postgresql://... [--batch 20]

It waits for work the way Trireme does: when a claim comes back short it
sleeps on LISTEN trireme_jobs (the table's insert trigger notifies), with a
--poll fallback. SIGTERM/SIGINT stop it after the current transaction; on
exit it prints one JSON line: {"jobs": N, "transactions": T, "seconds": S}.

psycopg2 from Debian (python3-psycopg2): run it with /usr/bin/python3.
"""
import argparse
import json
import os
import select
import signal
import sys
import time

import psycopg2

# started_at = now(): the claiming transaction's start, as Trireme's claim
# sets it, so enqueue->start latency reads the same from both rows.
# NOT pull: the table's dequeue index is partial on it (sql/008, pull
# jobs live apart); without it the claim matches no index and sorts every
# pending row each time (1,050 jobs/s in a 200,000-job burn-down).
CLAIM = """
WITH c AS (
    SELECT id FROM trireme.jobs
    WHERE status = 'pending' AND NOT pull AND queue = %(queue)s AND run_at <= now()
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE trireme.jobs j
SET status = 'running', attempts = attempts + 1, started_at = now(), updated_at = now()
FROM c WHERE j.id = c.id
RETURNING j.id
"""

# clock_timestamp(): the moment of the UPDATE, not the transaction's start.
COMPLETE = """
UPDATE trireme.jobs
SET status = 'succeeded', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
    progress_percent = 100
WHERE id = ANY(%(ids)s) AND status = 'running'
"""

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--queue", default="default")
    ap.add_argument("--batch", type=int, default=20, help="jobs claimed per transaction")
    ap.add_argument("--poll", type=float, default=2.0, help="fallback poll in seconds when idle")
    ap.add_argument("--synchronous-commit", default="off", choices=("on", "off", "local"),
                    help="the session's synchronous_commit (Trireme's worker uses off)")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long anyway")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    # A signal also writes to this pipe, so it wakes the idle select at once.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    opts = "-c synchronous_commit=%s" % args.synchronous_commit
    conn = psycopg2.connect(args.dsn, options=opts, application_name="pg_skip_locked_worker")
    lconn = psycopg2.connect(args.dsn, application_name="pg_skip_locked_worker_listen")
    lconn.autocommit = True
    with lconn.cursor() as lc:
        lc.execute("LISTEN trireme_jobs")

    t0 = time.monotonic()
    deadline = t0 + args.max_seconds
    jobs = txs = 0
    params = {"queue": args.queue, "limit": args.batch}
    cur = conn.cursor()
    while not stop and time.monotonic() < deadline:
        # Notifications that arrived so far are answered by the claim below;
        # later ones stay on the socket and wake the select.
        lconn.poll()
        del lconn.notifies[:]
        cur.execute(CLAIM, params)
        ids = [r[0] for r in cur.fetchall()]
        if ids:
            cur.execute(COMPLETE, {"ids": ids})
        conn.commit()
        txs += 1
        jobs += len(ids)
        if len(ids) < args.batch and not stop:
            select.select([lconn, wake_r], [], [], args.poll)
    cur.close()
    conn.close()
    lconn.close()
    print(json.dumps({"jobs": jobs, "transactions": txs,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
