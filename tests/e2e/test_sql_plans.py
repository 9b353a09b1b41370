"""
test_sql_plans.py - no plan PostgreSQL keeps for a session reads
trireme.jobs whole (sql/014, parts 2 and 3), and a batch enqueue without taken
keys does not read it at all.

PL/pgSQL keeps a statement's plan for the session, and a generic plan made
while the table was empty and vacuumed reads every row, even to find one job
by its key, until autovacuum analyzes the table again. Each test makes that
state on purpose (an empty, vacuumed table, the function called while it is
empty, then the table filled in the same session) and counts the sequential
scans of trireme.jobs that a few more calls make: there must be none. A last
test keeps the rule for functions added later. Needs TRIREME_TEST_DATABASE_URL.
"""
from __future__ import annotations

import sys

import pytest

try:
    import psycopg
except ImportError:  # Debian's python3-psycopg, seen from another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg

pytest_plugins = ["pgtools"]

FILL = 20000  # rows: enough that any plan made for them reads an index

# Functions that read trireme.jobs only to find the job a taken unique_key
# belongs to, by EXECUTE (planned afresh each time); everything else that
# reads jobs may not plan a scan.
KEY_LOOKUP_ONLY = {"enqueue", "enqueue_batch"}


def empty_and_vacuumed(db):
    db.exec("TRUNCATE trireme.jobs; VACUUM ANALYZE trireme.jobs;")


def scans_of_calls(c, sql, calls=3):
    """Sequential scans of trireme.jobs that each of a few more calls makes
    (the first call after the fill does not always use the kept plan)."""
    out = []
    for _ in range(calls):
        with c.transaction():
            s0 = c.execute("SELECT pg_stat_get_xact_numscans('trireme.jobs'::regclass)").fetchone()[0]
            c.execute(sql).fetchall()
            out.append(c.execute("SELECT pg_stat_get_xact_numscans('trireme.jobs'::regclass)"
                                 ).fetchone()[0] - s0)
    return out


def test_pull_claim_planned_while_empty_uses_the_index_once_filled(db):
    empty_and_vacuumed(db)
    claim = "SELECT * FROM trireme.pull_claim('[\"plan-k\"]', '[\"default\"]', 10, 30000)"
    with psycopg.connect(db.url, autocommit=True) as c:
        for _ in range(8):  # past the five custom plans: a generic one would be kept now
            assert c.execute(claim).fetchall() == []
        c.execute("INSERT INTO trireme.jobs (kind, pull) SELECT 'plan-k', true"
                  " FROM generate_series(1, %s)", (FILL,))
        assert scans_of_calls(c, claim) == [0, 0, 0]
        assert len(c.execute(claim).fetchall()) == 10


@pytest.mark.parametrize("call", [
    "SELECT trireme.enqueue('noop', unique_key => 'plan-u')",
    "SELECT * FROM trireme.enqueue_batch('[{\"kind\":\"noop\",\"unique_key\":\"plan-u\"},"
    "{\"kind\":\"noop\"}]')",
])
def test_a_taken_key_is_found_by_the_index_once_filled(db, call):
    empty_and_vacuumed(db)
    with psycopg.connect(db.url, autocommit=True) as c:
        first = c.execute("SELECT trireme.enqueue('noop', unique_key => 'plan-u')").fetchone()[0]
        for _ in range(8):
            c.execute(call).fetchall()
        c.execute("INSERT INTO trireme.jobs (kind, status) SELECT 'noop', 'succeeded'"
                  " FROM generate_series(1, %s)", (FILL,))
        assert scans_of_calls(c, call) == [0, 0, 0]
        assert c.execute(call).fetchone()[0] in (first, 1)  # the id, or enqueue_batch's ord
        assert c.execute("SELECT count(*) FROM trireme.jobs WHERE unique_key = 'plan-u'"
                         ).fetchone()[0] == 1


def test_a_batch_without_taken_keys_never_reads_the_jobs_table(db):
    # With index scans off, any read of trireme.jobs shows as a sequential
    # scan: a batch whose keys are new (or absent) makes none, and a taken
    # key still finds its job.
    with psycopg.connect(db.url, autocommit=True) as c:
        first = c.execute("SELECT trireme.enqueue('noop', unique_key => 'scan-1')").fetchone()[0]
        with c.transaction():
            for off in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                c.execute(f"SET LOCAL {off} = off")
            s0 = c.execute("SELECT pg_stat_get_xact_numscans('trireme.jobs'::regclass)").fetchone()[0]
            made = c.execute("SELECT created FROM trireme.enqueue_batch('[{\"kind\":\"noop\"},"
                             "{\"kind\":\"noop\",\"unique_key\":\"scan-2\"}]')").fetchall()
            s1 = c.execute("SELECT pg_stat_get_xact_numscans('trireme.jobs'::regclass)").fetchone()[0]
        assert made == [(True,), (True,)] and s1 - s0 == 0, (made, s1 - s0)
        again = c.execute("SELECT id, created FROM trireme.enqueue_batch('[{\"kind\":\"noop\","
                          "\"unique_key\":\"scan-1\"},{\"kind\":\"noop\"}]')").fetchall()
        assert again[0] == (first, False) and again[1][1] is True, again


def test_no_function_that_reads_jobs_may_plan_a_scan(db):
    rows = db.rows("""
        SELECT p.proname AS name, coalesce(array_to_string(p.proconfig, ','), '') AS config
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'trireme' AND l.lanname = 'plpgsql'
          AND p.prosrc ~ 'FROM\\s+trireme\\.jobs|JOIN\\s+trireme\\.jobs|UPDATE\\s+trireme\\.jobs'""")
    names = {r["name"] for r in rows}
    assert {"pull_claim", "pull_finish", "fire_schedules", "pull_fenced"} <= names, names
    kept = sorted(r["name"] for r in rows
                  if r["name"] not in KEY_LOOKUP_ONLY
                  and "enable_seqscan=off" not in r["config"])
    assert kept == [], f"these keep a plan that reads trireme.jobs: {kept}"
