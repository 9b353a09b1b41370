#!/usr/bin/env python3
"""hashjob.py - the one trivial job every system runs in bench/user-code/run.sh:
SHA-256 of the job's payload (JSON, sorted keys). handle() is imported by
the Celery peer (bench/peers/celery_hash.py) and the pull workers
(pullworker.py); run as a program it is Trireme's exec kind:

  hashjob.py pool      pool mode: a job per line on stdin, an outcome per line
                       on stdout ({"id", "ok": true, "result"}), exits at EOF
  hashjob.py oneshot   one-shot mode: the job on stdin, the result on stdout
"""
import hashlib
import json
import sys


def handle(payload):
    return {"sha256": hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()}


def pool():
    out = sys.stdout
    for line in sys.stdin:
        job = json.loads(line)
        try:
            msg = {"id": job["id"], "ok": True, "result": handle(job["payload"])}
        except Exception as e:  # noqa: BLE001 - reported, the loop goes on
            msg = {"id": job["id"], "ok": False, "error": repr(e)}
        out.write(json.dumps(msg) + "\n")
        out.flush()


def oneshot():
    job = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(handle(job["payload"])))


if __name__ == "__main__":
    {"pool": pool, "oneshot": oneshot}[sys.argv[1]]()
