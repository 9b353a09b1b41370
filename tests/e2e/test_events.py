"""
test_events.py - GET /v1/events: every job change as Server-Sent Events,
filtered by queue and kind, against the real binary and a real store.

On both queue backends (Redis: a private server per test): a subscriber
sees a job created, started, its progress and its success, in order, with
ids that grow; queue= and kind= (comma lists) keep other jobs out;
Last-Event-ID resumes after the cursor without repeats, and a cursor that
cannot be resumed starts with `event: reset`; with nobody listening (the
10 s lease lapsed) a write records no change, and a cursor from before
that gap resets; 50 subscribers on one thread all get the events; a
heartbeat comment arrives on an idle stream; no credential is 401, a
malformed filter 400; a draining server ends its streams and exits
cleanly. On PostgreSQL also: a change whose transaction commits after a
later change was sent (its updated_at is older than the stream's cursor)
still arrives, once.
"""
from __future__ import annotations

import time
import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, http  # noqa: E402
from ssetools import SSE, sigterm_ends_stream  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

pytest_plugins = ["pgtools"]


class Events(SSE):
    """GET /v1/events?query."""

    def __init__(self, port, query="", last_id=None):
        super().__init__(port, f"/v1/events{query}", last_id)

    def jobs(self, n, timeout=10.0):
        """The next n `job` events' jobs."""
        out = []
        while len(out) < n:
            ev = self.next_event(timeout)
            assert ev is not None, f"the stream ended; have {self.events}"
            if ev[1] == "job":
                out.append(ev[2])
        return out

    def quiet(self, seconds):
        """No event for this long (what came would be a repeat or a leak)."""
        try:
            ev = self.next_event(timeout=seconds)
        except AssertionError:
            return
        raise AssertionError(f"unexpected event {ev}")


def cursor(ev_id):
    a, b = ev_id.split("-")
    return (int(a), int(b))


def start(trireme, db, redis=None):
    tag = uuid.uuid4().hex[:8]
    env = db.env()
    if redis:
        env.update(REDIS_URL=redis.url, QUEUE_BACKEND="redis")
    s = trireme("--roles=web", f"--pull-kinds=a_{tag},b_{tag}", threads=1, env=env)
    s.tag, s.db, s.redis = tag, db, redis
    return s


@pytest.fixture(params=["postgres", "redis"])
def srv(request, trireme, db, tmp_path):
    redis = None
    if request.param == "redis":
        redis = Redis(tmp_path)
        request.addfinalizer(redis.stop)
    return start(trireme, db, redis)


@pytest.fixture
def pg_srv(trireme, db):
    return start(trireme, db)


def recorded(srv, jid) -> bool:
    """Whether the store's change feed holds a change of job jid."""
    if srv.redis:
        return srv.redis.cli("ZSCORE", "trireme:changes", str(jid)) != ""
    return srv.db.scalar(f"SELECT count(*) FROM trireme.job_changes WHERE id = {jid}") > 0


def listening(srv) -> bool:
    if srv.redis:
        return srv.redis.cli("EXISTS", "trireme:events:on") == "1"
    return srv.db.scalar("SELECT trireme.events_listening()") is True


def claim(srv, kind):
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [kind]})
    assert r.status == 200 and r.json["jobs"], r
    return r.json["jobs"][0]


def cb(srv, jid, what, body):
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/{what}", body)
    assert r.status == 200, r


