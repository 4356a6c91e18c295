"""Stopping a single-process server: graceful TERM (in-flight requests finish, idle keep-alive
connections close at once, busy ones are answered with Connection: close, the listener is closed),
--timeout-graceful-shutdown, a second INT / QUIT, and lifespan shutdown."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support import read_response, read_until_close, run_server

APP = "tests.apps.server_apps:app"


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: palfrey\r\n\r\n".encode()


def test_term_lets_in_flight_request_finish_and_closes_idle_connections_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.txt"
    with run_server(APP, "--timeout-keep-alive", "60", env={"APP_SHUTDOWN_FILE": str(marker)}) as server:
        idle = connect(server.port)
        idle.sendall(get("/warm"))
        status, headers, _ = read_response(idle)
        assert status == 200 and "close" not in headers.get("connection", "")
        busy = connect(server.port)
        busy.sendall(get("/sleep?seconds=2"))
        server.wait_for_line("app: sleeping")

        server.signal(signal.SIGTERM)
        term_sent = time.monotonic()
        server.wait_for_line("Shutting down")
        # The idle keep-alive connection is closed now, not after the 60 s keep-alive timeout...
        assert read_until_close(idle, timeout=1.5) == b""
        assert time.monotonic() - term_sent < 1.5
        assert server.proc.poll() is None, "...while the in-flight request keeps the server alive"
        # ...and nobody new gets in.
        with pytest.raises(ConnectionRefusedError):
            connect(server.port).close()

        status, headers, body = read_response(busy, timeout=5)
        assert (status, body) == (200, b"slept")
        assert headers["connection"] == "close"
        assert read_until_close(busy) == b""
        assert server.wait_exit() == 0
        assert time.monotonic() - term_sent >= 1.5, "the 2 s request was not cut short"
        idle.close()
        busy.close()
    assert marker.read_text() == "shutdown"
    output = server.output()
    assert '"GET /sleep?seconds=2 HTTP/1.1" 200' in output
    assert output.index("Application shutdown complete.") < output.index("Finished server process")


def test_request_arriving_on_busy_connection_during_shutdown() -> None:
    with run_server(APP) as server:
        busy = connect(server.port)
        busy.sendall(get("/sleep?seconds=1"))
        server.wait_for_line("app: sleeping")
        server.signal(signal.SIGTERM)
        server.wait_for_line("Shutting down")
        busy.sendall(get("/arrived-late"))  # pipelined behind the in-flight request
        status, headers, body = read_response(busy, timeout=5)
        assert (status, body, headers["connection"]) == (200, b"slept", "close")
        assert read_until_close(busy) == b"", "the late request is not answered: the client may retry it"
        busy.close()
        assert server.wait_exit() == 0
    assert "/arrived-late" not in server.output()


def test_connection_with_a_partial_request_head_is_closed_on_shutdown() -> None:
    with run_server(APP) as server:
        partial = connect(server.port)
        partial.sendall(b"GET /half HTTP/1.1\r\nHost: pal")
        response = httpx.get(server.url + "/sync")  # the partial head has surely been read by now
        assert response.status_code == 200
        server.signal(signal.SIGTERM)
        assert read_until_close(partial, timeout=2) == b""
        partial.close()
        assert server.wait_exit() == 0


def test_graceful_timeout_bounds_a_request_that_never_finishes() -> None:
    with run_server(APP, "--timeout-graceful-shutdown", "1") as server:
        hanging = connect(server.port)
        hanging.sendall(get("/hang"))
        server.wait_for_line("app: hanging")
        server.signal(signal.SIGTERM)
        term_sent = time.monotonic()
        assert server.wait_exit() == 0
        elapsed = time.monotonic() - term_sent
        assert 0.9 <= elapsed < 3, elapsed
        assert b"200" not in read_until_close(hanging, timeout=2)
        hanging.close()
    output = server.output()
    assert "Graceful shutdown timed out after 1s" in output
    assert "Application shutdown complete." in output


@pytest.mark.parametrize(
    "signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGQUIT,)], ids=["INT-INT", "QUIT"]
)
def test_forced_exit_is_immediate(signals: tuple[signal.Signals, ...]) -> None:
    with run_server(APP) as server:  # the default graceful timeout is 30 s
        hanging = connect(server.port)
        hanging.sendall(get("/hang"))
        server.wait_for_line("app: hanging")
        if len(signals) == 2:
            server.signal(signals[0])
            server.wait_for_line("Shutting down")
            assert server.proc.poll() is None
        sent = time.monotonic()
        server.signal(signals[-1])
        server.wait_exit(timeout=5)
        assert time.monotonic() - sent < 1.5
        hanging.close()
    output = server.output()
    assert "Finished server process" in output
    assert "Application shutdown" not in output, "a forced exit skips lifespan shutdown..."
    assert "Traceback" not in output, "...quietly"


def test_a_connection_accepted_just_before_shutdown_still_gets_its_first_request_answered() -> None:
    # The client connected (the kernel accepted it) but its request is not there yet when TERM
    # arrives: resetting it would lose that request. It gets a short grace and a Connection: close.
    with run_server(APP) as server:
        fresh = connect(server.port)
        busy = connect(server.port)
        busy.sendall(get("/sleep?seconds=2"))
        server.wait_for_line("app: sleeping")  # keeps the server in its graceful phase
        assert httpx.get(server.url + "/sync").status_code == 200  # `fresh` has surely been accepted
        server.signal(signal.SIGTERM)
        server.wait_for_line("Shutting down")
        fresh.sendall(get("/late"))
        status, headers, _ = read_response(fresh)
        assert status == 200
        assert headers["connection"] == "close"
        assert read_until_close(fresh, timeout=3) == b""
        assert read_response(busy)[0] == 200
        fresh.close()
        busy.close()
        assert server.wait_exit() == 0
