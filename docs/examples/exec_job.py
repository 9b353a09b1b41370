"""exec_job.py - a one-shot program for an `exec` kind (docs/operations.md).

Reads the job from stdin, reports progress on TRIREME_PROGRESS_FD, logs on
stderr, prints the result as JSON on stdout. Exit 0: done; exit 75: retry
later; any other exit: failed (the end of stderr becomes last_error).
"""
import json
import os
import sys
import time

job = json.load(sys.stdin)  # {"id", "kind", "queue", "attempt", "max_attempts", "payload"}
progress = os.fdopen(int(os.environ["TRIREME_PROGRESS_FD"]), "w", buffering=1)
chunks = int(job["payload"].get("chunks", 10))
for i in range(1, chunks + 1):
    time.sleep(0.1)  # the real work
    progress.write(f"{i * 100 // chunks} Processing chunk {i}/{chunks}\n")
print(f"job {job['id']} attempt {job['attempt']}: {chunks} chunks done", file=sys.stderr)
json.dump({"chunks": chunks}, sys.stdout)
