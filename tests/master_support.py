"""Helpers for the pre-fork master's end-to-end tests: log-line counting, pids, and a keep-alive load.

The load client behaves like a real HTTP client: it reuses keep-alive connections, reconnects after
`Connection: close`, skips a pooled connection the server has already closed, and retries a request
*once* only when a reused connection closed before any byte of the response arrived (the keep-alive
race RFC 9112 section 9.3.1 allows clients to retry). Such retries are counted, never hidden.
"""

from __future__ import annotations

import collections
import os
import re
import select
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support import ROOT, ServerProcess, palfrey_command

READY_ALL = r"(?:All )?(\d+) workers? ready \(pids? ([\d, ]+)\)"
RESTARTED = r"Restart complete: every worker was replaced \(pids ([\d, ]+)\)"


def wait_for_count(
    server: ServerProcess, pattern: str, count: int, timeout: float = 15.0
) -> list[re.Match[str]]:
    """Block until at least `count` output lines match `pattern`; returns the matches."""
    return server.wait_for_matches(pattern, count, timeout)


def wait_after(
    server: ServerProcess, anchor: str, nth: int, pattern: str, timeout: float = 30.0
) -> re.Match[str]:
    """Block until a line matching `pattern` follows the `nth` line matching `anchor`."""
    anchor_re, regex = re.compile(anchor), re.compile(pattern)
    deadline = time.monotonic() + timeout
    with server._cond:
        while True:
            seen = 0
            for line in server._lines:
                if seen >= nth and (m := regex.search(line)):
                    return m
                if anchor_re.search(line):
                    seen += 1
            if server._lines and server._lines[-1] == "":
                raise AssertionError(f"process exited before {pattern!r}:\n{server.output()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for {pattern!r} after {anchor!r}:\n{server.output()}"
                )
            server._cond.wait(remaining)