def test_a_job_created_started_progress_succeeded(srv):
    kind = f"a_{srv.tag}"
    st = Events(srv.port, f"?kind={kind}")
    try:
        assert st.head.startswith("HTTP/1.1 200") and "text/event-stream" in st.head, st.head
        assert "Content-Length" not in st.head
        jid = enqueue(srv.port, {"kind": kind, "payload": {"doc": 1}})["id"]
        job = st.jobs(1)[0]
        assert job["id"] == jid and job["status"] == "pending" and job["payload"] == {"doc": 1}
        j = claim(srv, kind)
        assert st.jobs(1)[0]["status"] == "running"
        cb(srv, jid, "progress", {"token": j["token"], "percent": 40, "step": "pages"})
        job = st.jobs(1)[0]
        assert job["progress_percent"] == 40 and job["current_step"] == "pages"
        cb(srv, jid, "complete", {"token": j["token"], "result": {"pages": 3}})
        job = st.jobs(1)[0]
        assert job["status"] == "succeeded" and job["result"] == {"pages": 3}
        ids = [cursor(e[0]) for e in st.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        assert all(e[1] == "job" and e[2]["id"] == jid for e in st.events)
        st.quiet(1.5)  # the stream stays open, and nothing repeats
        assert not st.closed
    finally:
        st.close()


def test_queue_and_kind_filters(srv):
    a, b = f"a_{srv.tag}", f"b_{srv.tag}"
    qa, qb, qc = f"qa{srv.tag}", f"qb{srv.tag}", f"qc{srv.tag}"
    by_queue = Events(srv.port, f"?queue={qa},{qb}")
    by_kind = Events(srv.port, f"?kind={b}")
    both = Events(srv.port, f"?queue={qa}&kind={a}")
    everything = Events(srv.port)
    try:
        made = {}
        for q in (qa, qb, qc):
            for k in (a, b):
                made[(q, k)] = enqueue(srv.port, {"kind": k, "queue": q})["id"]
        got = {id(s): {j["id"] for j in s.jobs(n)} for s, n in
               ((by_queue, 4), (by_kind, 3), (both, 1))}
        assert got[id(by_queue)] == {made[(q, k)] for q in (qa, qb) for k in (a, b)}
        assert got[id(by_kind)] == {made[(q, b)] for q in (qa, qb, qc)}
        assert got[id(both)] == {made[(qa, a)]}
        seen = {j["id"] for j in everything.jobs(6)}
        assert set(made.values()) <= seen | {j["id"] for j in everything.jobs(0)}
        for s in (by_queue, by_kind, both):
            s.quiet(1.2)  # no job of another queue or kind follows
    finally:
        for s in (by_queue, by_kind, both, everything):
            s.close()


def test_a_change_committed_late_still_arrives_once(pg_srv):
    """updated_at = now() is the transaction's start: a transaction that
    began before a change the stream already got, and commits after it,
    carries an older stamp than the stream's cursor."""
    kind = f"a_{pg_srv.tag}"
    st = Events(pg_srv.port, f"?kind={kind}")
    slow = pg_srv.db.session()
    try:
        first = enqueue(pg_srv.port, {"kind": kind})["id"]
        assert st.jobs(1)[0]["id"] == first
        slow.execute("BEGIN;")
        slow.execute(f"UPDATE trireme.jobs SET current_step = 'late', updated_at = now() "
                     f"WHERE id = {first};")
        time.sleep(0.3)
        second = enqueue(pg_srv.port, {"kind": kind})["id"]
        ev = st.next_event()
        assert ev[2]["id"] == second
        cursor_before = cursor(ev[0])
        time.sleep(0.8)  # at least one poll passes the stamp of the open transaction
        slow.execute("COMMIT;")
        late = st.next_event()
        assert late[2]["id"] == first and late[2]["current_step"] == "late", late
        assert cursor(late[0]) == cursor_before  # the stream's cursor, not the older stamp
        st.quiet(1.5)  # read again in the overlap: not sent twice
    finally:
        slow.close()
        st.close()


def test_last_event_id_resumes_without_repeats(srv):
    kind = f"a_{srv.tag}"
    st = Events(srv.port, f"?kind={kind}")
    ids = [enqueue(srv.port, {"kind": kind})["id"] for _ in range(3)]
    got = [st.next_event() for _ in range(3)]
    assert [e[2]["id"] for e in got] == ids
    st.close()
    later = [enqueue(srv.port, {"kind": kind})["id"] for _ in range(2)]
    time.sleep(0.3)
    again = Events(srv.port, f"?kind={kind}", last_id=got[1][0])
    try:
        evs = [again.next_event() for _ in range(3)]
        assert [e[2]["id"] for e in evs] == [ids[2]] + later, evs
        assert all(cursor(e[0]) > cursor(got[1][0]) for e in evs)
        again.quiet(1.5)
    finally:
        again.close()
    for bad in ("not-a-cursor", "1-2"):  # malformed; older than QUEUE_CHANGES_KEEP_S
        st = Events(srv.port, f"?kind={kind}", last_id=bad)
        try:
            ev = st.next_event()
            assert ev[1] == "reset" and ev[0], ev
            jid = enqueue(srv.port, {"kind": kind})["id"]
            assert st.jobs(1)[0]["id"] == jid  # then from the present on
        finally:
            st.close()


def test_nobody_listening_records_nothing_and_resume_across_the_gap_resets(srv):
    """The store records changes only while a stream reads the feed (a
    10 s lease, QUEUE_CHANGES_LEASE_MS): after it lapsed, a write records
    nothing, and a cursor from before the gap cannot be resumed."""
    kind = f"a_{srv.tag}"
    st = Events(srv.port, f"?kind={kind}")
    jid = enqueue(srv.port, {"kind": kind})["id"]
    ev = st.next_event()
    assert ev[2]["id"] == jid
    assert recorded(srv, jid)
    st.close()
    time.sleep(11)  # the lease lapses
    assert not listening(srv)
    quiet = enqueue(srv.port, {"kind": kind})["id"]
    r = http(srv.port, "POST", f"/v1/jobs/{quiet}/cancel")
    assert r.status == 200, r
    assert not recorded(srv, quiet)
    again = Events(srv.port, f"?kind={kind}", last_id=ev[0])
    try:
        reset = again.next_event()
        assert reset[1] == "reset", reset  # the changes of the gap are not there
        assert cursor(reset[0]) > cursor(ev[0])
        later = enqueue(srv.port, {"kind": kind})["id"]
        assert again.jobs(1)[0]["id"] == later
    finally:
        again.close()


def test_many_subscribers_on_one_thread(srv):
    kind = f"b_{srv.tag}"
    many = [Events(srv.port, f"?kind={kind}") for _ in range(50)]
    try:
        jid = enqueue(srv.port, {"kind": kind})["id"]
        for s in many:
            assert s.jobs(1)[0]["id"] == jid
        r = http(srv.port, "POST", f"/v1/jobs/{jid}/cancel")
        assert r.status == 200, r
        for s in many:
            job = s.jobs(1)[0]
            assert job["id"] == jid and job["status"] == "cancelled"
        r = http(srv.port, "POST", f"/v1/jobs/{jid}/retry")
        assert r.status == 200, r
        for s in many:
            job = s.jobs(1)[0]
            assert job["id"] == jid and job["status"] == "pending"
    finally:
        for s in many:
            s.close()


def test_heartbeat_on_an_idle_stream(srv):
    st = Events(srv.port, f"?kind=nothing_{srv.tag}")
    try:
        deadline = time.monotonic() + 20  # EVENTS_HEARTBEAT_MS is 15 s
        while not st.comments and time.monotonic() < deadline:
            try:
                st.next_event(timeout=deadline - time.monotonic())
            except AssertionError:
                pass
        assert st.comments and st.comments[0].startswith(": keep-alive"), st.comments
        assert not st.events
    finally:
        st.close()


def test_no_credential_and_bad_filters(srv):
    assert http(srv.port, "GET", "/v1/events", key=None).status == 401
    r = http(srv.port, "GET", "/v1/events?queue=")
    assert r.status == 400 and r.json["error"] == "invalid_query", r
    r = http(srv.port, "GET", "/v1/events?kind=" + "k" * 2000)
    assert r.status == 400, r


def test_a_drain_ends_the_streams(srv):
    kind = f"a_{srv.tag}"
    st = Events(srv.port, f"?kind={kind}")
    try:
        enqueue(srv.port, {"kind": kind})
        assert st.jobs(1)[0]["status"] == "pending"
        sigterm_ends_stream(srv, st)
    finally:
        st.close()
