"""
beattools.py - helpers for the beat tests (tests/e2e/test_beat*.py).

`beat_db` is pgtools' `db` with trireme.schedules (and, by cascade,
trireme.schedule_fires) emptied before and after each test: a schedule left
behind would fire in the next test's beat (its misfire policy catches up).
"""
from __future__ import annotations

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import Database, sql_literal, wait_until  # noqa: E402,F401


def clear_schedules(d: Database):
    d.exec("SET client_min_messages = warning; TRUNCATE trireme.schedules CASCADE;")


@pytest.fixture
def beat_db(db):
    clear_schedules(db)
    yield db
    clear_schedules(db)


def add_schedule(d: Database, name: str, cron: str, kind: str = "noop", queue: str = "beat",
                 **cols) -> int:
    """Insert a schedule with plain SQL (what an operator or the seed-001
    DB-scheduler workflow does); returns its id."""
    names = ["name", "cron", "kind", "queue", *cols]
    vals = [name, cron, kind, queue, *cols.values()]
    return int(d.scalar(f"INSERT INTO trireme.schedules ({', '.join(names)}) VALUES "
                        f"({', '.join(sql_literal(v) for v in vals)}) RETURNING id"))


def fires(d: Database, name: str) -> list[dict]:
    """The schedule's handled slots, oldest first: slot (epoch s), job_id, reason."""
    return d.rows("SELECT extract(epoch FROM f.slot)::bigint AS slot, f.job_id, f.reason "
                  "FROM trireme.schedule_fires f JOIN trireme.schedules s ON s.id = f.schedule_id "
                  f"WHERE s.name = {sql_literal(name)} ORDER BY f.slot")


def fired_count(d: Database, name: str) -> int:
    return int(d.scalar("SELECT count(*) FROM trireme.schedule_fires f JOIN trireme.schedules s "
                        f"ON s.id = f.schedule_id WHERE s.name = {sql_literal(name)}"))


def gaps(slots: list[int], period: int = 1) -> list[tuple[int, int]]:
    """(before, after) pairs of consecutive fired slots more than one period apart."""
    return [(a, b) for a, b in zip(slots, slots[1:]) if b - a != period]
