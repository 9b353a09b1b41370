"""
conftest.py - start the real trireme binary for each test, stop it after.

The `trireme` fixture is a factory: trireme("--idle-timeout=500ms", threads=1)
starts `trireme run --host=127.0.0.1 --port=<free> --threads=N <flags>`,
waits (bounded) until it listens, and returns a Server. Every server a test
started is stopped at teardown with SIGTERM, and teardown fails the test if
the exit code is not the expected one (0 unless the test says otherwise) or
if stderr shows a sanitizer report or a panic. The `server` fixture is one
default server.

Binary: $TRIREME_BIN (relative paths are tried against the current directory,
then the repository root), default zig-out/bin/trireme. Set it to the ASan
build (zig-out/asan/trireme) to run the same suite under AddressSanitizer.

Stderr goes to a file in the test's tmp_path, so a chatty server can never
block on a full pipe, and the file is kept for the failure report.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# Sanitizer and crash reports that must never appear on a server's stderr.
BAD_OUTPUT = ("AddressSanitizer", "LeakSanitizer", "runtime error", "panic")

# Settings a developer's shell may carry that would change what the server
# does; removed so every test starts from the documented defaults.
CONFIG_ENV = re.compile(r"^(HOST|PORT|LOG_LEVEL|LOG_FORMAT|WORKER_ENABLED|MASTER_API_KEY|"
                        r"DATABASE_.*|REDIS_.*|TRIREME_.*|PG[A-Z]*)$")

START_TIMEOUT = 10.0  # seconds until the port must accept
STOP_TIMEOUT = 40.0   # teardown: longer than the default 30s grace


def binary_path() -> Path:
    v = os.environ.get("TRIREME_BIN")
    if not v:
        return REPO_ROOT / "zig-out" / "bin" / "trireme"
    p = Path(v)
    if p.is_absolute() or p.exists():
        return p.resolve()
    return REPO_ROOT / p


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not CONFIG_ENV.match(k)}
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20.0):
    """Run the binary to completion (bounded); returns CompletedProcess."""
    return subprocess.run([str(binary_path()), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=clean_env(env), timeout=timeout,
                          cwd=REPO_ROOT)


def sanitizer_problems(text: str) -> list[str]:
    return [b for b in BAD_OUTPUT if b in text]


class Server:
    """A running `trireme run` process."""

    def __init__(self, tmp_path: Path, name: str, flags: list[str], threads: int,
                 env: dict[str, str] | None, port_via_env: bool, wrap: list[str] | None = None):
        self.wrap = list(wrap or [])  # argv run before trireme's own (it execs trireme)
        self.tmp_path = tmp_path
        self.name = name
        self.flags = flags
        self.threads = threads
        self.extra_env = dict(env or {})
        self.port_via_env = port_via_env
        self.expected_rc = 0  # what teardown requires; None: anything
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp_path / f"{name}.stderr"
        self.returncode: int | None = None

    # -- start / stop -----------------------------------------------------

    def start(self):
        binary = binary_path()
        if not binary.exists():
            pytest.fail(f"trireme binary not found at {binary} (build it, or set TRIREME_BIN)")
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            env = dict(self.extra_env)
            args = self.wrap + [str(binary), "run", f"--host={HOST}"]
            if self.port_via_env:
                env["PORT"] = str(self.port)
            else:
                args.append(f"--port={self.port}")
            if self.threads is not None:
                args.append(f"--threads={self.threads}")
            args += self.flags
            self.args = args
            with open(self.log_path, "ab") as err, open(self.tmp_path / f"{self.name}.stdout",
                                                         "ab") as out:
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=err, env=clean_env(env), cwd=self.tmp_path)
            if self._wait_ready():
                return self
            if self.proc.poll() is not None and "cannot listen" in self.log:
                continue  # port race: try another one
            self.kill()
            self.expected_rc = None  # the start failure is the report
            pytest.fail(f"trireme did not start listening on {HOST}:{self.port}; "
                        f"args={args}\nstderr:\n{self.log[-4000:]}")
        self.expected_rc = None
        pytest.fail(f"trireme could not bind a free port; stderr:\n{self.log[-4000:]}")

    def _wait_ready(self) -> bool:
        """Until the "started" line is logged (listeners are open by then)
        or, failing that, the port accepts. Not a connection the server
        counts unless needed: --max-connections tests want an exact count."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.quiet:
                try:
                    socket.create_connection((HOST, self.port), timeout=1.0).close()
                    return True
                except OSError:
                    pass
            elif "trireme started" in self.log:
                return True
            time.sleep(0.02)
        return False

    @property
    def quiet(self) -> bool:
        """The server will not log "trireme started" (log level above info)."""
        levels = [f.split("=", 1)[1] for f in self.flags if f.startswith("--log-level=")]
        level = levels[-1] if levels else self.extra_env.get("LOG_LEVEL", "info")
        return level.lower() in ("warn", "warning", "error", "off")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int):
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for exit (bounded); returns the exit code."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"trireme did not exit within {timeout}s; "
                                 f"stderr tail:\n{self.log[-3000:]}")
        return self.returncode

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait (bounded). Returns the exit code."""
        if self.running:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.running:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # -- output -----------------------------------------------------------

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list[str]:
        return [ln for ln in self.log.splitlines() if ln.strip()]

    def wait_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until `count` lines match the regex; returns the matching lines.
        (Log lines are flushed once per loop iteration, so they trail the
        answers on the wire by a moment.)"""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = [ln for ln in self.log.splitlines() if rx.search(ln)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} log line(s) matching {pattern!r} not seen within "
                                     f"{timeout}s; found {len(found)}. stderr tail:\n"
                                     f"{self.log[-3000:]}")
            time.sleep(0.02)

    def check_clean_output(self):
        bad = sanitizer_problems(self.log)
        assert not bad, f"server stderr contains {bad}:\n{self.log[-6000:]}"


@pytest.fixture
def trireme(tmp_path):
    started: list[Server] = []

    def start(*flags: str, threads: int | None = 2, env: dict[str, str] | None = None,
              port_via_env: bool = False, wrap: list[str] | None = None) -> Server:
        srv = Server(tmp_path, f"trireme-{len(started)}", list(flags), threads, env,
                     port_via_env, wrap)
        started.append(srv)
        return srv.start()

    yield start

    problems = []
    for srv in started:
        if srv.proc is None:
            continue
        try:
            rc = srv.stop() if srv.returncode is None else srv.returncode
        except AssertionError as e:
            problems.append(str(e))
            continue
        if srv.expected_rc is not None and rc != srv.expected_rc:
            problems.append(f"{srv.name}: exit code {rc}, expected {srv.expected_rc}; "
                            f"stderr tail:\n{srv.log[-4000:]}")
        bad = sanitizer_problems(srv.log)
        if bad:
            problems.append(f"{srv.name}: stderr contains {bad}:\n{srv.log[-8000:]}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(trireme) -> Server:
    return trireme()
