"""
test_jobs_cli_backends.py - `trireme enqueue` and `trireme jobs` on both
queue backends: every subcommand prints the same documents (a list without
next_cursor), refuses with the same one-line messages and exit codes (0
ok, 1 the store said no or cannot be reached, 2 bad usage), and a store
that cannot be reached fails the command at once, with one line that says
why, instead of being retried.
"""
import json
import os
import re
import time

import pytest

from conftest import run_cli
from test_redis_queue import Redis

pytest.register_assert_rewrite("pgtools")
pytest_plugins = ["pgtools"]

FAST_S = 3.0  # a refused connection is known in milliseconds; this bounds it under ASan and load


@pytest.fixture(params=["postgres", "redis"])
def store(request, tmp_path):
    """The environment a command needs for one backend, on an empty store."""
    if request.param == "postgres":
        yield request.getfixturevalue("db").env()
        return
    r = Redis(tmp_path)
    yield {"REDIS_URL": r.url, "QUEUE_BACKEND": "redis"}
    r.stop()


def cli(env, *args, expect=0):
    p = run_cli(*args, env=env)
    assert p.returncode == expect, f"trireme {' '.join(args)} → exit {p.returncode}\n" \
                                   f"stdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def cli_json(env, *args):
    p = cli(env, *args)
    assert p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, f"one JSON document on one line: {p.stdout!r}"
    return json.loads(lines[0])


def one_line(p) -> str:
    assert p.stdout == "", p.stdout
    lines = p.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {p.stderr!r}"
    return lines[0]


def test_every_subcommand(store):
    first = cli_json(store, "enqueue", "noop")
    assert set(first) == {"id", "status", "created"}
    assert first["status"] == "pending" and first["created"] is True
    second = cli_json(store, "enqueue", "sleep", '--payload={"ms": 5}', "--queue=mail",
                      "--priority=7", "--max-attempts=2", "--delay=60", "--unique-key=k1")
    again = cli_json(store, "enqueue", "sleep", '--payload={"ms": 5}', "--unique-key=k1")
    assert again == {"id": second["id"], "status": "pending", "created": False}
    a, b = first["id"], second["id"]

    j = cli_json(store, "jobs", "get", str(b))
    assert (j["id"], j["kind"], j["queue"], j["priority"], j["max_attempts"]) == \
        (b, "sleep", "mail", 7, 2)
    assert j["payload"] == {"ms": 5} and j["unique_key"] == "k1" and j["status"] == "pending"

    # The list is {"jobs": [...]} alone, newest first, on every page.
    listed = cli_json(store, "jobs", "list")
    assert list(listed) == ["jobs"] and [x["id"] for x in listed["jobs"]] == [b, a]
    page = cli_json(store, "jobs", "list", "--limit=1")
    assert list(page) == ["jobs"] and [x["id"] for x in page["jobs"]] == [b]
    assert [x["id"] for x in cli_json(store, "jobs", "list", f"--cursor={b}")["jobs"]] == [a]
    assert [x["id"] for x in cli_json(store, "jobs", "list", "--queue=mail")["jobs"]] == [b]
    assert [x["id"] for x in cli_json(store, "jobs", "list", "--kind=noop")["jobs"]] == [a]
    assert cli_json(store, "jobs", "list", "--status=succeeded") == {"jobs": []}

    assert cli_json(store, "jobs", "cancel", str(a))["status"] == "cancelled"
    assert one_line(cli(store, "jobs", "cancel", str(a), expect=1)) == \
        f"trireme jobs cancel: job {a} is already finished"
    assert [x["id"] for x in cli_json(store, "jobs", "list", "--status=cancelled")["jobs"]] == [a]
    r = cli_json(store, "jobs", "retry", str(a))
    assert r["status"] == "pending" and r["attempts"] == 0 and r["finished_at"] is None
    assert one_line(cli(store, "jobs", "retry", str(a), expect=1)) == \
        f"trireme jobs retry: job {a} is not dead, failed or cancelled"
    for sub in ("get", "cancel", "retry"):
        line = one_line(cli(store, "jobs", sub, "987654", expect=1))
        assert line.startswith(f"trireme jobs {sub}: no job 987654"), line


@pytest.mark.parametrize("args,words", [
    (["enqueue"], ["kind", "required"]),
    (["enqueue", "no_such_kind"], ["kind"]),
    (["enqueue", "noop", "--priority=x"], ["--priority"]),
    (["enqueue", "noop", "--payload={"], ["--payload", "JSON"]),
    (["enqueue", "noop", "--colour=red"], ["--colour"]),
    (["enqueue", "noop", "sleep"], ["one KIND"]),
    (["jobs", "get", "abc"], ["ID", "abc"]),
    (["jobs", "retry", "-3"], ["ID"]),
    (["jobs", "list", "--status=bogus"], ["--status", "bogus"]),
    (["jobs", "list", "--limit=501"], ["--limit"]),
    (["jobs", "list", "--cursor=x"], ["--cursor"]),
    (["jobs", "list", "--nope=1"], ["--nope"]),
    (["jobs", "frobnicate"], ["usage"]),
    (["enqueue", "noop", "--queue-backend=mongodb"], ["--queue-backend=mongodb", "no such"]),
    (["jobs", "list", "--queue-backend=redis-cluster"], ["--queue-backend", "no such"]),
])
def test_bad_input_exits_2_and_stores_nothing(store, args, words):
    p = run_cli(*args, env=store)
    assert p.returncode == 2, f"trireme {' '.join(args)} → {p.returncode}: {p.stderr!r}"
    line = one_line(p)
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"
    assert cli_json(store, "jobs", "list") == {"jobs": []}


