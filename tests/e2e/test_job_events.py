"""
test_job_events.py - GET /v1/jobs/{id}/events: a job's changes as
Server-Sent Events, on both queue backends, against the real binary.

A stream opened on a pending pull job sees it claimed, its progress move
(40, then 80 with its step) and its completion, in order, and then ends
(the connection closes); Last-Event-ID equal to the job's current version
skips the repeat; 50 clients on one job all get its events; an unknown job
is 404, no credential 401; a draining server ends its streams at once and
exits cleanly.
"""
from __future__ import annotations

import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import enqueue, http  # noqa: E402
from ssetools import SSE, sigterm_ends_stream  # noqa: E402
from test_pull_workers import backend  # noqa: E402,F401  (fixture: both queue backends)

pytest_plugins = ["pgtools"]


class Stream(SSE):
    """GET /v1/jobs/{jid}/events."""

    def __init__(self, port, jid, last_id=None):
        super().__init__(port, f"/v1/jobs/{jid}/events", last_id)


def start(trireme, backend):
    kind = "render_" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web", f"--pull-kinds={kind}", threads=1, env=backend)
    srv.kind = kind
    return srv


def claim(srv):
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [srv.kind]})
    assert r.status == 200, r
    return r.json["jobs"][0]


def cb(srv, jid, what, body):
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/{what}", body)
    assert r.status == 200, r


def test_a_job_from_pending_to_succeeded(trireme, backend):
    srv = start(trireme, backend)
    jid = enqueue(srv.port, {"kind": srv.kind, "payload": {"doc": 1}})["id"]
    st = Stream(srv.port, jid)
    try:
        assert st.head.startswith("HTTP/1.1 200") and "text/event-stream" in st.head, st.head
        assert "Content-Length" not in st.head and "Connection: close" in st.head
        _, ev, job = st.next_event()
        assert ev == "job" and job["id"] == jid and job["status"] == "pending"
        j = claim(srv)
        assert st.next_event()[2]["status"] == "running"
        cb(srv, jid, "progress", {"token": j["token"], "percent": 40})
        assert st.next_event()[2]["progress_percent"] == 40
        cb(srv, jid, "progress", {"token": j["token"], "percent": 80, "step": "pages"})
        job = st.next_event()[2]
        assert job["progress_percent"] == 80 and job["current_step"] == "pages"
        cb(srv, jid, "complete", {"token": j["token"], "result": {"pages": 3}})
        last = st.next_event()
        assert last[2]["status"] == "succeeded" and last[2]["result"] == {"pages": 3}
        assert st.next_event(timeout=5) is None  # ended: the connection closed
        ids = [e[0] for e in st.events]
        assert all(ids) and len(set(ids)) == len(ids)  # each event has its own version
    finally:
        st.close()


def test_last_event_id_skips_the_repeat_and_many_clients(trireme, backend):
    srv = start(trireme, backend)
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    first = Stream(srv.port, jid)
    version = first.next_event()[0]
    first.close()
    again = Stream(srv.port, jid, last_id=version)
    many = [Stream(srv.port, jid) for _ in range(50)]
    try:
        for s in many:
            assert s.next_event()[2]["status"] == "pending"
        j = claim(srv)
        ev = again.next_event()  # not the pending state it had: the next one
        assert ev[2]["status"] == "running" and ev[0] != version, ev
        for s in many:
            assert s.next_event()[2]["status"] == "running"
        cb(srv, jid, "fail", {"token": j["token"], "error": "bad input", "retry": False})
        for s in [again] + many:
            assert s.next_event()[2]["status"] == "failed"
            assert s.next_event(timeout=5) is None
    finally:
        for s in [again] + many:
            s.close()


def test_unknown_job_and_no_credential(trireme, backend):
    srv = start(trireme, backend)
    r = http(srv.port, "GET", "/v1/jobs/987654321/events")
    assert r.status == 404 and r.json["error"] == "not_found", r
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    assert http(srv.port, "GET", f"/v1/jobs/{jid}/events", key=None).status == 401
    assert http(srv.port, "GET", "/v1/jobs/x/events").status == 400


def test_a_drain_ends_the_streams(trireme, backend):
    srv = start(trireme, backend)
    jid = enqueue(srv.port, {"kind": srv.kind})["id"]
    st = Stream(srv.port, jid)
    try:
        assert st.next_event()[2]["status"] == "pending"
        sigterm_ends_stream(srv, st)
    finally:
        st.close()
