"""
test_rediss.py - rediss://: the Redis client over TLS (BearSSL) against a
local redis-server with TLS only (--port 0 --tls-port), certificates from a
CA made by the test. The worker and the web role run the Redis queue backend
over it; a session is resumed after a reconnection; a server whose
certificate names another host, or is signed by a CA not in --tls-ca-file,
is refused with a log line naming the reason, and nothing is sent to it.
"""
from __future__ import annotations

import re
import json
import subprocess
import time

import pytest

from conftest import free_port
from tlstools import make_ca

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, http, wait_until  # noqa: E402


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("rediss-ca"))


class TlsRedis:
    """A private redis-server that speaks TLS only."""

    def __init__(self, directory, ca, cert, key, password: str | None = None):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.port = free_port()
        self.password = password
        args = ["redis-server", "--bind", "127.0.0.1", "--port", "0", "--tls-port",
                str(self.port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                "--tls-ca-cert-file", str(ca.cert), "--tls-auth-clients", "no",
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--logfile", str(self.dir / "redis.log")]
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli("PING") == "PONG", 10, what="redis-server (TLS) to answer")

    def cli(self, *args: str) -> str:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        r = subprocess.run(["redis-cli", "--tls", "--cacert", str(self.ca.cert), "-h",
                            "localhost", "-p", str(self.port), *auth, *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    def url(self, db: int = 0, host: str = "localhost") -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}{host}:{self.port}/{db}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def tls_redis(tmp_path, ca):
    cert, key = ca.issue("redis", "ec")
    r = TlsRedis(tmp_path / "redis", ca, cert, key)
    yield r
    r.stop()


def env_for(url: str) -> dict[str, str]:
    return {"REDIS_URL": url, "QUEUE_BACKEND": "redis", "TRIREME_API_KEYS": API_KEY}


def test_worker_and_web_run_jobs_over_rediss(trireme, tls_redis, ca):
    srv = trireme("--roles=web,worker", f"--tls-ca-file={ca.cert}", "--log-level=debug",
                  threads=1, env=env_for(tls_redis.url()))
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    jid = enqueue(srv.port, {"kind": "sleep", "payload": {"ms": 50}})["id"]
    wait_until(lambda: get_job(srv.port, jid)["status"] == "succeeded", 15, interval=0.05,
               what="the job to succeed over rediss://")
    r = http(srv.port, "GET", "/readyz")
    assert r.status == 200 and r.json["redis"] == "ok", r
    # The connections verified the server, and the job really is in that Redis.
    srv.wait_log(r"tls: connected server=localhost port=%d" % tls_redis.port, count=2)
    assert any(k.endswith(f"job:{jid}") for k in tls_redis.cli("KEYS", "*").split()), \
        tls_redis.cli("KEYS", "*")


def test_reconnection_resumes_the_tls_session(trireme, tls_redis, ca):
    srv = trireme("--roles=web", f"--tls-ca-file={ca.cert}", "--log-level=debug", threads=1,
                  env=env_for(tls_redis.url()))
    assert http(srv.port, "GET", "/readyz").status == 200  # the web role connects on first use
    srv.wait_log(r"tls: connected server=localhost port=\d+ resumed=false")
    tls_redis.cli("CLIENT", "KILL", "TYPE", "normal")
    wait_until(lambda: http(srv.port, "GET", "/readyz").status == 200 and
               re.search(r"tls: connected server=localhost port=\d+ resumed=true", srv.log),
               15, interval=0.1, what="a reconnection that resumed the TLS session")


def test_auth_and_select_over_rediss(trireme, tmp_path, ca):
    cert, key = ca.issue("redis-auth", "rsa")
    r = TlsRedis(tmp_path / "redis-auth", ca, cert, key, password="s3cret")
    try:
        srv = trireme("--roles=web,worker", f"--tls-ca-file={ca.cert}", threads=1,
                      env=env_for(r.url(db=3)))
        srv.wait_log(r"worker listening for new jobs", timeout=15)
        jid = enqueue(srv.port, {"kind": "noop"})["id"]
        wait_until(lambda: get_job(srv.port, jid)["status"] == "succeeded", 15, interval=0.05,
                   what="the job to succeed")
        assert r.cli("-n", "3", "DBSIZE") != "0"
        assert r.cli("-n", "0", "DBSIZE") == "0"
    finally:
        r.stop()


def refused(srv, reason: str, redis: TlsRedis):
    http(srv.port, "GET", "/readyz")  # the web role connects on first use
    srv.wait_log(r"tls: handshake with server failed peer=localhost:%d reason=%s"
                 % (redis.port, reason), timeout=15)
    time.sleep(0.5)
    assert not re.search(r"redis connected", srv.log), srv.log[-2000:]
    r = http(srv.port, "GET", "/readyz")
    assert r.status == 503, r
    # Nothing reached the server: no command but this test's own PING and INFO.
    stats = redis.cli("INFO", "commandstats")
    assert "cmdstat_" not in stats.replace("cmdstat_info", "").replace("cmdstat_ping", ""), stats


def test_wrong_host_name_is_refused(trireme, tmp_path, ca):
    cert, key = ca.issue("redis-other", "ec", dns="cache.example.test", ip=None)
    r = TlsRedis(tmp_path / "redis-other", ca, cert, key)
    try:
        srv = trireme("--roles=web", f"--tls-ca-file={ca.cert}", threads=1,
                      env=env_for(r.url()))
        refused(srv, "BR_ERR_X509_BAD_SERVER_NAME", r)
    finally:
        r.stop()


def test_untrusted_ca_is_refused(trireme, tls_redis, tmp_path):
    other = make_ca(tmp_path / "other-ca", "other")
    srv = trireme("--roles=web", f"--tls-ca-file={other.cert}", threads=1,
                  env=env_for(tls_redis.url()))
    refused(srv, "BR_ERR_X509_NOT_TRUSTED", tls_redis)


def test_missing_ca_file_fails_start(tls_redis, tmp_path):
    from conftest import run_cli
    r = run_cli("run", "--roles=web", "--host=127.0.0.1", f"--port={free_port()}",
                f"--tls-ca-file={tmp_path}/none.pem", env={"REDIS_URL": tls_redis.url()})
    assert r.returncode == 1
    assert "tls: cannot load" in r.stderr and "none.pem" in r.stderr


def test_the_cli_speaks_rediss_too(tls_redis, ca, tmp_path):
    from conftest import run_cli
    env = env_for(tls_redis.url())
    r = run_cli("enqueue", "noop", f"--tls-ca-file={ca.cert}", env=env)
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    g = run_cli("jobs", "get", str(jid), env={**env, "TRIREME_TLS_CA_FILE": str(ca.cert)})
    assert g.returncode == 0 and json.loads(g.stdout)["status"] == "pending", g.stderr
    other = make_ca(tmp_path / "other-ca", "other")
    bad = run_cli("jobs", "get", str(jid), f"--tls-ca-file={other.cert}", env=env, timeout=30)
    assert bad.returncode == 1 and bad.stdout == "", bad
    missing = run_cli("jobs", "get", str(jid), f"--tls-ca-file={tmp_path}/none.pem", env=env)
    assert missing.returncode == 1 and "none.pem" in missing.stderr, missing.stderr
