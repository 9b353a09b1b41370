"""
test_api_contract.py - the HTTP API answers the same on both queue backends
(PostgreSQL and Redis), for the inputs that once broke one or the other:

- a value out of its named range (a delay of 285,000 years, a timeout past
  24 days) is a 400 naming the field, never a 503 or a 201 with a null
  run_at;
- one bad job among many concurrent valid ones fails alone (the PostgreSQL
  backend shares one INSERT between concurrent enqueues);
- malformed query parameters (invalid UTF-8) and schedules with an empty or
  a 5,000-character cron are 400s naming the field;
- no answer ever carries database error text; a statement the database
  refuses is logged with the request id and answered with a stable code;
- while the database (or, on the Redis backend, Redis) is down, requests
  that need it and /readyz answer 503 with Retry-After at once, not after a
  query timeout;
- Redis job ids never repeat, even after Redis restarts without its data.

Every test that takes a `backend` runs once per backend; the Redis one gets
a private redis-server (so tests may stop it) and the same PostgreSQL for
schedules, as a Redis-queue deployment with DATABASE_URL has.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, http, wait_until  # noqa: E402
from test_beat_failover import pg_ctl  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

pytest_plugins = ["pgtools"]

# Text that only a database error carries: none of it may reach a client.
DB_TEXT = ("ERROR:", "violates", "Failing row", "invalid byte sequence", "SQLSTATE", "CONTEXT:",
           "DETAIL:", "e2e_no_poison", "ERR ", "NOSCRIPT", "user_script")

FAST = 1.0  # seconds: a generous bound for "at once" (the target is 50 ms)


class Api:
    """A web server on one backend."""

    def __init__(self, name: str, srv, redis: Redis | None):
        self.name = name
        self.srv = srv
        self.redis = redis

    @property
    def port(self) -> int:
        return self.srv.port

    def req(self, method: str, path: str, body=None, **kw):
        r = http(self.port, method, path, body, **kw)
        assert_clean(r)
        return r


def assert_clean(r):
    """Every error answer is JSON with a code, and never database text."""
    if r.status >= 400:
        body = r.json
        if "database" not in body:  # /readyz has its own body
            assert isinstance(body.get("error"), str) and body["error"], r
        text = r.body.decode("utf-8", "replace")
        leaked = [t for t in DB_TEXT if t in text]
        assert not leaked, f"database text {leaked} in an answer: {r}"
    if r.status == 503:
        assert r.header("Retry-After"), f"503 without Retry-After: {r} {dict(r.headers)}"


@pytest.fixture(params=["postgres", "redis"])
def backend(request, trireme, db, tmp_path):
    redis = None
    env = db.env()
    if request.param == "redis":
        redis = Redis(tmp_path)
        env.update({"REDIS_URL": redis.url, "QUEUE_BACKEND": "redis"})
    srv = trireme("--roles=web", threads=1, env=env)
    srv.wait_log(r"database connected", timeout=15)
    api = Api(request.param, srv, redis)
    wait_until(lambda: http(srv.port, "GET", "/readyz", key=None).status == 200, 15,
               what="/readyz ok")
    yield api
    if redis:
        redis.stop()


def field_error(r, field: str, status: int = 400):
    assert r.status == status, r
    body = r.json
    assert field in body["message"], body
    return body


# --- values out of range ---------------------------------------------------------

@pytest.mark.parametrize("job,field", [
    ({"kind": "noop", "delay": 9000000000000000}, "delay"),
    ({"kind": "noop", "delay": 10000000000000000}, "delay"),
    ({"kind": "noop", "delay": "99999999999999999999s"}, "delay"),
    ({"kind": "noop", "delay": 3654 * 86400}, "delay"),
    ({"kind": "noop", "timeout": 10000000000000000}, "timeout"),
    ({"kind": "noop", "timeout": 25 * 86400}, "timeout"),
    ({"kind": "noop", "priority": 40000}, "priority"),
    ({"kind": "noop", "max_attempts": 0}, "max_attempts"),
    ({"kind": "noop", "run_at": "10000-01-01T00:00:00Z"}, "run_at"),
    ({"kind": "noop", "queue": ""}, "queue"),
])
def test_out_of_range_values_are_400_naming_the_field(backend, job, field):
    body = field_error(backend.req("POST", "/v1/jobs", job), field)
    assert body["error"] == "invalid_job", body


def test_values_at_their_limits_are_accepted_alike(backend):
    for job in ({"kind": "noop", "delay": 3653 * 86400},
                {"kind": "noop", "timeout": 24 * 86400},
                {"kind": "noop", "run_at": "9999-12-31T23:59:59Z"},
                {"kind": "noop", "run_at": "1970-01-01T00:00:00Z"},
                {"kind": "noop", "payload": {"n": 1e308, "s": "\u00e9\U0001f600"}}):
        r = backend.req("POST", "/v1/jobs", job)
        assert r.status == 201, (job, r)
        got = backend.req("GET", f"/v1/jobs/{r.json['id']}")
        assert got.status == 200 and got.json["run_at"] is not None, (job, got)


def test_nul_and_invalid_utf8_in_a_body_are_400(backend):
    for raw in (b'{"kind":"noop","payload":{"s":"a\\u0000b"}}',
                b'{"kind":"noop","queue":"\xff\xfe"}',
                b'{"kind":"noop","unique_key":"\\u0000"}'):
        r = backend.req("POST", "/v1/jobs", raw)
        assert r.status == 400, (raw, r)


# --- one bad job among many -------------------------------------------------------

def test_one_bad_job_fails_alone_among_concurrent_valid_ones(backend):
    n = 80
    results: list = [None] * (n + 1)
    go = threading.Barrier(n + 1)

    def send(i):
        job = {"kind": "noop", "delay": 9000000000000000} if i == n else \
            {"kind": "noop", "queue": "contract", "delay": 3600}
        go.wait(timeout=30)
        results[i] = http(backend.port, "POST", "/v1/jobs", job, timeout=30)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r in results:
        assert_clean(r)
    assert results[n].status == 400, results[n]
    bad = [r for r in results[:n] if r.status != 201]
    assert not bad, f"{len(bad)} valid jobs refused: {bad[:3]}"
    assert len({r.json["id"] for r in results[:n]}) == n


def test_concurrent_duplicates_share_one_job(backend):
    n = 20
    results: list = [None] * n
    go = threading.Barrier(n)

    def send(i):
        go.wait(timeout=30)
        results[i] = http(backend.port, "POST", "/v1/jobs",
                          {"kind": "noop", "unique_key": f"contract-{backend.name}",
                           "delay": 3600}, timeout=30)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.status for r in results) == [200] * (n - 1) + [201], results
    assert len({r.json["id"] for r in results}) == 1
    assert sum(r.json["created"] for r in results) == 1


# --- query parameters and ids --------------------------------------------------------

@pytest.mark.parametrize("query", ["queue=%ff%fe", "kind=%c3%28", "queue=a%00b", "status=%ff",
                                   "limit=0", "limit=501", "cursor=-1", "cursor=%ff"])
def test_malformed_list_queries_are_400(backend, query):
    r = backend.req("GET", f"/v1/jobs?{query}")
    assert r.status == 400, (query, r)
    assert r.json["error"] == "invalid_query", r


def test_list_and_get_answers_match(backend):
    r = backend.req("GET", "/v1/jobs?queue=%c3%a9t%c3%a9&limit=500&cursor=999999999999999999")
    assert r.status == 200 and r.json == {"jobs": [], "next_cursor": None}, r
    for path in ("/v1/jobs/999999999999999999", "/v1/jobs/0"):
        assert backend.req("GET", path).status == 404
    for path in ("/v1/jobs/-1", "/v1/jobs/1e3", "/v1/jobs/9999999999999999999"):
        assert backend.req("GET", path).status == 400


# --- schedules ---------------------------------------------------------------------

@pytest.mark.parametrize("cron", ["", " ", "x" * 5000, "* * * * * * * *", 5, None])
def test_bad_cron_is_400_naming_cron(backend, cron):
    body = {"name": "contract-cron", "kind": "noop", "cron": cron}
    if cron is None:
        del body["cron"]
    r = backend.req("POST", "/v1/schedules", body)
    b = field_error(r, "cron")
    assert b["error"] == "invalid_schedule", b
    if isinstance(cron, str) and len(cron) > 300:
        assert "at most" in b["message"], b


def test_bad_schedule_values_are_400(backend):
    for body, field in (({"name": "c1", "kind": "noop", "every": 0}, "every"),
                        ({"name": "c1", "kind": "noop", "every": "1e30s"}, "every"),
                        ({"name": "c1", "kind": "noop", "cron": "* * * * *",
                          "timeout": 10000000000000000}, "timeout"),
                        ({"name": "c1", "kind": "noop", "cron": "* * * * *",
                          "timezone": "x" * 5000}, "timezone"),
                        ({"name": "c1", "kind": "noop", "cron": "* * * * *",
                          "queue": "\u00e9" * 300}, "queue")):
        field_error(backend.req("POST", "/v1/schedules", body), field)
    field_error(backend.req("PATCH", "/v1/schedules/c1", {"cron": ""}), "cron")


# --- database errors ---------------------------------------------------------------

def test_a_statement_the_database_refuses_fails_only_its_request(backend, db):
    """A constraint the validation does not know (an operator's CHECK): the
    refused job gets a 4xx with a stable code and no SQL text; the
    database's text is logged with the request id; the valid jobs that
    shared its INSERT succeed. To make them share it, a lock holds the
    first INSERT in flight while the others arrive (they then go out
    together as the next one)."""
    if backend.name != "postgres":
        pytest.skip("a CHECK constraint is a PostgreSQL thing")
    db.exec("ALTER TABLE trireme.jobs ADD CONSTRAINT e2e_no_poison CHECK (queue <> 'poison')")
    try:
        n = 40
        results: list = [None] * (n + 2)

        def send(i):
            job = {"kind": "noop", "queue": "poison" if i == n else "fine", "delay": 3600}
            results[i] = http(backend.port, "POST", "/v1/jobs", job, timeout=30,
                              headers={"X-Request-Id": f"contract-{i}"})

        with db.session() as lock:
            lock.execute("BEGIN; LOCK TABLE trireme.jobs IN SHARE ROW EXCLUSIVE MODE;")
            first = threading.Thread(target=send, args=(n + 1,))
            first.start()
            wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                                         "wait_event_type = 'Lock' AND query LIKE "
                                         "'%enqueue_batch%'") == 1, 10,
                       what="the first INSERT waits for the lock")
            threads = [threading.Thread(target=send, args=(i,)) for i in range(n + 1)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # all of them queue behind the INSERT in flight
            lock.execute("COMMIT;")
        for t in [first] + threads:
            t.join(timeout=60)
        for r in results:
            assert_clean(r)
        assert [r.status for r in results[:n]] == [201] * n, results
        assert results[n + 1].status == 201, results[n + 1]
        refused = results[n]
        assert refused.status == 400 and refused.json["error"] == "rejected", refused
        backend.srv.wait_log(r"database refused a shared enqueue; each request is retried alone")
        backend.srv.wait_log(rf"code=rejected error=.*e2e_no_poison.*request_id=contract-{n}$",
                             timeout=10)
        assert db.count("queue = 'fine'") == n + 1 and db.count("queue = 'poison'") == 0
    finally:
        db.exec("ALTER TABLE trireme.jobs DROP CONSTRAINT e2e_no_poison")


def test_enqueues_never_wait_past_their_deadline_behind_a_stuck_insert(backend, db):
    """The PostgreSQL backend has one INSERT in flight per loop; a request
    arriving while it is stuck waits for it at most until its own deadline
    (10 s), not for the stuck one's timeout and then a full timeout of its
    own (17 s here before)."""
    if backend.name != "postgres":
        pytest.skip("the shared INSERT is the PostgreSQL backend's")
    took: dict = {}

    def send(name):
        t0 = time.monotonic()
        r = http(backend.port, "POST", "/v1/jobs", {"kind": "noop", "queue": "stuck"}, timeout=40)
        took[name] = (r, time.monotonic() - t0)

    with db.session() as lock:
        lock.execute("BEGIN; LOCK TABLE trireme.jobs IN SHARE ROW EXCLUSIVE MODE;")
        a = threading.Thread(target=send, args=("a",))
        a.start()
        wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                                     "wait_event_type = 'Lock' AND query LIKE "
                                     "'%enqueue_batch%'") == 1, 10,
                   what="the first INSERT waits for the lock")
        time.sleep(3)
        b = threading.Thread(target=send, args=("b",))
        b.start()
        a.join(timeout=40)
        b.join(timeout=40)
        lock.execute("ROLLBACK;")
    for name, (r, secs) in sorted(took.items()):
        assert secs < 14, f"request {name} answered after {secs:.1f}s (deadline 10 s)"
    for name, (r, secs) in sorted(took.items()):
        assert_clean(r)
        assert r.status == 503 and r.json["error"] == "unavailable", (name, r)


# --- failing fast ------------------------------------------------------------------

def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def assert_fast_503(api, method, path, body=None):
    r, took = timed(lambda: http(api.port, method, path, body, timeout=30,
                                 key=None if path == "/readyz" else API_KEY))
    assert_clean(r)
    assert r.status == 503, (method, path, r)
    assert took < FAST, f"{method} {path} took {took:.2f}s to answer 503"
    return r


def concurrent_fast_503(api, n=20):
    results: list = [None] * n

    def send(i):
        results[i] = timed(lambda: http(api.port, "POST", "/v1/jobs", {"kind": "noop"},
                                        timeout=30))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r, took in results:
        assert_clean(r)
        assert r.status == 503, r
        assert took < 2 * FAST, f"a concurrent POST took {took:.2f}s"


def test_postgres_down_answers_503_at_once(backend):
    data_dir = os.environ.get("TRIREME_TEST_PG_DIR")
    if not data_dir:
        pytest.fail("TRIREME_TEST_PG_DIR is not set: this test stops the test PostgreSQL")
    pg_ctl(data_dir, "-m", "fast", "stop")
    try:
        backend.srv.wait_log(r"database connection failed", timeout=15)
        r = assert_fast_503(backend, "GET", "/readyz")
        assert r.json["database"] != "ok", r
        assert_fast_503(backend, "GET", "/v1/schedules")
        if backend.name == "postgres":
            assert_fast_503(backend, "POST", "/v1/jobs", {"kind": "noop"})
            assert_fast_503(backend, "GET", "/v1/jobs/1")
            assert_fast_503(backend, "GET", "/v1/jobs")
            concurrent_fast_503(backend)
        else:  # the jobs live in Redis: unaffected
            assert backend.req("POST", "/v1/jobs", {"kind": "noop"}).status == 201
    finally:
        pg_ctl(data_dir, "start")
    wait_until(lambda: http(backend.port, "GET", "/readyz", key=None).status == 200, 20,
               what="/readyz ok once PostgreSQL is back")
    if backend.name == "postgres":
        assert enqueue(backend.port, {"kind": "noop"})["id"]


def test_redis_down_answers_503_at_once(backend):
    if backend.name != "redis":
        pytest.skip("the Redis queue backend's dependency")
    backend.redis.stop()
    try:
        backend.srv.wait_log(r"redis.*(connect failed|connection failed|refused)", timeout=15)
        r = assert_fast_503(backend, "GET", "/readyz")
        assert r.json["redis"] != "ok", r
        assert_fast_503(backend, "POST", "/v1/jobs", {"kind": "noop"})
        assert_fast_503(backend, "GET", "/v1/jobs/1")
        assert_fast_503(backend, "GET", "/v1/jobs")
        concurrent_fast_503(backend)
    finally:
        backend.redis.start()
    wait_until(lambda: http(backend.port, "GET", "/readyz", key=None).status == 200, 20,
               what="/readyz ok once Redis is back")
    assert enqueue(backend.port, {"kind": "noop"})["id"]


# --- ids ---------------------------------------------------------------------------

def test_redis_ids_never_repeat_after_redis_loses_its_data(backend):
    if backend.name != "redis":
        pytest.skip("PostgreSQL's sequence is durable")
    before = [enqueue(backend.port, {"kind": "noop", "delay": 3600})["id"] for _ in range(3)]
    assert before == sorted(before) and len(set(before)) == 3
    backend.redis.stop()  # no AOF, no RDB: everything is gone
    backend.redis.start()
    assert backend.redis.cli("DBSIZE") == "0"

    def after_restart():
        r = http(backend.port, "POST", "/v1/jobs", {"kind": "noop", "delay": 3600})
        return r.json["id"] if r.status == 201 else None

    first = wait_until(after_restart, 20, what="enqueue after the Redis restart")
    assert first > max(before), (before, first)
    again = enqueue(backend.port, {"kind": "noop"})["id"]
    assert again > first
