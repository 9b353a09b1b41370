"""
test_beat.py - the beat role against a real PostgreSQL: schedules made
through /v1/schedules, the CLI, plain SQL and a --schedules file; live
changes through NOTIFY; the overlap policy with a worker in the same test.

Assertions are about jobs and fire records, never about how fast: a test
waits (bounded) for the effect, then checks what the database holds.
"""
from __future__ import annotations

import json
import time

import pytest

pytest.register_assert_rewrite("pgtools", "beattools")
from beattools import add_schedule, fired_count, fires, gaps  # noqa: E402
from conftest import run_cli  # noqa: E402
from pgtools import API_KEY, http, wait_until  # noqa: E402

pytest_plugins = ["pgtools", "beattools"]


def start_beat(trireme, db, *flags, roles="beat"):
    srv = trireme(f"--roles={roles}", *flags, threads=1, env=db.env())
    srv.wait_log(r"database LISTEN connection up", timeout=15)
    srv.wait_log(r"beat: schedules loaded", timeout=15)
    return srv


def cli(db, *args, expect=0):
    p = run_cli(*args, env=db.env())
    assert p.returncode == expect, f"trireme {' '.join(args)} -> exit {p.returncode}\n" \
                                   f"stdout: {p.stdout}\nstderr: {p.stderr}"
    return p


# --- API ---------------------------------------------------------------------

def test_api_crud_and_validation(trireme, beat_db):
    srv = trireme("--roles=web", env=beat_db.env())
    port = srv.port
    r = http(port, "POST", "/v1/schedules", {"name": "report", "cron": "30 9 * * mon-fri",
                                             "timezone": "Europe/Berlin", "kind": "noop",
                                             "payload": {"x": 1}, "misfire": "skip"})
    assert r.status == 201, r
    s = r.json
    assert (s["name"], s["cron"], s["timezone"], s["misfire"], s["overlap"], s["source"]) == \
        ("report", "30 9 * * mon-fri", "Europe/Berlin", "skip", "allow", "api")
    assert http(port, "POST", "/v1/schedules", {"name": "report", "cron": "@daily",
                                                "kind": "noop"}).status == 409
    r = http(port, "PUT", "/v1/schedules/tick", {"every": "90s", "kind": "sleep",
                                                 "payload": {"ms": 1}})
    assert r.status == 201 and r.json["cron"] == "@every 90s", r
    r = http(port, "PUT", "/v1/schedules/tick", {"every": 60, "kind": "noop"})
    assert r.status == 200 and r.json["cron"] == "@every 60s" and r.json["kind"] == "noop", r
    r = http(port, "PATCH", "/v1/schedules/report", {"enabled": False, "jitter": "250ms"})
    assert r.status == 200 and r.json["enabled"] is False and r.json["jitter_ms"] == 250, r
    assert r.json["cron"] == "30 9 * * mon-fri"  # untouched fields stay
    names = [x["name"] for x in http(port, "GET", "/v1/schedules").json["schedules"]]
    assert names == ["report", "tick"]
    assert http(port, "GET", "/v1/schedules/tick").json["cron"] == "@every 60s"
    assert http(port, "DELETE", "/v1/schedules/tick").status == 200
    assert http(port, "GET", "/v1/schedules/tick").status == 404
    assert http(port, "DELETE", "/v1/schedules/tick").status == 404
    assert http(port, "GET", "/v1/schedules", key=None).status == 401

    bad = [
        ({"name": "x", "cron": "0 0 30 2 *", "kind": "noop"}, "cron", "February"),
        ({"name": "x", "cron": "0 25 * * *", "kind": "noop"}, "cron", "field 2 (hour)"),
        ({"name": "x", "cron": "* * * *", "kind": "noop"}, "cron", "fields"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "timezone": "Mars/Olympus"},
         "timezone", "unknown time zone"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "timezone": "../../etc/passwd"},
         "timezone", "not an IANA"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "misfire": "sometimes"}, "misfire",
         "skip, fire_once or fire_all"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "overlap": "never"}, "overlap",
         "allow or skip_if_running"),
        ({"name": "x", "cron": "@daily", "kind": "no_such_kind"}, "kind", "known job kind"),
        ({"name": "x", "cron": "@daily"}, "kind", "required"),
        ({"name": "x", "kind": "noop"}, "cron", "required"),
        ({"name": "x", "every": "1.5s", "kind": "noop"}, "every", "whole seconds"),
        ({"name": "x", "cron": "@daily", "every": 5, "kind": "noop"}, "every", "combined"),
        ({"name": "bad/name", "cron": "@daily", "kind": "noop"}, "name", "characters"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "colour": "red"}, "colour",
         "not a schedule field"),
        ({"name": "x", "cron": "@daily", "kind": "noop", "jitter": "2h"}, "jitter", "at most"),
    ]
    for body, field, words in bad:
        r = http(port, "POST", "/v1/schedules", body)
        assert r.status == 400, (body, r)
        assert r.json["error"] == "invalid_schedule"
        assert r.json["message"].startswith(field + " ") and words in r.json["message"], \
            (body, r.json)
    r = http(port, "PATCH", "/v1/schedules/report", {"cron": "61 * * * *"})
    assert r.status == 400 and r.json["message"].startswith("cron field 1 (minute)"), r
    assert http(port, "POST", "/v1/schedules", "{not json").status == 400
    # Nothing invalid was written.
    assert [x["name"] for x in http(port, "GET", "/v1/schedules").json["schedules"]] == ["report"]


