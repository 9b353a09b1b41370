"""
test_doctor.py - `trireme doctor`: one line per check (OK, SKIP, WARN, FAIL),
the fix under each WARN and FAIL, exit 0 when nothing failed, 1 when
something did, 2 on a bad flag; against the real PostgreSQL and Redis of the
suite, a fresh database with no schema, and ports nothing listens on.
"""
import os
import re
import resource
import subprocess
import uuid

import pytest

pytest.register_assert_rewrite("pgtools")
from conftest import binary_path, clean_env, free_port, run_cli, sanitizer_problems  # noqa: E402
from pgtools import Database  # noqa: E402

pytest_plugins = ["pgtools"]

LINE = re.compile(r"^(OK|SKIP|WARN|FAIL)  +(\S+) +(.*)$")


def checks(out: str) -> dict[str, list[tuple[str, str]]]:
    """{"database": [("OK", "reachable ...")], ...}; every line is a check, a fix or the total."""
    found: dict[str, list[tuple[str, str]]] = {}
    lines = out.splitlines()
    assert re.match(r"^\d+ failed, \d+ warnings?$", lines[-1]), out
    for i, line in enumerate(lines[:-1]):
        m = LINE.match(line)
        if m:
            found.setdefault(m.group(2), []).append((m.group(1), m.group(3)))
            if m.group(1) in ("WARN", "FAIL"):
                assert i + 1 < len(lines) and " fix: " in lines[i + 1], (line, out)
        else:
            assert " fix: " in line, f"not a check, a fix or the total: {line!r}\n{out}"
    return found


def doctor(*flags, env=None, preexec=None):
    p = subprocess.run([str(binary_path()), "doctor", *flags], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=clean_env(env), timeout=60,
                       preexec_fn=preexec)
    assert not sanitizer_problems(p.stdout + p.stderr), p.stderr
    return p


def redis_url():
    url = os.environ.get("TRIREME_TEST_REDIS_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_URL is not set (tools/test.sh starts Redis)")
    return url


def test_everything_configured_and_reachable_passes(pg_url):
    p = doctor(env={"DATABASE_URL": pg_url, "REDIS_URL": redis_url()})
    assert p.returncode == 0, p.stdout + p.stderr
    c = checks(p.stdout)
    for name in ("config", "roles", "io_uring", "files", "database", "schema", "clock", "redis"):
        assert c[name][0][0] == "OK", (name, p.stdout)
    assert c["roles"][0][1] == "web,worker,beat"
    assert re.match(r"reachable \(PostgreSQL \d+", c["database"][0][1])
    assert re.match(r"at version \d+$", c["schema"][0][1])
    assert re.match(r"reachable \(Redis \d+\.\d+", c["redis"][0][1])
    assert p.stdout.splitlines()[-1].startswith("0 failed")


def test_nothing_configured_warns_about_the_roles_left_out():
    p = doctor()
    assert p.returncode == 0, p.stdout
    c = checks(p.stdout)
    assert c["roles"][0] == ("OK", "web")
    off = [t for v, t in c["roles"][1:] if v == "WARN"]
    assert any(t.startswith("worker will be off: it needs DATABASE_URL") for t in off), p.stdout
    assert c["database"] == [("SKIP", "DATABASE_URL is not set")]
    assert c["redis"] == [("SKIP", "REDIS_URL is not set")]


def test_unreachable_database_fails_with_the_reason_and_exit_1():
    p = doctor("--roles=worker", env={"DATABASE_URL": f"postgresql://x@127.0.0.1:{free_port()}/x"})
    assert p.returncode == 1, p.stdout
    c = checks(p.stdout)
    verdict, text = c["database"][0]
    assert verdict == "FAIL" and text.startswith("cannot connect:") and "refused" in text, text
    assert "schema" not in c  # nothing more to ask of a database that is not there
    assert p.stdout.splitlines()[-1].startswith("1 failed")


def test_a_database_without_the_schema_fails_until_migrated(pg_url):
    name = "e2e_doctor_" + uuid.uuid4().hex[:8]
    admin = Database(pg_url)
    admin.exec(f"CREATE DATABASE {name}")
    try:
        fresh = pg_url.rsplit("/", 1)[0] + "/" + name
        p = doctor(env={"DATABASE_URL": fresh})
        assert p.returncode == 1, p.stdout
        verdict, text = checks(p.stdout)["schema"][0]
        assert verdict == "FAIL" and text.startswith("not applied to this database"), text
        assert "trireme migrate" in p.stdout
        m = run_cli("migrate", env={"DATABASE_URL": fresh}, timeout=60)
        assert m.returncode == 0, m.stderr
        p = doctor(env={"DATABASE_URL": fresh})
        assert p.returncode == 0, p.stdout
        assert checks(p.stdout)["schema"][0][0] == "OK"
    finally:
        admin.exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_role_named_without_what_it_needs_fails():
    p = doctor("--roles=web,worker")
    assert p.returncode == 1, p.stdout
    verdict, text = checks(p.stdout)["roles"][0]
    assert verdict == "FAIL" and "role 'worker' cannot start" in text, text


