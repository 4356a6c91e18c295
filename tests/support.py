"""The one set of end-to-end test helpers: start real palfrey processes, wait for readiness (never a
sleep), always stop them; and the raw HTTP/1.1 client (`Conn`) every test module talks to them with.

Fixtures built on these live in tests/conftest.py; the WebSocket raw client is in
tests/websocket_support.py, the master's helpers in tests/master_support.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import select
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(r"Palfrey running on (\S+)")
PARSERS = ("httptools", "h11")
HTTP_APP = "tests.apps.http_apps:app"  # the app of the HTTP core tests; routes on the path
TIMEOUT = 5.0  # default bound on every socket wait of the raw client


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


ServerFactory = Callable[..., ServerProcess]  # the type of conftest's `serve` fixture


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


def spawn_script(code: str) -> ServerProcess:
    """Run a Python snippet (dedented) with the test environment: palfrey used as a library."""
    return spawn_command([sys.executable, "-c", textwrap.dedent(code)])


def wait_ready(process: ServerProcess, timeout: float = 10.0) -> str:
    """The URL of a process once it logs that it is running on 127.0.0.1."""
    port = process.wait_for_line(r"Palfrey running on http://127\.0\.0\.1:(\d+)", timeout).group(1)
    return f"http://127.0.0.1:{port}"


def spawn(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> ServerProcess:
    return spawn_command(palfrey_command(*args), env=env, cwd=cwd)


_EPHEMERAL_START = 32768  # Linux's default start of the ephemeral port range, if it cannot be read
_LOWEST_PORT = 10000
_RANDOM = random.SystemRandom()  # not the seeded `random`: xdist workers must not draw the same ports


def free_port() -> int:
    """A free port for a server that binds it later (nginx, HAProxy, a master restarted on it).

    Chosen below the kernel's ephemeral range. A port from that range (what binding port 0 gives) is
    also what any outgoing connection on the machine may take as its source port between this check
    and the server's bind, and the tests running alongside open thousands of connections: in CI a
    master's bind failed with "Address already in use" that way. Below the range, only another
    explicit bind can take it.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            start = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        start = _EPHEMERAL_START
    for _ in range(200 if start - _LOWEST_PORT >= 1000 else 0):
        port = _RANDOM.randrange(_LOWEST_PORT, start)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # no room below the range: the kernel's choice
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


# ----------------------------------------------------------------------------------------------------
# gunicorn with palfrey's worker classes
# ----------------------------------------------------------------------------------------------------

GUNICORN_WORKERS = ["palfrey.workers.PalfreyWorker", "palfrey.workers.PalfreyH11Worker"]
GUNICORN_APP = "tests.apps.gunicorn_apps:app"


def gunicorn_command(*args: str) -> list[str]:
    """`python -m gunicorn *args`, without the control socket gunicorn 24+ opens in $HOME by default
    (parallel test servers would share it)."""
    from gunicorn.config import KNOWN_SETTINGS

    no_control = [flag for s in KNOWN_SETTINGS if s.name == "control_socket_disable" for flag in s.cli]
    return [sys.executable, "-m", "gunicorn", *no_control[:1], *args]


def gunicorn_cfg(**values: Any) -> Any:
    """A gunicorn `Config` with `values` set, as gunicorn's own option parsing would set them."""
    from gunicorn.config import Config as GunicornConfig

    cfg = GunicornConfig()
    for name, value in values.items():
        cfg.set(name, value)
    return cfg


