"""
conftest.py - the chaos suite (tests/chaos) reuses the end-to-end suite's
fixtures and helpers (tests/e2e: the `trireme` server factory, pgtools'
`db`, beattools' `beat_db`) instead of copying them.

The e2e helpers import their own conftest as `conftest`; here that name is
this file, so it loads tests/e2e/conftest.py under another name and
re-exports everything in it (HOST, run_cli, free_port, the `trireme`
fixture, ...).

It also collects what every scenario measured (chaostools.Record) and
prints one line per scenario at the end; with CHAOS_RESULTS=file set the
records are appended there as JSON lines (run-long.sh makes its table from
them).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
sys.modules["e2e_conftest"] = _e2e
_spec.loader.exec_module(_e2e)
globals().update({k: v for k, v in vars(_e2e).items() if not k.startswith("__")})

pytest.register_assert_rewrite("pgtools", "beattools", "chaostools")
pytest_plugins = ["pgtools", "beattools"]

RECORDS: list[dict] = []


@pytest.fixture
def record():
    """Call with a scenario's measurements (a dict); kept for the summary."""
    def add(rec: dict):
        RECORDS.append(rec)
        path = os.environ.get("CHAOS_RESULTS")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(rec) + "\n")
    return add


def pytest_terminal_summary(terminalreporter):
    if not RECORDS:
        return
    terminalreporter.section("chaos: what each run measured")
    for r in RECORDS:
        terminalreporter.write_line(
            f"{r['scenario']:<22} jobs={r['jobs']:<5} lost={r['lost']} dup={r['duplicated']} "
            f"(bound {r['dup_bound']}) sql_dup={r['sql_dup']} "
            f"recovery={r['recovery_s']:.2f}s {r.get('note', '')}")
