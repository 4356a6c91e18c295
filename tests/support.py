"""Start real palfrey processes for end-to-end tests, wait for readiness (never a sleep), always stop them."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(r"Palfrey running on (\S+)")


class ServerProcess:
    """A running palfrey process; its combined output is collected by a reader thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.port = 0
        self.url = ""
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._lines.append("")  # EOF marker
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for_matches(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[re.Match[str]]:
        """Block until `count` output lines match `pattern` (a regex); fail on exit or after `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matches = [m for m in map(regex.search, self._lines) if m]
                if len(matches) >= count:
                    return matches
                if self._lines and self._lines[-1] == "":
                    raise AssertionError(f"process exited before {count}x {pattern!r}:\n{self.output()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {count}x {pattern!r}:\n{self.output()}")
                self._cond.wait(remaining)

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Block until a line of output matches `pattern` (a regex), or fail after `timeout`."""
        return self.wait_for_matches(pattern, 1, timeout)[0]

    def wait_exit(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)


def palfrey_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "palfrey", *args]


def spawn_command(
    command: list[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ServerProcess:
    """Start any server command with the test environment (this checkout importable, no colors,
    no inherited WEB_CONCURRENCY / FORWARDED_ALLOW_IPS / GUNICORN_CMD_ARGS)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS"):
        full_env.pop(name, None)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=str(cwd or ROOT),
        pass_fds=pass_fds,
    )
    return ServerProcess(proc)


def spawn(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> ServerProcess:
    return spawn_command(palfrey_command(*args), env=env, cwd=cwd)


@contextmanager
def run_server(
    *args: str, env: dict[str, str] | None = None, timeout: float = 15.0, cwd: str | Path | None = None
) -> Iterator[ServerProcess]:
    """Start `python -m palfrey *args`, on 127.0.0.1 and a free port unless told otherwise, wait until it
    logs that it is running, yield it, and always stop it (TERM, then KILL)."""
    args_list = list(args)
    if "--uds" not in args_list and "--fd" not in args_list:
        if "--host" not in args_list:
            args_list += ["--host", "127.0.0.1"]
        if "--port" not in args_list:
            args_list += ["--port", "0"]
    server = spawn(*args_list, env=env, cwd=cwd)
    try:
        match = server.wait_for_line(_READY.pattern, timeout=timeout)
        server.url = match.group(1)
        port = re.search(r":(\d+)$", server.url)
        server.port = int(port.group(1)) if port else 0
        yield server
    finally:
        stop(server)


def stop(server: ServerProcess, timeout: float = 10.0) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5)
    server._reader.join(timeout=5)


def raw_request(port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send bytes on a new connection and read until the server closes it (bounded by `timeout`)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout
    chunks = []
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"server did not close the connection; got {b''.join(chunks)[:500]!r}")
            if not sel.select(remaining):
                continue
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sel.close()
    return b"".join(chunks)


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP response (Content-Length or chunked, or until close) from `sock`.

    Bytes past that response in the same recv are dropped: for pipelined responses read the
    whole stream instead (e.g. `raw_request` with `Connection: close` on the last request).
    """
    sock.settimeout(timeout)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response head: {buffer!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if status < 200 or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:length]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunk")
                rest += chunk
            body += rest[:size]
            rest = rest[size + 2 :]
            if size == 0:
                return status, headers, body
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, rest
        rest += chunk