def spawn_gunicorn(
    *args: str, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> ServerProcess:
    return spawn_command(gunicorn_command(*args), env=env, pass_fds=pass_fds)


@contextmanager
def run_gunicorn(
    *args: str,
    app: str = GUNICORN_APP,
    worker: str | None = GUNICORN_WORKERS[0],
    workers: int | None = 2,
    ready: int | None = None,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    pass_fds: tuple[int, ...] = (),
) -> Iterator[ServerProcess]:
    """gunicorn on 127.0.0.1 and a free port, ready once `ready` workers log that they are serving.

    `worker`/`workers` None leave `-k`/`-w` to a config file."""
    options = ["-k", worker] if worker else []
    options += ["-w", str(workers)] if workers else []
    server = spawn_gunicorn(app, *options, "-b", "127.0.0.1:0", *args, env=env, pass_fds=pass_fds)
    try:
        match = server.wait_for_line(r"Listening at: \w+://127\.0\.0\.1:(\d+)", timeout=15)
        server.port = int(match.group(1))
        server.url = f"{scheme}://127.0.0.1:{server.port}"
        # Each worker logs "Palfrey worker serving (pid: N)" once it serves (palfrey.workers).
        server.wait_for_matches(r"Palfrey worker serving", ready or workers or 1, timeout=15.0)
        yield server
    finally:
        stop(server, timeout=15)


# ----------------------------------------------------------------------------------------------------
# Raw sockets
# ----------------------------------------------------------------------------------------------------


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
    """Read one HTTP response (Content-Length or chunked, or until close) from `sock`, with `Conn`:
    (status, headers with repeated names joined by ", ", body). A 1xx is returned as it is.

    Bytes past that response are dropped: for pipelined responses use one `Conn.over(sock)` for all
    of them, or read the whole stream (e.g. `raw_request` with `Connection: close` on the last request).
    """
    response = Conn.over(sock, timeout).read_response(final=False)
    headers: dict[str, str] = {}
    for key, value in response.headers:
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return response.status, headers, response.body


# ----------------------------------------------------------------------------------------------------
# A raw HTTP/1.1 client: exact bytes out, every response byte accounted for
# ----------------------------------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the connection before a full response arrived."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: list[int] = field(default_factory=list)  # chunk sizes of a chunked body
    interim: list[int] = field(default_factory=list)  # 1xx statuses before this response

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """One client connection over a raw socket: the one raw HTTP/1.1 client of the tests.

    `Conn(port)` connects to 127.0.0.1; `Conn.over(sock)` reads from a socket the test opened itself
    (a unix socket, a TLS socket, one with options set before connecting)."""

    def __init__(
        self,
        port: int,
        timeout: float = TIMEOUT,
        rcvbuf: int | None = None,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf is not None:  # before connect, so the TCP window never grows past it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            sock.settimeout(timeout)
        self.sock = sock
        self.buffer = bytearray()
        self.timeout = timeout

    @classmethod
    def over(cls, sock: socket.socket, timeout: float = TIMEOUT) -> Conn:
        return cls(0, timeout, sock=sock)

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes, step: int = 1) -> None:
        """Send `data` a few bytes per write; stop early once the server answers or closes."""
        for start in range(0, len(data), step):
            if select.select([self.sock], [], [], 0)[0]:
                return
            try:
                self.sock.sendall(data[start : start + step])
            except (BrokenPipeError, ConnectionResetError):
                return

    def _fill(self) -> None:
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed(f"connection closed; unread bytes {bytes(self.buffer[:300])!r}")
        self.buffer += data

    def _until(self, marker: bytes) -> bytes:
        while (pos := self.buffer.find(marker)) < 0:
            self._fill()
        data = bytes(self.buffer[:pos])
        del self.buffer[: pos + len(marker)]
        return data

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_head(self) -> tuple[int, list[tuple[str, str]]]:
        status_line, *lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, code, *_ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            assert colon and name == name.strip(), f"malformed header line {line!r}"
            headers.append((name.lower(), value.strip()))
        return int(code), headers

    def read_response(self, head: bool = False, final: bool = True) -> Response:
        """The next final response (1xx are recorded in `interim`). `head`: a response to HEAD.
        `final=False`: the next response, a 1xx included."""
        interim = []
        status, headers = self.read_head()
        while final and 100 <= status < 200:
            interim.append(status)
            status, headers = self.read_head()
        response = Response(status, headers, interim=interim)
        if head or status < 200 or status in (204, 304):
            return response
        if response.header("transfer-encoding") == "chunked":
            body = bytearray()
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    assert self._until(b"\r\n") == b"", "unexpected trailers"
                    break
                response.chunks.append(size)
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            response.body = bytes(body)
        elif response.header("content-length") is not None:
            response.body = self._exact(int(response.header("content-length") or 0))
        else:
            response.body = self.read_to_close()
        return response

    def read_to_close(self) -> bytes:
        try:
            while True:
                self._fill()
        except Closed:
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def request(self, method: str, target: str, body: bytes | None = None, headers: str = "") -> Response:
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        self.send(f"{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}{length}\r\n".encode() + (body or b""))
        return self.read_response(head=method == "HEAD")

    def closed(self, timeout: float | None = None) -> bool:
        """True once the server closes the connection (EOF or reset) with no further bytes."""
        if self.buffer:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        self.buffer += data
        return not data

    def quiet(self, seconds: float) -> bool:
        """True if nothing arrives (and the connection stays open) for `seconds`."""
        return not self.buffer and not select.select([self.sock], [], [], seconds)[0]


def get(port: int, target: str, timeout: float = TIMEOUT) -> Response:
    with Conn(port, timeout) as conn:
        return conn.request("GET", target)


def wait_event(port: int, name: str, timeout: float = 5.0) -> None:
    """Block until the app has set event `name` (the app answers as soon as it is set)."""
    response = get(port, f"/event/wait?name={name}&timeout={timeout}", timeout=timeout + 2)
    assert response.status == 200, f"event {name!r} was not set within {timeout}s"


def set_event(port: int, name: str) -> None:
    assert get(port, f"/event/set?name={name}").status == 200


def clear_event(port: int, name: str) -> None:
    assert get(port, f"/event/clear?name={name}").status == 200


class FakeTransport:
    """An asyncio transport without a socket: a write buffer with a high-water mark, read by the
    "client" only when a test calls `client_reads()` (the in-process flow-control tests)."""

    def __init__(self, protocol: Any, high_water: int = 65536) -> None:
        self.protocol = protocol
        self.high_water = high_water
        self.buffered = 0  # written, not yet "read by the client"
        self.most_buffered = 0  # the most ever held at once
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.aborted = False
        self.write_paused = False

    def write(self, data: bytes) -> None:
        assert not self.aborted
        self.written += data
        self.buffered += len(data)
        self.most_buffered = max(self.most_buffered, self.buffered)
        if not self.write_paused and self.buffered > self.high_water:
            self.write_paused = True
            self.protocol.pause_writing()

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.write(part)

    def client_reads(self) -> None:
        """The client reads everything buffered."""
        self.buffered = 0
        if self.write_paused:
            self.write_paused = False
            self.protocol.resume_writing()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            if self.buffered == 0:  # asyncio waits for the buffer to drain before connection_lost
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        if not self.aborted:
            self.closing = self.aborted = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)
