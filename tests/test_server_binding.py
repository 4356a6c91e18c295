"""Listeners: IPv4, IPv6, port 0, --uds (stale file, permissions, cleanup), --fd and --backlog,
each served to a real client."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServerProcess, spawn, stop

APP = "tests.apps.server_apps:app"
READY = r"Palfrey running on (\S+)"


def started(server: ServerProcess) -> ServerProcess:
    server.url = server.wait_for_line(READY).group(1)
    port = re.search(r":(\d+)$", server.url)
    server.port = int(port.group(1)) if port else 0
    return server


@contextmanager
def serving(*args: str, pass_fds: tuple[int, ...] = ()) -> Iterator[ServerProcess]:
    """Like run_server, without its default --host/--port, and able to hand down descriptors."""
    if pass_fds:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "palfrey", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(ROOT),
            pass_fds=pass_fds,
        )
        server = ServerProcess(proc)
    else:
        server = spawn(*args)
    try:
        yield started(server)
    finally:
        stop(server)


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def listen_backlog(port: int) -> int | None:
    """The accept-queue limit of a listening TCP socket, as the kernel reports it (ss's Send-Q)."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5
    ).stdout.split()
    return int(out[2]) if len(out) >= 3 and out[0] == "LISTEN" else None


def test_ipv4_and_port_zero() -> None:
    with serving(APP, "--host", "127.0.0.1", "--port", "0") as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert server.port > 0
        body = httpx.get(server.url + "/").json()
        assert body["server"] == ["127.0.0.1", server.port]
        assert body["client"][0] == "127.0.0.1"
        assert f"Palfrey running on http://127.0.0.1:{server.port} (Press CTRL+C to quit)" in server.output()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6() -> None:
    with serving(APP, "--host", "::1", "--port", "0") as server:
        assert re.fullmatch(r"http://\[::1\]:\d+", server.url)
        body = httpx.get(server.url + "/").json()
        assert body["server"] == ["::1", server.port]
        assert body["client"][0] == "::1"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_bracketed_host() -> None:
    with serving(APP, "--host", "[::1]", "--port", "0") as server:
        assert httpx.get(server.url + "/").status_code == 200


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_any_address_is_dual_stack() -> None:
    with serving(APP, "--host", "::", "--port", "0") as server:
        assert re.fullmatch(r"http://\[::\]:\d+", server.url)
        with httpx.Client() as client:
            assert client.get(f"http://[::1]:{server.port}/").json()["client"][0] == "::1"
            v4 = client.get(f"http://127.0.0.1:{server.port}/", headers={"x-forwarded-for": "192.0.2.5"})
        # An IPv4 peer arrives as ::ffff:127.0.0.1 and is still the trusted 127.0.0.1 for proxy headers.
        assert v4.json()["client"] == ["192.0.2.5", 0]


def make_stale_socket_file(path: Path) -> None:
    """What a killed server leaves behind: a socket file nobody listens on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_uds(tmp_path: Path) -> None:
    path = tmp_path / "palfrey.sock"
    make_stale_socket_file(path)
    with serving(APP, "--uds", str(path)) as server:
        assert f"Palfrey running on http+unix socket {path}" in server.output()
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o666, oct(mode)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            body = client.get("http://palfrey/over-uds").json()
        assert body["path"] == "/over-uds"
        assert body["client"] is None  # a unix peer has no address (as in uvicorn)
        if shutil.which("curl"):
            curl = subprocess.run(
                ["curl", "-sS", "--max-time", "5", "--unix-socket", str(path), "http://localhost/curl"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert curl.returncode == 0, curl.stderr
            assert '"path": "/curl"' in curl.stdout
        # A second server must not steal a live socket.
        second = spawn(APP, "--uds", str(path))
        assert second.wait_exit() != 0
        assert "another server is listening" in second.output()
        assert "Traceback" not in second.output()
    assert server.proc.returncode == 0
    assert not path.exists(), "the socket file is removed on exit"


def test_uds_refuses_to_remove_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    server = spawn(APP, "--uds", str(path))
    assert server.wait_exit() != 0
    assert "is not a socket" in server.output()
    assert "Traceback" not in server.output()
    assert path.read_text() == "precious"


def test_fd() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        with serving(APP, "--fd", str(listener.fileno()), pass_fds=(listener.fileno(),)) as server:
            assert server.port == port
            assert httpx.get(f"http://127.0.0.1:{port}/fd").json()["path"] == "/fd"
    finally:
        listener.close()


def test_fd_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "fd.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(16)
        with (
            serving(APP, "--fd", str(listener.fileno()), pass_fds=(listener.fileno(),)),
            httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client,
        ):
            assert client.get("http://palfrey/ufd").json()["path"] == "/ufd"
    finally:
        listener.close()


def test_bad_fd_is_one_line() -> None:
    server = spawn(APP, "--fd", "987")
    assert server.wait_exit() != 0
    output = server.output()
    assert "Traceback" not in output
    assert "fd 987" in output


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss to read the listen backlog")
def test_backlog() -> None:
    with serving(APP, "--host", "127.0.0.1", "--port", "0", "--backlog", "17") as server:
        assert listen_backlog(server.port) == 17
        assert httpx.get(server.url).status_code == 200
