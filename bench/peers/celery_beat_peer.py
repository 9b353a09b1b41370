"""
celery_beat_peer.py - Celery beat as bench/beat's peer (Debian python3-celery,
Redis broker). Run as `celery -A celery_beat_peer beat -S
celery_beat_peer.RecordingScheduler`.

BEAT_MODE=interval: BEAT_N entries with `schedule: BEAT_EVERY` seconds (the
closest Celery beat has to `@every 1s`; crontab has minute resolution).
Every send is recorded in BEAT_OUT as "name due sent": `due` is the time the
entry was meant to run (its last run + the interval, what beat itself
computes), `sent` the time the message was on the broker (apply_async
returned), so sent - due is Celery beat's lateness, the same quantity as
Trireme's committed-job time minus slot.

BEAT_MODE=idle: BEAT_N crontab entries at seeded random minutes and hours of
the day, for the idle CPU and RSS measurement.
"""
import os
import random
import time

from celery import Celery
from celery.beat import Scheduler
from celery.schedules import crontab

N = int(os.environ.get("BEAT_N", "100"))
EVERY = float(os.environ.get("BEAT_EVERY", "1"))
MODE = os.environ.get("BEAT_MODE", "interval")
OUT = os.environ.get("BEAT_OUT", "/dev/null")

app = Celery("beatpeer", broker=os.environ["BROKER_URL"])
app.conf.timezone = "UTC"
app.conf.enable_utc = True
if MODE == "interval":
    app.conf.beat_schedule = {f"t{i}": {"task": "beatpeer.tick", "schedule": EVERY}
                              for i in range(N)}
else:
    rnd = random.Random(1)
    app.conf.beat_schedule = {
        f"d{i}": {"task": "beatpeer.tick",
                  "schedule": crontab(minute=rnd.randrange(60), hour=rnd.randrange(24))}
        for i in range(N)}


@app.task(name="beatpeer.tick")
def tick():
    pass


class RecordingScheduler(Scheduler):
    """The default in-memory scheduler (no shelve file), recording sends."""

    _out = None

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        due = None
        if MODE == "interval":
            due = entry.last_run_at.timestamp() + entry.schedule.run_every.total_seconds()
        r = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        if due is not None:
            if self._out is None:
                self._out = open(OUT, "a", buffering=1)
            self._out.write(f"{entry.name} {due:.6f} {time.time():.6f}\n")
        return r