# --- CLI ---------------------------------------------------------------------

def test_cli_crud_and_validation(beat_db):
    out = json.loads(cli(beat_db, "schedules", "create", "nightly", "--cron=0 3 * * *",
                         "--kind=noop", "--timezone=America/New_York", "--misfire=fire_all",
                         "--catchup-window=2h").stdout)
    assert (out["cron"], out["timezone"], out["misfire"], out["catchup_window_ms"]) == \
        ("0 3 * * *", "America/New_York", "fire_all", 7200000)
    p = cli(beat_db, "schedules", "create", "nightly", "--cron=@daily", "--kind=noop", expect=1)
    assert "already exists" in p.stderr
    out = json.loads(cli(beat_db, "schedules", "update", "nightly", "--every=30s",
                         "--overlap=skip_if_running").stdout)
    assert out["cron"] == "@every 30s" and out["overlap"] == "skip_if_running"
    assert json.loads(cli(beat_db, "schedules", "disable", "nightly").stdout)["enabled"] is False
    assert json.loads(cli(beat_db, "schedules", "enable", "nightly").stdout)["enabled"] is True
    lst = json.loads(cli(beat_db, "schedules", "list").stdout)["schedules"]
    assert [s["name"] for s in lst] == ["nightly"]
    assert json.loads(cli(beat_db, "schedules", "get", "nightly").stdout)["name"] == "nightly"
    for args, words in [
        (("create", "x", "--cron=0 0 30 2 *", "--kind=noop"), "February has at most 29 days"),
        (("create", "x", "--cron=@daily", "--kind=noop", "--timezone=Nowhere/City"),
         "unknown time zone"),
        (("create", "x", "--cron=@daily", "--kind=noop", "--misfire=maybe"), "misfire"),
        (("create", "x", "--cron=@daily", "--kind=noop", "--colour=red"), "unknown flag"),
        (("create", "x", "--cron=@daily", "--kind=noop", "--payload={bad"), "not valid JSON"),
        (("update", "nightly", "--cron=* * *"), "cron"),
        (("frobnicate", "x"), "usage"),
        (("get",), "usage"),
    ]:
        p = cli(beat_db, "schedules", *args, expect=2)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and words in lines[0], (args, p.stderr)
    p = cli(beat_db, "schedules", "get", "absent", expect=1)
    assert "no schedule named absent" in p.stderr
    cli(beat_db, "schedules", "delete", "nightly")
    assert json.loads(cli(beat_db, "schedules", "list").stdout)["schedules"] == []


# --- live changes ------------------------------------------------------------

def test_sql_edit_is_picked_up_and_fires(trireme, beat_db):
    """The seed-001 DB-scheduler workflow: edit a periodic task with plain SQL,
    see "Schedule changed", see it fire."""
    sid = add_schedule(beat_db, "db-task", "0 0 1 1 *")  # yearly: nothing due in this test
    srv = start_beat(trireme, beat_db)
    assert fired_count(beat_db, "db-task") == 0
    beat_db.exec("UPDATE trireme.schedules SET cron = '* * * * * *' WHERE name = 'db-task'")
    srv.wait_log(r"Schedule changed name=db-task id=%d" % sid, timeout=10)
    srv.wait_log(r"Sending due task db-task slot=\S+ job=\d+", timeout=10, count=2)
    rows = fires(beat_db, "db-task")
    assert len(rows) >= 2 and all(r["job_id"] for r in rows)
    jobs = beat_db.rows("SELECT id, kind, queue FROM trireme.jobs ORDER BY id")
    assert {r["job_id"] for r in rows} <= {j["id"] for j in jobs}
    assert all(j["kind"] == "noop" and j["queue"] == "beat" for j in jobs)
    # A bookkeeping update (beat's own last_fire) is not a change.
    assert srv.log.count("Schedule changed name=db-task") == 1