def wait_exit(server: ServerProcess, timeout: float) -> int:
    """The exit code; on a timeout, fail with the process's output (what it was waiting for)."""
    try:
        return server.wait_exit(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {timeout}s:\n{server.output()}") from None


def count_lines(server: ServerProcess, pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for line in server.output().splitlines() if regex.search(line))


def ready_pids(server: ServerProcess, occurrence: int = 1) -> list[int]:
    """The pids listed by the `occurrence`-th "All N workers ready" line."""
    match = wait_for_count(server, READY_ALL, occurrence)[occurrence - 1]
    return [int(p) for p in match.group(2).split(",")]


def restarted_pids(server: ServerProcess, occurrence: int = 1, timeout: float = 30.0) -> list[int]:
    """The pids listed by the `occurrence`-th "Restart complete" line (after HUP or a file change)."""
    match = wait_for_count(server, RESTARTED, occurrence, timeout)[occurrence - 1]
    return [int(p) for p in match.group(1).split(",")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to exit (a pidfd becomes readable when it does)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def request(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection (`Connection: close`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status, headers, body, _ = _read_response(sock)
    return status, headers, body


class ResponseLost(Exception):
    """The connection failed during a request; `received` response bytes had arrived (0: none)."""

    def __init__(self, reason: str, received: int) -> None:
        super().__init__(f"{reason} after {received} response bytes")
        self.received = received


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, int]:
    """Read one Content-Length response; raises ResponseLost saying how many bytes had arrived."""
    buffer = b""

    def more() -> bytes:
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            raise ResponseLost(repr(exc), len(buffer)) from None
        if not chunk:
            raise ResponseLost("closed", len(buffer))
        return chunk

    while b"\r\n\r\n" not in buffer:
        buffer += more()
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = more()
        buffer += chunk
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body, len(buffer)


@dataclass
class LoadResult:
    ok: int = 0
    retried: int = 0
    failures: list[str] = field(default_factory=list)
    pids: collections.Counter[int] = field(default_factory=collections.Counter)


class Load:
    """`connections` threads, each sending GET /pid back to back on a keep-alive connection."""

    def __init__(self, port: int, connections: int = 16, path: str = "/pid") -> None:
        self.port = port
        self.request = f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        return self.result

    def wait_for_requests(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.result.ok < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"load made only {self.result.ok} requests")
            self._stop.wait(0.05)

    def _record(self, **kwargs: Any) -> None:
        with self._lock:
            if "ok_pid" in kwargs:
                self.result.ok += 1
                self.result.pids[kwargs["ok_pid"]] += 1
            if "retried" in kwargs:
                self.result.retried += 1
            if "failure" in kwargs:
                self.result.failures.append(kwargs["failure"])

    def _run(self) -> None:
        sock: socket.socket | None = None
        reused = False
        while not self._stop.is_set():
            if sock is not None and reused and select.select([sock], [], [], 0)[0]:
                sock.close()  # the server closed this idle pooled connection: do not send on it
                sock = None
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                except OSError as exc:
                    self._record(failure=f"connect: {exc!r}")
                    continue
                reused = False
            try:
                try:
                    sock.sendall(self.request)
                except OSError as exc:
                    raise ResponseLost(repr(exc), 0) from None
                status, headers, body, _ = _read_response(sock)
            except ResponseLost as exc:
                sock.close()
                sock = None
                if reused and not exc.received:
                    self._record(retried=True)
                else:
                    self._record(failure=f"request on a {'reused' if reused else 'new'} connection: {exc}")
                continue
            if status != 200:
                self._record(failure=f"status {status}: {body[:100]!r}")
            else:
                self._record(ok_pid=int(body))
            if headers.get("connection", "").lower() == "close":
                sock.close()
                sock = None
            else:
                reused = True
        if sock is not None:
            sock.close()


def ready_count_never_below(output: str, target: int) -> int:
    """Replays the master's log: the fewest ready, non-draining workers seen after the first
    "All N workers ready" line. Replacement-first recycling must keep this at `target`."""
    ready: set[int] = set()
    lowest: int | None = None
    started = False
    for line in output.splitlines():
        if m := re.search(r"Worker \(pid (\d+)\) ready", line):
            ready.add(int(m.group(1)))
        elif m := re.search(r"Worker \(pid (\d+)\) (draining|exited|died|did not)", line):
            ready.discard(int(m.group(1)))
        elif re.search(r"shutting down gracefully|stopping now", line):
            break
        if re.search(READY_ALL, line):
            started = True
        if started:
            lowest = len(ready) if lowest is None else min(lowest, len(ready))
    assert lowest is not None, output
    return lowest


def spawn_group(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start palfrey as the leader of its own process group (a session), so a test can signal the whole
    group the way systemd's KillMode=control-group or Ctrl+C in a terminal does (os.killpg)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(env or {})}
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS"):
        full_env.pop(name, None)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        palfrey_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=str(ROOT),
        start_new_session=True,
    )
    return ServerProcess(proc)


def live_workers(server: ServerProcess) -> list[int]:
    """Pids of workers that logged `ready` and have not been reported gone, in log order."""
    ready: dict[int, None] = {}
    for line in server.output().splitlines():
        if m := re.search(r"Worker \(pid (\d+)\) ready", line):
            ready[int(m.group(1))] = None
        elif m := re.search(r"Worker \(pid (\d+)\) (draining|exited|died|stopped|did not)", line):
            ready.pop(int(m.group(1)), None)
    return [pid for pid in ready if alive(pid)]


class SlowRequests:
    """`count` concurrent requests to `path` (e.g. /sleep?seconds=3), each on its own connection."""

    def __init__(self, port: int, path: str, count: int) -> None:
        self.results: list[tuple[int, bytes] | str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(port, path), daemon=True) for _ in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, port: int, path: str) -> None:
        try:
            status, _, body = request(port, path, timeout=30)
            outcome: tuple[int, bytes] | str = (status, body)
        except (OSError, ResponseLost) as exc:
            outcome = repr(exc)
        with self._lock:
            self.results.append(outcome)

    def join(self, timeout: float = 30.0) -> list[tuple[int, bytes] | str]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.results
