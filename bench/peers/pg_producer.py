#!/usr/bin/env python3
"""Enqueue `noop` jobs into trireme.jobs one row per transaction, for a while.

The producer side of the Python peer in bench/queue-pg/run.sh (sustained
enqueue): an autocommit loop of one INSERT each, a durable commit
(synchronous_commit as the server has it, on by default), as Trireme's
POST /v1/jobs commits durably. The default statement is a plain
`INSERT INTO trireme.jobs (kind) VALUES (%s) RETURNING id`, what a Python
application with its own queue table would run (the table's statement
trigger still sends the NOTIFY); --sql picks another, e.g.
--sql "SELECT trireme.enqueue(%s)".

    python3 pg_producer.py --dsn postgresql://... --seconds 60

Stops at --seconds or on SIGTERM/SIGINT and prints one JSON line:
{"jobs": N, "seconds": S}. psycopg2 from Debian: run it with /usr/bin/python3.
"""
import argparse
import json
import signal
import sys
import time

import psycopg2

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--kind", default="noop")
    ap.add_argument("--sql", default="INSERT INTO trireme.jobs (kind) VALUES (%s) RETURNING id",
                    help="one statement with one %%s (the kind) returning one row")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    conn = psycopg2.connect(args.dsn, application_name="pg_producer")
    conn.autocommit = True
    cur = conn.cursor()
    t0 = time.monotonic()
    end = t0 + args.seconds
    n = 0
    while not stop and time.monotonic() < end:
        cur.execute(args.sql, (args.kind,))
        cur.fetchone()
        n += 1
    secs = time.monotonic() - t0
    conn.close()
    print(json.dumps({"jobs": n, "seconds": round(secs, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
