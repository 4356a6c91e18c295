"""WSGI under load and misbehaving clients: streaming with back-pressure both ways, close() on
disconnect, bounded memory for a 100 MB upload, and the thread pool (bounded, never blocking the loop).

Nothing here measures time: blocked requests wait on a FIFO the test opens when it wants them to go on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import (
    GUNICORN_WORKERS,
    ROOT,
    ServerProcess,
    raw_request,
    read_response,
    run_gunicorn,
    run_server,
    stop,
)

APP = "tests.apps.wsgi_apps:app"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--interface", "wsgi") as server:
        yield server


def fifo(tmp_path: Path, name: str = "gate") -> str:
    path = str(tmp_path / name)
    os.mkfifo(path)
    return path


def release(path: str) -> None:
    """Let the app waiting on the FIFO at `path` go on: opening it for writing completes once the app
    has it open for reading (so it may be called before the app gets there)."""
    opener = threading.Thread(target=lambda: os.close(os.open(path, os.O_WRONLY)), daemon=True)
    opener.start()
    opener.join(timeout=10)
    assert not opener.is_alive(), f"no app opened {path}"


def send_get(port: int, target: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def stats(server: ServerProcess, reset: bool = False) -> dict[str, int]:
    return httpx.get(f"{server.url}/stats{'?reset=1' if reset else ''}", timeout=10).json()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# Response streaming


def test_chunks_go_out_as_the_iterable_produces_them(server: ServerProcess, tmp_path: Path) -> None:
    gate = fifo(tmp_path)
    with send_get(server.port, f"/gate?fifo={gate}") as sock:
        received = b""
        while b"first\n" not in received:  # arrives while the app is still blocked before "second"
            received += sock.recv(65536)
        release(gate)
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    assert b"second\n" in received


def test_slow_client_back_pressure_bounds_what_the_app_produces(server: ServerProcess) -> None:
    """A client that reads slowly holds the app back: the app is never more than a few MB (window,
    transport and socket buffers) ahead of what the client received, however large the response."""
    stats(server, reset=True)
    total = 64 * MB
    bound = 24 * MB  # without back-pressure the whole 64 MB would be produced at once
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(b"GET /stream?chunks=1024&size=65536&tag=slow HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        next_check = 0
        while received < total:
            if received >= next_check:
                produced = stats(server)["produced"]
                assert produced - received < bound, (produced, received)
                next_check += 4 * MB
            data = sock.recv(65536)
            assert data
            received += len(data)
    server.wait_for_line("app: closed slow")
    assert stats(server)["produced"] == total


def test_close_is_called_when_the_client_disconnects_mid_response(server: ServerProcess) -> None:
    sock = send_get(server.port, "/stream?chunks=1000000&size=65536&tag=gone")
    received = 0
    while received < MB:
        received += len(sock.recv(65536))
    sock.close()  # the thread is blocked on back-pressure: it must be released and close() called
    server.wait_for_line("app: closed gone")
    assert httpx.get(f"{server.url}/no-read", timeout=10).text == "did not read"


def test_client_gone_during_upload_stops_the_app_quietly(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"y" * 300000)
    server.wait_for_line("app: upload interrupted: ClientDisconnected")
    assert httpx.get(f"{server.url}/no-read", timeout=10).status_code == 200
    assert "Traceback" not in server.output().split("upload interrupted")[-1]


# Request body streaming


def test_100mb_upload_is_streamed_in_bounded_memory(server: ServerProcess) -> None:
    pid = server.proc.pid
    httpx.post(f"{server.url}/upload", content=b"w" * MB, timeout=10)  # warm up
    before = peak_rss_kib(pid)
    block = bytes(range(256)) * 4096  # 1 MiB
    size = 100 * MB
    crc = 0
    for _ in range(100):
        crc = zlib.crc32(block, crc)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        for _ in range(100):
            sock.sendall(block)
        status, _, body = read_response(sock, timeout=30)
    assert status == 200
    assert json.loads(body) == {"length": size, "crc": crc}
    grown_mb = (peak_rss_kib(pid) - before) / 1024
    assert grown_mb < 40, f"peak RSS grew by {grown_mb:.0f} MB while reading a 100 MB upload"


# The thread pool


def test_a_blocked_app_does_not_block_other_requests(server: ServerProcess, tmp_path: Path) -> None:
    gate = fifo(tmp_path)
    with send_get(server.port, f"/block?fifo={gate}&tag=one") as blocked:
        server.wait_for_line("app: blocking one")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(5):
                assert client.get("/no-read").status_code == 200
        release(gate)
        status, _, body = read_response(blocked)
    assert (status, body) == (200, b"released")


def test_sleeping_requests_run_concurrently(server: ServerProcess) -> None:
    """Four requests to an app that sleeps 0.2 s, sent together, are in the app at the same time."""
    stats(server, reset=True)
    socks = [send_get(server.port, "/sleep?seconds=0.2") for _ in range(4)]
    for sock in socks:
        with sock:
            assert read_response(sock)[2] == b"slept"
    assert stats(server)["max_active"] >= 2


def test_threads_bound_concurrency_and_extra_requests_wait() -> None:
    with run_server(APP, "--threads", "2") as server:
        socks = [send_get(server.port, "/sleep?seconds=0.05") for _ in range(6)]
        for sock in socks:
            with sock:
                assert read_response(sock)[:1] == (200,)
        assert stats(server)["max_active"] == 2


def test_loop_stays_responsive_while_the_pool_is_busy(tmp_path: Path) -> None:
    gate = fifo(tmp_path)
    with run_server(APP, "--threads", "1") as server:
        blocked = send_get(server.port, f"/block?fifo={gate}&tag=busy")
        server.wait_for_line("app: blocking busy")
        queued = send_get(server.port, "/no-read")  # accepted; waits for the one thread
        # The event loop still answers what needs no app: a malformed request gets its 400 now.
        bad = b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"
        assert raw_request(server.port, bad).startswith(b"HTTP/1.1 400 ")
        release(gate)
        with blocked, queued:
            assert read_response(blocked)[2] == b"released"
            assert read_response(queued)[2] == b"did not read"


# Entry points


@contextmanager
def run_python(code: str) -> Iterator[ServerProcess]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WEB_CONCURRENCY", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env
    )
    server = ServerProcess(proc)
    try:
        match = server.wait_for_line(r"Palfrey running on (\S+)", timeout=15)
        server.url = match.group(1)
        server.port = int(server.url.rsplit(":", 1)[1])
        yield server
    finally:
        stop(server)


def test_palfrey_run_with_interface_wsgi() -> None:
    code = (
        "import palfrey\n"
        "from tests.apps.wsgi_apps import app\n"
        "palfrey.run(app, interface='wsgi', port=0, threads=3)\n"
    )
    with run_python(code) as server:
        env = httpx.get(f"{server.url}/environ", timeout=10).json()
    assert env["wsgi.multithread"] is True
    assert env["REQUEST_METHOD"] == "GET"


def test_prefork_master_workers_serve_wsgi() -> None:
    with run_server(APP, "--workers", "2") as server, httpx.Client(base_url=server.url, timeout=10) as client:
        server.wait_for_line("All 2 workers ready")
        env = client.get("/environ").json()
        assert env["wsgi.multiprocess"] is True
        upload = client.post("/upload", content=b"z" * (3 * MB)).json()
        assert upload["length"] == 3 * MB


def test_gunicorn_worker_classes_serve_wsgi() -> None:
    pytest.importorskip("gunicorn")
    for worker in GUNICORN_WORKERS:
        with run_gunicorn(app=APP, worker=worker, workers=1) as server:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.get("/environ").json()["REQUEST_METHOD"] == "GET"
                assert client.post("/upload", content=b"g" * (2 * MB)).json()["length"] == 2 * MB
                assert client.get("/stream?chunks=8&size=1000&tag=gunicorn").content == b"x" * 8000
            sock = send_get(server.port, "/stream?chunks=1000000&size=65536&tag=gunicorn-gone")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.close()
            server.wait_for_line("app: closed gunicorn-gone")


def test_server_stops_while_a_request_is_stuck_in_the_app(tmp_path: Path) -> None:
    """Graceful shutdown gives up on a request stuck in a thread after its timeout; the process exits."""
    gate = fifo(tmp_path)
    with run_server(APP, "--timeout-graceful-shutdown", "0.5") as server:
        sock = send_get(server.port, f"/block?fifo={gate}&tag=stuck")
        server.wait_for_line("app: blocking stuck")
        server.signal(15)
        assert server.wait_exit(timeout=10) == 0
        sock.close()
    assert "Finished server process" in server.output()


def test_one_thread_per_request_in_flight_only() -> None:
    """Threads start on demand: an idle server holds none beyond the main one."""
    with run_server(APP) as server:
        count = len(os.listdir(f"/proc/{server.proc.pid}/task"))
        httpx.get(f"{server.url}/no-read", timeout=10)
        after = len(os.listdir(f"/proc/{server.proc.pid}/task"))
    assert after - count == 1