def test_disabled_through_sql_stops_firing(trireme, beat_db):
    add_schedule(beat_db, "every-second", "@every 1s")
    srv = start_beat(trireme, beat_db)
    wait_until(lambda: fired_count(beat_db, "every-second") >= 2, 10, what="two fires")
    # clock_timestamp() after the commit: any fire transaction that starts
    # later sees the schedule disabled (fire_schedules locks and re-reads it).
    after = beat_db.psql("UPDATE trireme.schedules SET enabled = false WHERE name = "
                         "'every-second';\nSELECT extract(epoch FROM clock_timestamp());").strip()
    srv.wait_log(r"Schedule changed name=every-second id=\d+ state=disabled", timeout=10)
    n = fired_count(beat_db, "every-second")
    time.sleep(2.5)  # two more slots come and go
    assert fired_count(beat_db, "every-second") == n
    late = beat_db.scalar("SELECT count(*) FROM trireme.jobs WHERE extract(epoch FROM created_at)"
                          f" > {after}")
    assert late == 0
    # Enabled again: it fires again, without catching up the disabled stretch.
    beat_db.exec("UPDATE trireme.schedules SET enabled = true WHERE name = 'every-second'")
    wait_until(lambda: fired_count(beat_db, "every-second") >= n + 2, 10, what="fires again")
    assert all(r["reason"] == "due" for r in fires(beat_db, "every-second"))


def test_api_change_reaches_a_running_beat(trireme, beat_db):
    srv = start_beat(trireme, beat_db, roles="web,beat")
    r = http(srv.port, "POST", "/v1/schedules", {"name": "api-tick", "every": 1, "kind": "noop",
                                                 "queue": "beat"})
    assert r.status == 201, r
    srv.wait_log(r"Schedule changed name=api-tick", timeout=10)
    wait_until(lambda: fired_count(beat_db, "api-tick") >= 2, 10, what="api-tick fires")
    assert http(srv.port, "DELETE", "/v1/schedules/api-tick").status == 200
    srv.wait_log(r"Schedule changed name=api-tick id=\d+ state=deleted", timeout=10)


# --- overlap -----------------------------------------------------------------

def test_overlap_skip_if_running(trireme, beat_db):
    """Each job sleeps 2.5 s on a 1 s schedule: slots whose previous job is
    still pending or running are recorded as skipped, and no two of its jobs
    ever run at once."""
    add_schedule(beat_db, "slow", "@every 1s", kind="sleep", queue="beat_slow",
                 payload=json.dumps({"ms": 2500}), overlap="skip_if_running")
    srv = start_beat(trireme, beat_db, "--queues=beat_slow", roles="worker,beat")
    wait_until(lambda: beat_db.count("queue = 'beat_slow' AND status = 'succeeded'") >= 2, 20,
               what="two slow jobs done")
    srv.wait_log(r"Skipping due task slow slot=\S+ reason=", timeout=10)
    rows = fires(beat_db, "slow")
    assert sum(1 for r in rows if r["reason"] == "overlap" and r["job_id"] is None) >= 2
    jobs = beat_db.rows("SELECT extract(epoch FROM created_at) AS c, "
                        "extract(epoch FROM finished_at) AS f FROM trireme.jobs "
                        "WHERE queue = 'beat_slow' AND status = 'succeeded' ORDER BY id")
    for prev, nxt in zip(jobs, jobs[1:]):
        assert nxt["c"] >= prev["f"], (prev, nxt)


def test_overlap_allow_fires_every_slot(trireme, beat_db):
    add_schedule(beat_db, "slow-allow", "@every 1s", kind="sleep", queue="beat_allow",
                 payload=json.dumps({"ms": 2500}))
    start_beat(trireme, beat_db, "--queues=beat_allow", roles="worker,beat")
    wait_until(lambda: beat_db.count("queue = 'beat_allow' AND status = 'running'") >= 2, 20,
               what="two slow jobs running at once")
    rows = fires(beat_db, "slow-allow")
    assert all(r["job_id"] for r in rows) and not gaps([r["slot"] for r in rows])


# --- --schedules file ----------------------------------------------------------

