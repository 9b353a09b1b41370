"""
test_soak.py - the short, bounded variant of bench/soak (the 30-minute
campaign is `sh bench/soak/run.sh`): 50 s of mixed HTTP enqueues (noop,
sleep, sql), schedules, retention and a PostgreSQL restart, on the suite's
binary; soak.py's end checks must hold: no accepted job lost, each sql
job's effect exactly once, a clean exit.
"""
import os
import subprocess
import sys

from conftest import REPO_ROOT, binary_path

pytest_plugins = ["pgtools"]


def test_short_soak_loses_nothing_across_a_postgres_restart(pg_url, tmp_path):
    pg_dir = os.environ.get("TRIREME_TEST_PG_DIR")
    assert pg_dir, "TRIREME_TEST_PG_DIR is not set (tools/test.sh sets it)"
    p = subprocess.run([sys.executable, str(REPO_ROOT / "bench/soak/soak.py"),
                        f"--binary={binary_path()}", f"--database-url={pg_url}",
                        f"--pg-dir={pg_dir}", "--minutes=0.84", "--restart-every=30",
                        "--sample-every=10", "--rate=60", f"--markdown={tmp_path / 'soak.md'}"],
                       capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    text = (tmp_path / "soak.md").read_text()
    assert "PASS" in text and "0 accepted jobs not succeeded" in text, text
    assert "1 PostgreSQL restarts" in text, text
