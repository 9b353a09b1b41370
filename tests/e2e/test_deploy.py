"""
test_deploy.py - the recipes in docs/deploy/, tried as a user would try
them on this machine (no container engine runs here):

- seccomp.json: trireme runs all three roles under it, applied by libseccomp
  exactly as runc applies a Docker profile (seccomp_run.py), with a Python
  one-shot `exec` kind and a pool worker as its children; the same profile
  without io_uring stops the start with the documented message, and a
  namespace escape (unshare) is refused, so the filter is really in force.
- Procfile: each process line is started as a platform would start it
  (a shell, PORT and the seeds' variables in the environment) and does its
  job: web answers, the worker runs an enqueued job, beat fires.
- compose.yaml, the Kubernetes manifests and the systemd unit: every flag
  and environment variable they set is one `trireme run --help` documents;
  probes and health checks use the routes and command that exist; the unit
  passes `systemd-analyze verify` when systemd is installed.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT, binary_path, clean_env, free_port

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, enqueue, get_job, wait_until  # noqa: E402

pytest_plugins = ["pgtools"]

DEPLOY = REPO_ROOT / "docs" / "deploy"
PROFILE = DEPLOY / "seccomp.json"
RUNNER = Path(__file__).with_name("seccomp_run.py")


# LeakSanitizer (the ASan build) inspects the process with ptrace, which the
# profile refuses as it should: leak checking is off under the profile only.
NO_LEAK_CHECK = {"ASAN_OPTIONS": "detect_leaks=0"}


def under_profile(*drop: str) -> list[str]:
    wrap = [sys.executable, str(RUNNER), str(PROFILE)]
    if drop:
        wrap += ["--drop", ",".join(drop)]
    return wrap + ["--"]


def test_profile_is_the_generators_output():
    """docs/deploy/seccomp.json is what tools/seccomp-profile.py writes (no hand edits)."""
    out = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "seccomp-profile.py")],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == json.loads(PROFILE.read_text())
    names = json.loads(out)["syscalls"][0]["names"]
    assert {"io_uring_setup", "io_uring_enter", "io_uring_register"} <= set(names)
    assert not {"mount", "unshare", "setns", "ptrace", "bpf", "keyctl"} & set(names)


def test_all_roles_and_exec_children_run_under_the_profile(trireme, db, tmp_path):
    kinds = tmp_path / "kinds.json"
    kinds.write_text(json.dumps({"kinds": {
        "one_shot": {"type": "exec", "argv": [sys.executable,
                                              str(REPO_ROOT / "docs/examples/exec_job.py")]},
        "pooled": {"type": "exec", "mode": "pool", "processes": 1,
                   "argv": [sys.executable, str(REPO_ROOT / "docs/examples/pool_worker.py")]},
    }}))
    queue = "q" + uuid.uuid4().hex[:8]
    srv = trireme("--roles=web,worker,beat", f"--kinds={kinds}", f"--queues={queue}",
                  env={**db.env(), **NO_LEAK_CHECK}, wrap=under_profile())
    srv.wait_log(r"worker listening for new jobs", timeout=15)
    ids = [enqueue(srv.port, {"kind": "one_shot", "queue": queue, "payload": {"chunks": 2}})["id"],
           enqueue(srv.port, {"kind": "pooled", "queue": queue, "payload": {"x": 1}})["id"],
           enqueue(srv.port, {"kind": "noop", "queue": queue})["id"]]
    box = {}

    def done():
        box["jobs"] = [get_job(srv.port, i) for i in ids]
        return all(j["status"] in ("succeeded", "dead", "failed") for j in box["jobs"])

    wait_until(done, 30, what=lambda: box.get("jobs"))
    assert [j["status"] for j in box["jobs"]] == ["succeeded"] * 3, box["jobs"]
    assert box["jobs"][0]["result"] == {"chunks": 2}
    assert len(box["jobs"][1]["result"]["sha256"]) == 64
    # The filter is in force in trireme's process: Seccomp mode 2 (filter).
    status = Path(f"/proc/{srv.proc.pid}/status").read_text()
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status


def test_without_io_uring_the_start_fails_with_the_documented_message(tmp_path):
    p = subprocess.run(under_profile("io_uring_setup", "io_uring_enter", "io_uring_register") +
                       [str(binary_path()), "run", "--host=127.0.0.1", f"--port={free_port()}"],
                       capture_output=True, text=True, timeout=30, env=clean_env(NO_LEAK_CHECK),
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "cannot set up io_uring" in p.stderr and "seccomp" in p.stderr, p.stderr


def test_the_profile_refuses_namespace_escapes():
    p = subprocess.run(under_profile() + ["unshare", "--user", "true"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr


# --- Procfile --------------------------------------------------------------

def procfile() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, cmd = line.split(":", 1)
            out[name.strip()] = cmd.strip()
    return out


def test_procfile_roles_run_as_a_platform_runs_them(db, tmp_path):
    """web, worker and beat from the Procfile, each through a shell with
    trireme on PATH and PORT set, as Heroku or Railway start them: the web
    answers, a job enqueued through it runs, a schedule fires."""
    procs = procfile()
    assert set(procs) == {"web", "worker", "beat"}
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "trireme").symlink_to(binary_path())
    port = free_port()
    env = clean_env(db.env(PORT=str(port), HOST="127.0.0.1",
                           PATH=f"{bindir}:{os.environ['PATH']}"))
    env.pop("TRIREME_API_KEYS", None)
    env["MASTER_API_KEY"] = API_KEY  # the seeds' variable
    running = {}
    try:
        for name, cmd in procs.items():
            log = open(tmp_path / f"{name}.log", "wb")
            running[name] = subprocess.Popen(["sh", "-c", f"exec {cmd}"], env=env, cwd=tmp_path,
                                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        from pgtools import http
        wait_until(lambda: _answers(port), 15, what="web from the Procfile answers /healthz")
        queue = "default"
        jid = enqueue(port, {"kind": "noop", "queue": queue})["id"]
        wait_until(lambda: get_job(port, jid)["status"] == "succeeded", 20,
                   what=lambda: get_job(port, jid))
        name = "procfile-" + uuid.uuid4().hex[:6]
        r = http(port, "POST", "/v1/schedules",
                 {"name": name, "cron": "@every 1s", "kind": "noop", "queue": queue})
        assert r.status == 201, r.body
        from beattools import fires
        box = {}

        def fired_and_ran():
            box["f"] = [f for f in fires(db, name) if f["job_id"]]
            return any(get_job(port, f["job_id"])["status"] == "succeeded" for f in box["f"])

        wait_until(fired_and_ran, 20, what=lambda: f"a fire run by the worker: {box.get('f')}")
        for name, p in running.items():
            assert p.poll() is None, (name, (tmp_path / f"{name}.log").read_text()[-2000:])
    finally:
        for p in running.values():
            p.terminate()
        for name, p in running.items():
            assert p.wait(timeout=40) == 0, (name, (tmp_path / f"{name}.log").read_text()[-2000:])


def _answers(port) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# --- compose, Kubernetes, systemd: what they set exists ----------------------

def help_text() -> str:
    return subprocess.run([str(binary_path()), "run", "--help"], capture_output=True, text=True,
                          check=True).stdout


def known_envs(text: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})\b", text))


def check_args(args: list[str], text: str):
    for a in args:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            assert re.search(rf"^\s+{re.escape(flag)}\s", text, re.M), f"unknown flag {a}"
            if flag == "--roles":
                assert set(a.split("=", 1)[1].split(",")) <= {"web", "worker", "beat"}, a


def test_compose_services_use_real_flags_variables_and_the_profile():
    import yaml
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    text, envs = help_text(), known_envs(help_text())
    roles = {}
    for name in ("web", "worker", "beat"):
        svc = doc["services"][name]
        assert svc["command"][0] == "run"
        check_args(svc["command"][1:], text)
        roles[name] = svc["command"][1]
        for var in svc["environment"]:
            assert var in envs, f"{name}: {var} is not a variable trireme reads"
        assert svc["security_opt"] == ["seccomp=./seccomp.json"]
        assert (DEPLOY / "seccomp.json").exists()
        grace = int(re.search(r"(\d+)s", svc["stop_grace_period"]).group(1))
        assert grace > 30, "stop_grace_period must exceed --grace (30 s)"
        assert set(svc["depends_on"]) == {"postgres", "redis"}
    assert roles == {"web": "--roles=web", "worker": "--roles=worker", "beat": "--roles=beat"}
    assert "8000:8000" in doc["services"]["web"]["ports"]


def test_kubernetes_manifests_probe_real_routes_and_set_real_variables(server):
    import yaml
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "trireme.yaml").read_text()) if d]
    text, envs = help_text(), known_envs(help_text())
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"trireme-web", "trireme-worker", "trireme-beat"}
    from pgtools import http
    for name, d in deployments.items():
        spec = d["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > 30
        assert spec["securityContext"]["seccompProfile"]["type"] == "Localhost"
        (c,) = spec["containers"]
        assert c["args"][0] == "run"
        check_args(c["args"][1:], text)
        for e in c.get("env", []):
            assert e["name"] in envs, f"{name}: {e['name']}"
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in c:
                path = c[probe]["httpGet"]["path"]
                r = http(server.port, "GET", path, key=None)
                assert r.status in (200, 503), (path, r.status)  # a route that exists
    web = deployments["trireme-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_systemd_unit_verifies_and_uses_real_flags(tmp_path):
    unit = (DEPLOY / "trireme@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    assert exec_start[0] == "/usr/local/bin/trireme" and exec_start[1] == "run"
    check_args([a.replace("%i", "web") for a in exec_start[2:]], help_text())
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M)
    assert int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1)) > 30
    if not Path("/usr/bin/systemd-analyze").exists():
        pytest.fail("systemd-analyze is missing: tools/deps.sh test installs systemd")
    local = tmp_path / "trireme@web.service"
    local.write_text(unit.replace("/usr/local/bin/trireme", str(binary_path())))
    p = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
