"""A Celery app whose one task POSTs a job to an HTTP(S) endpoint, for
bench/http-jobs/run.sh: the peer of Trireme's `http` job kinds.

Broker: Redis at $BENCH_REDIS_URL; results are ignored. Each prefork child
keeps one `requests.Session` (keep-alive, its own connection pool,
trust_env off) to $BENCH_URL, verified against $BENCH_CA (a PEM file) for
https://. The body
is what Trireme sends for a job: {"id","kind","queue","attempt",
"max_attempts","payload"} as JSON, Content-Type application/json. A non-2xx
answer raises (the task fails, as the Trireme job would be retried).

Bookkeeping in the same Redis, one round trip per task (as celery_noop.py):
INCR bench:done; the first task sets bench:first_at, the one bringing the
counter to $BENCH_TARGET sets bench:done_at (time.time()).

Worker (Debian's python3-celery and python3-requests, so /usr/bin/python3):
  python3 -m celery -A celery_http worker --pool=prefork [-c 8] -Q bench_http \
      --without-heartbeat --without-gossip --without-mingle --loglevel=WARNING
"""
import json
import os
import time

import redis
import requests
from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "bench_http")
TARGET = int(os.environ.get("BENCH_TARGET", "0") or 0)
URL = os.environ.get("BENCH_URL", "http://127.0.0.1:8080/job")
CA = os.environ.get("BENCH_CA") or True

app = Celery("celery_http", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)

_r = None
_s = None


def _clients():
    global _r, _s
    if _r is None:  # per process: prefork children connect after the fork
        _r = redis.Redis.from_url(REDIS_URL)
        _s = requests.Session()
        _s.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment do not apply
    return _r, _s


@app.task(name="bench.deliver", bind=True)
def deliver(self, job_id, payload):
    r, s = _clients()
    body = json.dumps({"id": job_id, "kind": "deliver", "queue": QUEUE, "attempt": 1,
                       "max_attempts": 1, "payload": payload})
    resp = s.post(URL, data=body, headers={"Content-Type": "application/json"}, timeout=30,
               verify=CA)
    resp.content  # read the whole answer, so the connection goes back to the pool
    if resp.status_code // 100 != 2:
        raise RuntimeError("HTTP %d" % resp.status_code)
    if payload and "t" in payload:  # a latency sample: the receiver records it
        return
    now = time.time()
    n = r.incr("bench:done")
    if n == 1:
        r.set("bench:first_at", repr(now))
    if TARGET and n == TARGET:
        r.set("bench:done_at", repr(time.time()))