def test_schedules_file_reconcile(trireme, beat_db, tmp_path):
    beat_db.exec("INSERT INTO trireme.schedules (name, cron, kind, source) VALUES "
                 "('api-made', '@hourly', 'noop', 'api'), ('clash', '@hourly', 'noop', 'api')")
    f = tmp_path / "schedules.json"
    f.write_text(json.dumps({"schedules": [
        {"name": "file-a", "cron": "0 4 * * *", "kind": "noop", "timezone": "Europe/Berlin"},
        {"name": "file-b", "every": "10m", "kind": "noop"},
    ]}))
    srv = start_beat(trireme, beat_db, f"--schedules={f}")
    srv.wait_log(r"schedules file reconciled .*entries=2 created=2 removed=0", timeout=5)
    got = {r["name"]: r for r in beat_db.rows("SELECT name, cron, source FROM trireme.schedules")}
    assert got["file-a"]["source"] == "file" and got["file-b"]["cron"] == "@every 600s"
    assert got["api-made"]["source"] == "api"
    assert srv.stop() == 0

    # Changed, removed and added entries; one whose name an API schedule has.
    f.write_text(json.dumps([
        {"name": "file-a", "cron": "0 5 * * *", "kind": "noop", "timezone": "Europe/Berlin"},
        {"name": "file-c", "cron": "@daily", "kind": "noop"},
        {"name": "clash", "cron": "@daily", "kind": "noop"},
    ]))
    srv = start_beat(trireme, beat_db, f"--schedules={f}")
    srv.wait_log(r"schedules file reconciled .*entries=2 created=1 removed=1 skipped=1", timeout=5)
    assert "a schedule made through the API has this name" in srv.log
    got = {r["name"]: r for r in beat_db.rows("SELECT name, cron, source FROM trireme.schedules")}
    assert sorted(got) == ["api-made", "clash", "file-a", "file-c"]
    assert got["file-a"]["cron"] == "0 5 * * *"
    assert got["clash"] == {"name": "clash", "cron": "@hourly", "source": "api"}
    assert srv.stop() == 0

    # A bad file stops the start, naming the entry and field.
    f.write_text(json.dumps([{"name": "file-a", "cron": "0 0 31 4 *", "kind": "noop"}]))
    p = run_cli("run", "--roles=beat", f"--schedules={f}", env=beat_db.env(), timeout=20)
    assert p.returncode != 0
    assert "schedules[0].cron" in p.stderr and "April" in p.stderr, p.stderr
    assert beat_db.scalar("SELECT cron FROM trireme.schedules WHERE name = 'file-a'") == \
        "0 5 * * *"

    # So do two entries with one name.
    f.write_text(json.dumps([{"name": "dup", "cron": "@daily", "kind": "noop"},
                             {"name": "dup", "cron": "@hourly", "kind": "noop"}]))
    p = run_cli("run", "--roles=beat", f"--schedules={f}", env=beat_db.env(), timeout=20)
    assert p.returncode != 0
    assert "two entries have the same name" in p.stderr and "name=dup" in p.stderr, p.stderr
    assert beat_db.scalar("SELECT count(*) FROM trireme.schedules WHERE name = 'dup'") == 0


def test_lost_notification_is_caught_by_the_poll(trireme, beat_db):
    """A change whose NOTIFY never comes (the trigger is off for it) is
    found by the signature poll (--beat-poll-interval) and fires."""
    add_schedule(beat_db, "quiet", "0 0 1 1 *")
    srv = start_beat(trireme, beat_db, "--beat-poll-interval=300ms")
    beat_db.exec("BEGIN; ALTER TABLE trireme.schedules DISABLE TRIGGER schedules_notify_change;"
                 " UPDATE trireme.schedules SET cron = '@every 1s' WHERE name = 'quiet';"
                 " ALTER TABLE trireme.schedules ENABLE TRIGGER schedules_notify_change; COMMIT;")
    srv.wait_log(r"Schedule changed reason=\"poll: a change was not notified\"", timeout=10)
    wait_until(lambda: fired_count(beat_db, "quiet") >= 2, 10, what="quiet fires after the poll")
    assert "Schedule changed name=quiet" not in srv.log  # no notification arrived


def test_readyz_reports_the_beat_election(trireme, beat_db):
    """/readyz names each election this process runs: beat's here, with its
    token from trireme.leaders; the worker's is null (no worker role)."""
    srv = start_beat(trireme, beat_db, "--leader=postgres", roles="web,beat")
    srv.wait_log(r"Acquired leader lock election=beat", timeout=15)
    body = http(srv.port, "GET", "/readyz", key=None).json
    beat = body["leaders"]["beat"]
    assert beat["is_leader"] is True and beat["backend"] == "postgres"
    row = beat_db.rows("SELECT token FROM trireme.leaders WHERE name = 'beat'")
    assert beat["token"] == int(row[0]["token"]) >= 1
    assert body["leaders"]["worker"] is None and body["leader"] is None
