"""
test_cli.py - the command line: help and version, refusing bad input with
exactly one line that names it (exit 2), roles that are not built, the
environment variables, and `trireme health`.
"""
import os
import re
import socket
import time

import pytest

from conftest import HOST, free_port, run_cli, sanitizer_problems
from e2e_http import fetch

# (flag, environment variable, default) as documented in the task and README.
DOCUMENTED = [
    ("host", "HOST", "0.0.0.0"),
    ("port", "PORT", "8000"),
    ("threads", "TRIREME_THREADS", "0"),
    ("roles", "TRIREME_ROLES", None),
    ("log-level", "LOG_LEVEL", "info"),
    ("log-format", "LOG_FORMAT", "text"),
    ("grace", "TRIREME_GRACE", "30s"),
    ("max-connections", "TRIREME_MAX_CONNECTIONS", "16384"),
    ("max-header-bytes", "TRIREME_MAX_HEADER_BYTES", "16k"),
    ("max-uri-bytes", "TRIREME_MAX_URI_BYTES", "8k"),
    ("max-headers", "TRIREME_MAX_HEADERS", "100"),
    ("max-body-bytes", "TRIREME_MAX_BODY_BYTES", "1m"),
    ("header-timeout", "TRIREME_HEADER_TIMEOUT", "10s"),
    ("body-timeout", "TRIREME_BODY_TIMEOUT", "30s"),
    ("idle-timeout", "TRIREME_IDLE_TIMEOUT", "60s"),
    ("access-log", "TRIREME_ACCESS_LOG", "true"),
]

ROW = re.compile(r"^  (--[a-z0-9-]+|\(env only\))\s+([A-Z0-9_]*)\s+default: (.*)$")


def help_rows(text):
    """{"--flag": (ENV, default)}; env-only settings are keyed by their variable."""
    rows = {}
    for ln in text.splitlines():
        m = ROW.match(ln)
        if m:
            key = m.group(1) if m.group(1) != "(env only)" else m.group(2)
            rows[key] = (m.group(2), m.group(3))
    return rows


def safe(argv):
    """Should a bad input be accepted after all, the server it starts listens
    on a free loopback port (not 0.0.0.0:8000) and run_cli's timeout ends it."""
    if argv[:1] != ["run"]:
        return argv
    return ["run", f"--host={HOST}", f"--port={free_port()}", "--threads=1", *argv[1:]]


