"""pool_worker.py - a pool-mode worker loop for an `exec` kind (docs/operations.md).

Trireme keeps this process running and writes one job per line on stdin;
each answer is one line on stdout. No SDK: JSON lines both ways. Put the
task in handle(); exit when stdin ends (trireme is draining or recycling).
"""
import hashlib
import json
import sys


def handle(job, progress):
    progress(50, "hashing")
    data = json.dumps(job["payload"], sort_keys=True).encode()
    return {"sha256": hashlib.sha256(data).hexdigest()}


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    job = json.loads(line)
    try:
        result = handle(job, lambda pct, step: send({"id": job["id"], "progress": pct, "step": step}))
        send({"id": job["id"], "ok": True, "result": result})
    except Exception as e:  # noqa: BLE001 - every failure is reported, the loop goes on
        send({"id": job["id"], "ok": False, "error": f"{type(e).__name__}: {e}", "retry": True})
