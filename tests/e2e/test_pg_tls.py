"""
test_pg_tls.py - trireme talks to PostgreSQL over TLS through libpq's own
sslmode/sslrootcert in DATABASE_URL: a PostgreSQL of this test's own (the
tools/pg-local.sh pattern, its own port and data directory) with ssl = on
and a certificate from the test CA of tlstools.py; sslmode=require and
sslmode=verify-full run a job over connections pg_stat_ssl shows encrypted;
verify-full against a certificate for another host name, or with another
CA, makes `trireme migrate` exit non-zero naming the TLS failure, and a
server (--migrate=off) keep /readyz at 503 and log it; trireme doctor
reports the connection's TLS protocol and cipher, or that it is not
encrypted. Needs the PostgreSQL
server binaries (tools/deps.sh test).
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_cli

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402
from tlstools import make_ca  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(port: int, sql: str) -> str:
    r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-qAtc", sql],
                       env={"PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"}, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory):
    """(port, CA, other CA, bad-name cert and key) of a PostgreSQL with ssl = on."""
    # Under /tmp, not pytest's 0700 directory: the server runs as 'postgres'.
    base = Path("/tmp") / f"trireme-pgtls-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    data = base / "pg"
    port = free_port()
    tool = str(REPO_ROOT / "tools" / "pg-local.sh")
    subprocess.run([tool, "start", str(data), str(port)], check=True, capture_output=True,
                   timeout=120)
    try:
        certs = tmp_path_factory.mktemp("pgtls")
        ca, other = make_ca(certs / "ca"), make_ca(certs / "other", name="other")
        cert, key = ca.issue("pg")  # localhost and 127.0.0.1
        bad_cert, bad_key = ca.issue("pg-elsewhere", dns="db.elsewhere.example", ip=None)
        for src, dst in [(cert, "server.crt"), (key, "server.key"), (bad_cert, "bad.crt"),
                         (bad_key, "bad.key")]:
            shutil.copy(src, data / dst)
            (data / dst).chmod(0o600)
            shutil.chown(data / dst, "postgres", "postgres")
        psql(port, "ALTER SYSTEM SET ssl = on")
        psql(port, "SELECT pg_reload_conf()")
        wait_until(lambda: psql(port, "SHOW ssl") == "on", 10, what="ssl = on")
        yield port, ca, other, data
    finally:
        subprocess.run([tool, "stop", str(data)], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def use_cert(port: int, data: Path, name: str):
    psql(port, f"ALTER SYSTEM SET ssl_cert_file = '{data / (name + '.crt')}'")
    psql(port, f"ALTER SYSTEM SET ssl_key_file = '{data / (name + '.key')}'")
    psql(port, "SELECT pg_reload_conf()")
    wait_until(lambda: psql(port, "SHOW ssl_cert_file").endswith(name + ".crt"), 10,
               what=f"ssl_cert_file {name}")


def run_job(trireme, url: str, port: int):
    srv = trireme("--roles=web,worker", env={"DATABASE_URL": url, "TRIREME_API_KEYS": API_KEY})
    srv.wait_log(r"worker listening for new jobs", timeout=30)
    wait_until(lambda: http(srv.port, "GET", "/readyz", key=None).status == 200, 15,
               what="/readyz 200")
    job = enqueue(srv.port, {"kind": "noop", "payload": {"tls": True}})["id"]
    wait_until(lambda: get_job(srv.port, job)["status"] == "succeeded", 20,
               what="the job to succeed")
    # Every connection of the trireme role is encrypted (psql above connects as postgres).
    n_tls = int(psql(port, "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a"
                           " USING (pid) WHERE a.usename = 'trireme' AND s.ssl"))
    n_all = int(psql(port, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'trireme'"))
    assert n_tls >= 1 and n_tls == n_all, (n_tls, n_all)
    srv.stop()
    # trireme doctor says the connection is encrypted, and how.
    r = run_cli("doctor", env={"DATABASE_URL": url})
    assert re.search(r"database\s+reachable \(PostgreSQL [^\n]*\) over TLS \(TLSv1\.[23], ",
                     r.stdout + r.stderr), r.stdout + r.stderr


def test_doctor_says_not_encrypted(tls_pg):
    port = tls_pg[0]
    r = run_cli("doctor", env={"DATABASE_URL": f"postgresql://trireme@127.0.0.1:{port}/trireme"
                                               "?sslmode=disable"})
    assert re.search(r"database\s+reachable \(PostgreSQL [^\n]*\), not encrypted",
                     r.stdout + r.stderr), r.stdout + r.stderr


def test_sslmode_require(trireme, tls_pg):
    port, _, _, data = tls_pg
    use_cert(port, data, "server")
    run_job(trireme, f"postgresql://trireme@127.0.0.1:{port}/trireme?sslmode=require", port)


def test_sslmode_verify_full(trireme, tls_pg):
    port, ca, _, data = tls_pg
    use_cert(port, data, "server")
    run_job(trireme, f"postgresql://trireme@127.0.0.1:{port}/trireme"
                     f"?sslmode=verify-full&sslrootcert={ca.cert}", port)


@pytest.mark.parametrize("case", ["wrong_host", "wrong_ca"])
def test_verify_full_refuses(trireme, tls_pg, case):
    port, ca, other, data = tls_pg
    use_cert(port, data, "bad" if case == "wrong_host" else "server")
    root = ca.cert if case == "wrong_host" else other.cert
    url = f"postgresql://trireme@127.0.0.1:{port}/trireme?sslmode=verify-full&sslrootcert={root}"
    want = (r"does not match host name" if case == "wrong_host"
            else r"certificate verify failed")
    # Migrations at start refuse to go on: a non-zero exit naming the failure.
    r = run_cli("migrate", env={"DATABASE_URL": url})
    assert r.returncode != 0 and re.search(want, r.stderr), r.stderr
    # A server that does not migrate starts, stays not ready and says why.
    srv = trireme("--roles=web", "--migrate=off",
                  env={"DATABASE_URL": url, "TRIREME_API_KEYS": API_KEY})
    srv.wait_log(want, timeout=30)
    r = http(srv.port, "GET", "/readyz", key=None)
    assert r.status == 503, r
    assert int(psql(port, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'trireme'")) == 0
    srv.stop()
