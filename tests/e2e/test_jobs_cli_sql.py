"""
test_jobs_cli_sql.py - the two other ways in: the `trireme enqueue` /
`trireme jobs` command line, and enqueueing from SQL inside the caller's
own transaction (the outbox pattern), where a rollback means the job never
existed and a commit wakes a worker at once (NOTIFY), long before its
fallback poll.
"""
import json
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from conftest import run_cli  # noqa: E402
from pgtools import wait_worker_ready  # noqa: E402

pytest_plugins = ["pgtools"]


def cli(db, *args, expect=0):
    p = run_cli(*args, env=db.env())
    assert p.returncode == expect, f"trireme {' '.join(args)} → exit {p.returncode}\n" \
                                   f"stdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def cli_json(db, *args):
    p = cli(db, *args)
    assert p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, f"one JSON document on one line: {p.stdout!r}"
    return json.loads(lines[0])


def one_line_error(p, *words):
    lines = p.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {p.stderr!r}"
    assert p.stdout == "", p.stdout
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    return lines[0]


# --- 2. the command line ---------------------------------------------------------

def test_cli_enqueue_get_list_cancel_retry(db):
    out = cli_json(db, "enqueue", "noop")
    assert set(out) == {"id", "status", "created"} and out["status"] == "pending"
    assert out["created"] is True
    jid = out["id"]

    sleep = cli_json(db, "enqueue", "sleep", '--payload={"ms": 5}', "--queue=mail",
                     "--priority=7", "--max-attempts=2", "--delay=60", "--unique-key=cli-1")
    j = cli_json(db, "jobs", "get", str(sleep["id"]))
    assert j["kind"] == "sleep" and j["payload"] == {"ms": 5} and j["queue"] == "mail"
    assert j["priority"] == 7 and j["max_attempts"] == 2 and j["unique_key"] == "cli-1"
    assert j["status"] == "pending" and j["attempts"] == 0
    row = db.rows(f"SELECT extract(epoch FROM run_at - created_at) AS d FROM trireme.jobs "
                  f"WHERE id = {sleep['id']}")[0]
    assert 59 <= row["d"] <= 61, f"--delay=60 → run_at {row['d']} s after created_at"
    again = cli_json(db, "enqueue", "sleep", '--payload={"ms": 5}', "--unique-key=cli-1")
    assert again == {"id": sleep["id"], "status": "pending", "created": False}

    got = cli_json(db, "jobs", "get", str(jid))
    assert got["id"] == jid and got["kind"] == "noop" and got["status"] == "pending"

    pending = cli_json(db, "jobs", "list", "--status=pending")
    assert [x["id"] for x in pending["jobs"]] == [sleep["id"], jid], "newest first"
    assert cli_json(db, "jobs", "list", "--queue=mail")["jobs"][0]["id"] == sleep["id"]
    assert [x["id"] for x in cli_json(db, "jobs", "list", "--limit=1")["jobs"]] == [sleep["id"]]
    assert [x["id"] for x in cli_json(db, "jobs", "list", f"--cursor={sleep['id']}")["jobs"]] \
        == [jid]
    assert cli_json(db, "jobs", "list", "--status=succeeded") == {"jobs": []}

    c = cli_json(db, "jobs", "cancel", str(jid))
    assert c["id"] == jid and c["status"] == "cancelled"
    assert db.job(jid)["status"] == "cancelled"
    one_line_error(cli(db, "jobs", "cancel", str(jid), expect=1), "already finished")
    assert [x["id"] for x in cli_json(db, "jobs", "list", "--status=cancelled")["jobs"]] == [jid]

    r = cli_json(db, "jobs", "retry", str(jid))
    assert r["status"] == "pending" and r["attempts"] == 0 and r["finished_at"] is None
    one_line_error(cli(db, "jobs", "retry", str(jid), expect=1), "not dead, failed or cancelled")
    one_line_error(cli(db, "jobs", "get", "987654321", expect=1), "no job 987654321")
    one_line_error(cli(db, "jobs", "cancel", "987654321", expect=1), "no job")


