"""Start a server in its own process group, wait until it answers, and always stop the whole group.

Readiness is observed, never assumed from a sleep: first the port accepts a connection, then a GET
must return 200. Everything is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class StartError(Exception):
    """The server exited or never became ready; the message says why in one line."""


@dataclass
class Running:
    """A server process group we started; `stop()` is safe to call more than once."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after `timeout`, then reap; stragglers are killed too."""
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        # Workers of a master that died first would otherwise outlive the run.
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def spawn(argv: list[str], port: int, log_path: Path, env: dict[str, str], cwd: Path) -> Running:
    """Start `argv` in a new session (so its group can be signalled as a whole), output to a log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    log.write(("$ " + " ".join(argv) + "\n").encode())
    log.flush()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd),
            start_new_session=True,
        )
    except OSError as exc:
        log.close()
        raise StartError(f"cannot execute {argv[0]}: {exc}") from exc
    return Running(proc, port, log_path, log)


def http_get(port: int, path: str, timeout: float = 5.0, host: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


Getter = Callable[[int, str, float], tuple[int, bytes]]  # (port, path, timeout) -> (status, body)


def wait_ready(
    server: Running, path: str, deadline_s: float = 30.0, host: str = "127.0.0.1", get: Getter | None = None
) -> None:
    """Poll-connect until the port accepts, then require `GET path` -> 200, all within `deadline_s`.
    `get` makes that request (default HTTP/1.1; HTTP/2-only servers need an h2c one)."""
    get = get or (lambda port, p, timeout: http_get(port, p, timeout, host))
    deadline = time.monotonic() + deadline_s
    _wait(lambda: _connects(host, server.port), server, deadline, "port never accepted a connection")
    last_error = ""
    while True:
        try:
            status, _ = get(server.port, path, max(0.5, deadline - time.monotonic()))
            if status == 200:
                return
            last_error = f"GET {path} answered {status}"
        except (OSError, http.client.HTTPException) as exc:
            last_error = f"GET {path} failed: {exc!r}"
        if not server.alive() or time.monotonic() > deadline:
            raise StartError(_why(server, last_error))
        time.sleep(0.05)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(probe: Callable[[], bool], server: Running, deadline: float, message: str) -> None:
    while not probe():
        if not server.alive():
            raise StartError(_why(server, "exited"))
        if time.monotonic() > deadline:
            raise StartError(_why(server, message))
        time.sleep(0.05)


def _why(server: Running, what: str) -> str:
    code = server.proc.poll()
    status = f"exit code {code}" if code is not None else "still running"
    tail = server.log_tail(3)
    return f"{what} ({status}){': ' + tail if tail else ''}"


@dataclass
class Upstream:
    """The loopback upstream the seed's requests/httpx pages call (benchmarks/bench/upstream.py)."""

    running: Running

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.port}"

    def stop(self) -> None:
        self.running.stop(5.0)


def start_upstream(run_dir: Path) -> Upstream:
    """Start the upstream in this (the peers') Python and wait until it answers."""
    import sys

    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.bench.upstream", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    root = Path(__file__).resolve().parents[2]
    running = spawn(argv, port, run_dir / "upstream.log", env, cwd=root)
    try:
        wait_ready(running, "/?delay=0", deadline_s=20.0)
    except BaseException:
        running.stop(5.0)
        raise
    return Upstream(running)
