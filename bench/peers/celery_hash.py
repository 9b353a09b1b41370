"""A Celery app whose one task runs bench/user-code/hashjob.py's handle()
(SHA-256 of the payload), for bench/user-code/run.sh: the peer of Trireme's
exec kinds in pool mode.

Broker: Redis at $BENCH_REDIS_URL; results are ignored (the digest is
computed and dropped, as the noop peer's). Bookkeeping in the same Redis, one
round trip per task (as celery_noop.py): INCR bench:done; the first task
sets bench:first_at, the one bringing the counter to $BENCH_TARGET sets
bench:done_at (time.time()).

  python3 -m celery -A celery_hash worker --pool=prefork -c 2 -Q bench_hash \
      --without-heartbeat --without-gossip --without-mingle --loglevel=WARNING
"""
import os
import sys
import time

import redis
from celery import Celery

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "user-code"))
from hashjob import handle  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "bench_hash")
TARGET = int(os.environ.get("BENCH_TARGET", "0") or 0)

app = Celery("celery_hash", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)

_r = None


@app.task(name="bench.hash")
def hash_payload(payload):
    global _r
    handle(payload)
    if _r is None:  # per process: prefork children connect after the fork
        _r = redis.Redis.from_url(REDIS_URL)
    now = time.time()
    n = _r.incr("bench:done")
    if n == 1:
        _r.set("bench:first_at", repr(now))
    if TARGET and n == TARGET:
        _r.set("bench:done_at", repr(time.time()))