@pytest.mark.parametrize("args,words", [
    (["enqueue"], ["kind", "required"]),
    (["enqueue", "no_such_kind"], ["kind", "noop"]),
    (["enqueue", "noop", "--priority=x"], ["--priority"]),
    (["enqueue", "noop", "--payload={"], ["--payload", "JSON"]),
    (["enqueue", "noop", "--colour=red"], ["--colour"]),
    (["enqueue", "noop", "--run-at=tomorrow"], ["run_at"]),
    (["enqueue", "sleep", '--payload={"ms": "x"}'], ["payload"]),
    (["enqueue", "noop", "sleep"], ["one KIND"]),
    (["jobs", "get", "abc"], ["ID", "abc"]),
    (["jobs", "cancel", "-3"], ["ID"]),
    (["jobs", "list", "--status=bogus"], ["--status", "bogus"]),
    (["jobs", "list", "--limit=abc"], ["--limit", "abc"]),
    (["jobs", "list", "--limit=0"], ["--limit"]),
    (["jobs", "list", "--cursor=x"], ["--cursor"]),
    (["jobs", "list", "--nope=1"], ["--nope"]),
    (["jobs", "frobnicate"], ["usage"]),
    (["jobs"], ["usage"]),
    (["migrate", "--nope"], ["--nope"]),
])
def test_cli_bad_input_exits_2_with_one_line(db, args, words):
    p = run_cli(*args, env=db.env())
    assert p.returncode == 2, f"trireme {' '.join(args)} → {p.returncode}: {p.stderr!r}"
    one_line_error(p, *words)
    assert db.count() == 0


def test_cli_without_database_url(db):
    p = run_cli("enqueue", "noop")  # clean_env drops DATABASE_URL
    assert p.returncode in (1, 2), p
    one_line_error(p, "DATABASE_URL")
    p = run_cli("jobs", "get", "1")
    assert p.returncode in (1, 2), p
    one_line_error(p, "DATABASE_URL")
    p = run_cli("enqueue", "noop", env={"DATABASE_URL": "postgresql://trireme@127.0.0.1:1/x"})
    assert p.returncode == 1, p
    one_line_error(p, "cannot connect")


def test_cli_jobs_run_and_show_results(trireme, db):
    srv = trireme("--roles=worker", threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    jid = cli_json(db, "enqueue", "sleep", '--payload={"ms": 20}')["id"]
    db.wait_status(jid, "succeeded", timeout=15)
    j = cli_json(db, "jobs", "get", str(jid))
    assert j["status"] == "succeeded" and j["result"] == {"slept_ms": 20} and j["attempts"] == 1
    one_line_error(cli(db, "jobs", "cancel", str(jid), expect=1), "already finished")


# --- 3. enqueue from SQL inside the caller's transaction -------------------------

def test_sql_enqueue_rollback_leaves_nothing(db):
    with db.session() as s:
        s.execute("BEGIN;")
        out = s.execute("SELECT trireme.enqueue('noop');")
        assert len(out) == 1 and out[0].isdigit(), out
        assert db.count() == 0, "an uncommitted enqueue is visible outside its transaction"
        s.execute("ROLLBACK;")
    assert db.count() == 0
    assert db.count(f"id = {int(out[0])}") == 0


def test_sql_enqueue_commit_wakes_worker_at_once(trireme, db):
    srv = trireme("--roles=worker", "--poll-interval=30s", threads=2, env=db.env())
    wait_worker_ready(srv, 2)
    time.sleep(0.3)  # past the start-up claim: only a NOTIFY can wake the worker now
    with db.session() as s:
        s.execute("BEGIN;")
        jid = int(s.execute("SELECT trireme.enqueue('sleep', '{\"ms\": 1}', "
                            "queue => 'default', priority => 2);")[0])
        time.sleep(0.5)
        assert db.count() == 0
        t0 = time.monotonic()
        s.execute("COMMIT;")
    db.wait_status(jid, "succeeded", timeout=3)
    assert time.monotonic() - t0 < 3, "the worker waited for its poll, not the NOTIFY"
    j = db.job(jid)
    assert j["priority"] == 2 and j["result"] == {"slept_ms": 1}
    # unique_key through SQL: the same id back, no second row
    a = db.scalar("SELECT trireme.enqueue('noop', unique_key => 'sql-1')")
    b = db.scalar("SELECT trireme.enqueue('noop', unique_key => 'sql-1')")
    assert a == b and db.count("unique_key = 'sql-1'") == 1


def test_outbox_insert_commit_wakes_worker_rollback_does_not(trireme, db):
    """The same guarantees with a plain INSERT into trireme.jobs (what the
    trigger, not the enqueue() function, provides)."""
    srv = trireme("--roles=worker", "--poll-interval=30s", threads=2, env=db.env())
    wait_worker_ready(srv, 2)
    time.sleep(0.3)
    with db.session() as s:
        s.execute("BEGIN;")
        s.execute("INSERT INTO trireme.jobs (kind, payload) VALUES ('sleep', '{\"ms\": 1}');")
        s.execute("ROLLBACK;")
        assert db.count() == 0
        s.execute("BEGIN;")
        jid = int(s.execute("INSERT INTO trireme.jobs (kind) VALUES ('noop') RETURNING id;")[0])
        time.sleep(0.5)
        assert db.count() == 0
        t0 = time.monotonic()
        s.execute("COMMIT;")
    db.wait_status(jid, "succeeded", timeout=3)
    assert time.monotonic() - t0 < 3, "the worker waited for its poll, not the NOTIFY"
    assert db.count() == 1