def test_open_files_limit_below_max_connections_warns():
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    p = doctor("--max-connections=4096", preexec=low_limit)
    assert p.returncode == 0, p.stdout  # it runs; it will refuse connections early
    verdict, text = checks(p.stdout)["files"][0]
    assert verdict == "WARN" and "512" in text and "--max-connections=4096" in text, text


def test_unreachable_redis_fails():
    p = doctor(env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert p.returncode == 1, p.stdout
    verdict, text = checks(p.stdout)["redis"][0]
    assert verdict == "FAIL" and text.startswith("cannot connect to 127.0.0.1:"), text


def test_redis_queue_backend_without_persistence_is_a_warning(pg_url):
    # The suite's Redis runs without AOF or snapshots (tools/redis-local.sh).
    p = doctor(env={"DATABASE_URL": pg_url, "REDIS_URL": redis_url(), "QUEUE_BACKEND": "redis"})
    assert p.returncode == 0, p.stdout
    verdict, text = checks(p.stdout)["durability"][0]
    assert verdict == "WARN" and "restart loses" in text, text


def test_wrong_redis_password_fails():
    url = os.environ.get("TRIREME_TEST_REDIS_AUTH_URL")
    if not url:
        pytest.fail("TRIREME_TEST_REDIS_AUTH_URL is not set (tools/test.sh starts it)")
    bad = re.sub(r"://:[^@]*@", "://:wrong-password@", url)
    p = doctor(env={"REDIS_URL": bad})
    assert p.returncode == 1, p.stdout
    assert checks(p.stdout)["redis"][0][0] == "FAIL"
    p = doctor(env={"REDIS_URL": url})
    assert p.returncode == 0, p.stdout
    assert checks(p.stdout)["redis"][0][0] == "OK"


def test_bad_flag_is_a_usage_error():
    p = doctor("--no-such-flag")
    assert p.returncode == 2
    assert "--no-such-flag" in p.stderr
    h = doctor("--help")
    assert h.returncode == 0 and h.stdout.startswith("usage: trireme doctor")


def test_tls_certificate_key_and_expiry(tmp_path):
    """OK with days left, WARN inside the renewal window, FAIL when the key
    does not match; SKIP without TLS."""
    from tlstools import make_ca

    ca = make_ca(tmp_path / "ca")
    long_cert, long_key = ca.issue("long", "ec", days=400)
    short_cert, short_key = ca.issue("short", "rsa", days=2)

    p = doctor()
    assert checks(p.stdout)["tls"][0][0] == "SKIP", p.stdout

    p = doctor(f"--tls-cert={long_cert}", f"--tls-key={long_key}")
    (verdict, text), = checks(p.stdout)["tls"]
    assert verdict == "OK" and "valid until" in text and re.search(r"\((399|400) days\)", text), p.stdout

    p = doctor(f"--tls-cert={short_cert}", f"--tls-key={short_key}")
    (verdict, text), = checks(p.stdout)["tls"]
    assert verdict == "WARN" and re.search(r"expires at \S+Z, in [12] days?", text), p.stdout
    assert "SIGHUP" in p.stdout

    p = doctor(f"--tls-cert={short_cert}", f"--tls-key={long_key}")
    (verdict, text), = checks(p.stdout)["tls"]
    assert verdict == "FAIL" and "does not match" in text, p.stdout
    assert p.returncode == 1


def test_jwt_key_files(tmp_path):
    """SKIP without key files, OK with what loaded, FAIL naming the file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert checks(doctor().stdout)["jwt"][0][0] == "SKIP"
    pem = tmp_path / "ec.pem"
    pem.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    p = doctor(f"--jwt-public-key-file={pem}")
    assert checks(p.stdout)["jwt"] == [
        ("OK", "1 public key (RS256: no, ES256: yes), 0 JWKS entries skipped")], p.stdout
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": []}')
    p = doctor(f"--jwt-public-key-file={pem}", env={"TRIREME_JWT_JWKS_FILE": str(bad)})
    (verdict, text), = checks(p.stdout)["jwt"]
    assert verdict == "FAIL" and str(bad) in text and "no RS256 or ES256" in text, p.stdout
    assert p.returncode == 1


def test_rediss_needs_a_loadable_ca_bundle(tmp_path):
    bad = tmp_path / "empty.pem"
    bad.write_text("")
    p = doctor(f"--tls-ca-file={bad}", env={"REDIS_URL": "rediss://127.0.0.1:1/0"})
    (verdict, text), = checks(p.stdout)["tls"][:1]
    assert verdict == "FAIL" and "no usable CA certificate" in text, p.stdout
    p = doctor(env={"REDIS_URL": "rediss://127.0.0.1:1/0"})
    assert checks(p.stdout)["tls"][0][0] == "OK", p.stdout