def one_line_error(res, *must_contain):
    """Exit 2, nothing on stdout, exactly one line on stderr naming the input."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    for s in must_contain:
        assert s in lines[0], lines[0]
    assert not sanitizer_problems(res.stderr)
    return lines[0]


@pytest.mark.parametrize("argv", [["--help"], ["help"], ["-h"], ["run", "--help"],
                                  ["run", "--port=1", "--help"]])
def test_help_lists_every_flag_with_env_and_default(argv):
    res = run_cli(*argv)
    assert res.returncode == 0, res.stderr
    rows = help_rows(res.stdout)
    for flag, env, default in DOCUMENTED:
        assert f"--{flag}" in rows, f"--{flag} missing from help"
        got_env, got_default = rows[f"--{flag}"]
        assert got_env == env, (flag, got_env)
        if default is not None:
            assert got_default == default, (flag, got_default)
    assert "WORKER_ENABLED" in rows
    # every row names its environment variable
    assert all(env for env, _ in rows.values()), rows
    for sub in ("run", "health", "version"):
        assert re.search(rf"^  {sub}\s", res.stdout, re.M), sub
    assert "--timeout" in res.stdout and "--path" in res.stdout  # trireme health's flags


def test_every_flag_in_help_is_accepted_with_its_default():
    """The help text and the parser agree: pass every listed flag its listed
    default. --roles=nope then stops the run after the flags parsed."""
    rows = help_rows(run_cli("--help").stdout)
    args = [f"{flag}={default}" for flag, (_, default) in rows.items()
            if flag.startswith("--") and default != "(none)"]
    assert len(args) >= len(DOCUMENTED) - 1
    res = run_cli(*safe(["run", *args, "--roles=nope"]))
    one_line_error(res, "unknown role 'nope'")


@pytest.mark.parametrize("argv", [["version"], ["--version"]])
def test_version(argv):
    res = run_cli(*argv)
    assert res.returncode == 0
    assert res.stdout == "trireme 0.1.0\n"


def test_no_command_prints_usage_and_exits_2():
    res = run_cli()
    assert res.returncode == 2
    assert "usage: trireme" in res.stderr


BAD_INPUT = [
    (["run", "--nope"], "--nope"),
    (["run", "--port=70000"], "70000"),
    (["run", "--port=0"], "--port=0"),
    (["run", "--port=abc"], "abc"),
    (["run", "--roles=nope"], "nope"),
    (["run", "--roles=,web"], "--roles"),
    (["run", "--threads=abc"], "abc"),
    (["run", "--threads=-1"], "-1"),
    (["run", "--threads=9999"], "9999"),
    (["run", "--grace=soon"], "soon"),
    (["run", "--idle-timeout=5 s"], "5 s"),
    (["run", "--max-body-bytes=1q"], "1q"),
    (["run", "--max-connections=0"], "--max-connections=0"),
    (["run", "--log-level=loud"], "loud"),
    (["run", "--log-format=xml"], "xml"),
    (["run", "--access-log=maybe"], "maybe"),
    (["run", "--recv-buffers=1000"], "power of two"),
    (["run", "--max-uri-bytes=32k"], "--max-uri-bytes"),
    (["run", "extra"], "extra"),
    (["run", "--port"], "--port"),
    (["bogus"], "bogus"),
]


@pytest.mark.parametrize("argv,named", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(argv, named):
    one_line_error(run_cli(*safe(argv)), named)


@pytest.mark.parametrize("env,named", [({"PORT": "abc"}, "PORT=abc"),
                                       ({"TRIREME_THREADS": "x"}, "TRIREME_THREADS=x"),
                                       ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT=yaml"),
                                       ({"TRIREME_GRACE": "-1s"}, "TRIREME_GRACE=-1s"),
                                       ({"WORKER_ENABLED": "perhaps"}, "WORKER_ENABLED")])
def test_bad_environment_is_one_line_and_exit_2(env, named):
    one_line_error(run_cli(*safe(["run"]), env=env), named)


# Beat needs PostgreSQL too (its schedules live there); `trireme schedules`
# without a subcommand is a usage error. (Beat's own tests: test_beat*.py.)
@pytest.mark.parametrize("roles", ["beat", "web,beat"])
def test_beat_role_without_database(roles):
    one_line_error(run_cli(*safe(["run", f"--roles={roles}"])), "beat", "DATABASE_URL")


def test_schedules_command_usage():
    one_line_error(run_cli("schedules"), "usage: trireme schedules")


# The worker role and `trireme migrate` need PostgreSQL: named without a
# DATABASE_URL, they refuse with one line that says so.
@pytest.mark.parametrize("roles", ["worker", "web,worker"])
def test_worker_role_without_database(roles):
    one_line_error(run_cli(*safe(["run", f"--roles={roles}"])), "worker", "DATABASE_URL")


def test_worker_enabled_true_without_database():
    one_line_error(run_cli(*safe(["run"]), env={"WORKER_ENABLED": "true"}), "worker",
                   "DATABASE_URL")


def test_migrate_without_database():
    one_line_error(run_cli("migrate"), "migrate", "DATABASE_URL")


def test_default_roles_without_database_leave_the_worker_out(trireme):
    """No --roles: every built role that can run starts; the worker and beat,
    which cannot without PostgreSQL, are left out with a warning."""
    srv = trireme()
    assert fetch(srv.port).json()["roles"] == ["web"]
    srv.wait_log(r"role off.*worker")
    srv.wait_log(r"role off.*beat")


def test_worker_enabled_false_runs_web(trireme):
    srv = trireme(env={"WORKER_ENABLED": "false"})
    assert fetch(srv.port).json()["roles"] == ["web"]


def test_roles_web_explicit(trireme):
    srv = trireme("--roles=web")
    assert fetch(srv.port).json()["roles"] == ["web"]
    assert "roles=web" in srv.log


def test_port_from_environment(trireme):
    srv = trireme(port_via_env=True)
    assert "--port" not in " ".join(srv.args)
    assert fetch(srv.port).status == 200
    assert f"port={srv.port}" in srv.log


def test_flag_wins_over_environment(trireme):
    srv = trireme("--idle-timeout=60s", env={"TRIREME_IDLE_TIMEOUT": "1ms",
                                             "PORT": str(free_port())})
    # Had the environment won, the port or the 1 ms idle timeout would show.
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        time.sleep(0.3)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200 ")


def test_environment_settings_apply(trireme):
    srv = trireme(env={"TRIREME_MAX_HEADERS": "5", "TRIREME_ACCESS_LOG": "false"})
    hdrs = "".join(f"X-{i}: v\r\n" for i in range(5))
    resp = fetch(srv.port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{hdrs}\r\n".encode())
    assert resp.status == 431
    assert "request method=" not in srv.log


def test_threads_0_means_one_per_cpu(trireme):
    srv = trireme(threads=0)
    assert fetch(srv.port).status == 200
    assert f"threads={os.cpu_count()}" in srv.log


# -- trireme health -----------------------------------------------------------

def test_health_ok(server):
    res = run_cli("health", f"--port={server.port}")
    assert res.returncode == 0, res.stderr
    server.wait_log(r"path=/healthz status=200")


def test_health_port_from_environment(server):
    res = run_cli("health", env={"PORT": str(server.port)})
    assert res.returncode == 0, res.stderr


def test_health_nothing_listening():
    res = run_cli("health", f"--port={free_port()}", "--timeout=2s")
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 1 and "cannot connect" in res.stderr


def test_health_not_200(server):
    res = run_cli("health", f"--port={server.port}", "--path=/nope")
    assert res.returncode == 1
    assert "404" in res.stderr


def test_health_silent_peer_times_out():
    with socket.socket() as s:  # accepts (backlog) but never answers
        s.bind((HOST, 0))
        s.listen(4)
        start = time.monotonic()
        res = run_cli("health", f"--port={s.getsockname()[1]}", "--timeout=500ms")
        assert res.returncode == 1
        assert time.monotonic() - start < 8


@pytest.mark.parametrize("argv,named", [(["--nope"], "--nope"),
                                        (["--timeout=abc"], "abc")])
def test_health_bad_flag(argv, named):
    one_line_error(run_cli("health", *argv), named)


def test_help_lists_the_compiled_in_limits():
    """Every limit the code enforces without a flag is named in --help with
    its value: each name is a #define of the source, and its value is the
    one the source gives."""
    out = run_cli("--help").stdout
    section = out.split("compiled-in limits", 1)[1].split("\n\n", 1)[0]
    limits = dict(re.findall(r"^  ([A-Z][A-Z0-9_]+)\s+(\d+)", section, re.M))
    assert len(limits) >= 60, limits
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    src = ""
    for d in ("kernel", "modules", "proto"):
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith(".h"):
                    with open(os.path.join(dirpath, f)) as fh:
                        src += fh.read()
    for name in limits:
        assert re.search(rf"#define {name}\b", src), f"{name} is not a #define in a header"
    for name, value in (("JOB_BATCH_MAX", "1000"), ("LIST_MAX", "500"),
                        ("PULL_HANDOFF_WAIT_MS", "5000"), ("UPLOAD_TIMEOUT_MS", "30000"),
                        ("UPLOAD_INFLIGHT", "2"), ("JWT_MAX_TOKEN", "8192"),
                        ("CORS_ORIGIN_MAX", "200"), ("REDIS_REPLY_MAX_ELEMENTS", "1048576"),
                        ("QUEUE_API_TIMEOUT_MS", "10000")):
        assert limits.get(name) == value, (name, limits.get(name))
