"""A Celery app with one no-op task, for bench/queue-pg/run.sh.

Broker: Redis at $BENCH_REDIS_URL (e.g. redis://127.0.0.1:6390/0); results
are ignored. The task body does the bookkeeping the benchmark reads, in
the same Redis (one round trip per task):

  noop()      INCR bench:done; the first task sets bench:first_at and the
              one that brings the counter to $BENCH_TARGET sets bench:done_at
              (time.time(), seconds).
  noop(t)     enqueue->start latency sample: RPUSH bench:lat time.time() - t,
              t being time.time() taken by the producer just before sending.

Worker (python3-celery from Debian, so /usr/bin/python3):
  python3 -m celery -A celery_noop worker --concurrency=2 --pool=prefork -Q bench_noop \
      --without-heartbeat --without-gossip --without-mingle --loglevel=WARNING
"""
import os
import time

import redis
from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "bench_noop")
TARGET = int(os.environ.get("BENCH_TARGET", "0") or 0)

app = Celery("celery_noop", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)

_r = None


def _redis():
    global _r
    if _r is None:  # per process: prefork children connect after the fork
        _r = redis.Redis.from_url(REDIS_URL)
    return _r


@app.task(name="bench.noop")
def noop(t_enq=None):
    now = time.time()
    r = _redis()
    if t_enq is not None:
        r.rpush("bench:lat", repr(now - float(t_enq)))
        return
    n = r.incr("bench:done")
    if n == 1:
        r.set("bench:first_at", repr(now))
    if TARGET and n == TARGET:
        r.set("bench:done_at", repr(time.time()))