def unreachable(store) -> dict:
    if store.get("QUEUE_BACKEND") == "redis":
        return {**store, "REDIS_URL": "redis://127.0.0.1:1/0"}
    return {**store, "DATABASE_URL": "postgresql://trireme@127.0.0.1:1/x"}


@pytest.mark.parametrize("args", [["enqueue", "noop"], ["jobs", "list"], ["jobs", "get", "1"],
                                  ["jobs", "cancel", "1"], ["jobs", "retry", "1"]])
def test_unreachable_store_fails_at_once(store, args):
    t0 = time.monotonic()
    p = run_cli(*args, env=unreachable(store))
    took = time.monotonic() - t0
    assert p.returncode == 1, p
    line = one_line(p)
    what = "Redis at 127.0.0.1:1" if store.get("QUEUE_BACKEND") else "the database"
    assert line.startswith(f"trireme {args[0]}: cannot connect to {what}: "), line
    assert took < FAST_S, f"{took:.2f} s to give up on a refused connection"


def test_missing_or_bad_settings_exit_1(store):
    redis = store.get("QUEUE_BACKEND") == "redis"
    env = {k: v for k, v in store.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    line = one_line(cli(env, "jobs", "get", "1", expect=1))
    assert line == ("trireme jobs: set REDIS_URL (or --redis-url=...)" if redis else
                    "trireme jobs: set DATABASE_URL (or --database-url=...)"), line
    if redis:
        line = one_line(cli({**env, "REDIS_URL": "http://x"}, "enqueue", "noop", expect=1))
        assert line == "trireme enqueue: REDIS_URL must start with redis:// or rediss://", line
        # The flags win over the environment, as for `trireme run`.
        got = cli_json({**env, "REDIS_URL": "http://x"}, "jobs", "list",
                       f"--redis-url={store['REDIS_URL']}")
        assert got == {"jobs": []}
    else:
        got = cli_json(env, "jobs", "list", f"--database-url={store['DATABASE_URL']}")
        assert got == {"jobs": []}


def test_the_backend_name_is_read_as_trireme_run_reads_it(store):
    # Any case, and postgresql for postgres: the name that starts the server
    # reaches the same store from the command line.
    name = store.get("QUEUE_BACKEND", "postgres")
    spelled = "PostgreSQL" if name == "postgres" else name.upper()
    env = {k: v for k, v in store.items() if k != "QUEUE_BACKEND"}
    got = cli_json(env, "enqueue", "noop", f"--queue-backend={spelled}")
    assert cli_json(store, "jobs", "get", str(got["id"]))["id"] == got["id"]


def test_redis_refusing_auth_or_select_fails_at_once():
    base = os.environ.get("TRIREME_TEST_REDIS_AUTH_URL")
    if not base:
        pytest.fail("TRIREME_TEST_REDIS_AUTH_URL is not set (tools/test.sh starts it)")
    host = re.sub(r"^redis://[^@]*@", "", base).split("/")[0]
    cases = [(f"redis://:wrong@{host}/0", "trireme jobs: Redis refused AUTH: WRONGPASS"),
             (re.sub(r"/\d*$", "", base) + "/99", "trireme jobs: Redis refused SELECT: ERR")]
    for url, start in cases:
        t0 = time.monotonic()
        p = run_cli("jobs", "list", env={"REDIS_URL": url, "QUEUE_BACKEND": "redis"})
        assert p.returncode == 1, p
        line = one_line(p)
        assert line.startswith(start), line
        assert time.monotonic() - t0 < FAST_S


def test_database_refusal_is_one_line_and_exit_1(db):
    """A statement the database refuses (here: no rights on the schema) is
    one line on stderr, libpq's multi-line message folded, exit 1."""
    db.exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'e2e_cli_norights')"
            " THEN CREATE ROLE e2e_cli_norights LOGIN; END IF; END $$;")
    url = re.sub(r"//[^@/]*@", "//e2e_cli_norights@", db.url)
    for args in (["enqueue", "noop"], ["jobs", "list"], ["jobs", "get", "1"]):
        line = one_line(cli({"DATABASE_URL": url}, *args, expect=1))
        assert line.startswith(f"trireme {args[0]}: ") and "permission denied" in line, line
