"""Slow clients have a floor (issue 12), and --limit-concurrency counts work, not idle sockets:
end to end on both parsers with raw sockets.

- A body trickled below --limit-request-body-rate (after its grace) is cut with 408, although
  every piece arrives well within --timeout-request-body of the one before.
- A client that stops reading a large streamed response is aborted after --timeout-send; the app's
  send() returns (later sends are dropped) and the server keeps serving others.
- Idle keep-alive connections beyond --limit-concurrency do not cause 503s; requests in flight do.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import HTTP_APP as APP
from tests.support import PARSERS, Conn, ServerProcess, get, run_server, wait_event

MiB = 1024 * 1024


@pytest.fixture(scope="module", params=PARSERS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(
        APP,
        "--http",
        request.param,
        "--workers",
        "1",
        "--no-access-log",
        "--timeout-request-body",
        "5",
        "--limit-request-body-rate",
        "100",
        "--limit-request-body-rate-grace",
        "1",
        "--timeout-send",
        "1",
        "--limit-concurrency",
        "2",
    ) as process:
        yield process


def test_a_trickled_body_is_cut_at_the_rate_floor(server: ServerProcess) -> None:
    """8 bytes/s against a floor of 100 bytes/s after 1 s: 408 after about 1 s (plus the 0.25 s
    sweep), never the 5 s gap deadline."""
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 4 and conn.quiet(0.25):
            conn.send(b"ab")
        response = conn.read_response()
        elapsed = time.monotonic() - started
    assert response.status == 408
    assert 0.9 <= elapsed <= 3.0, f"cut after {elapsed:.2f}s, expected about 1.1s"
    server.wait_for_line(r"Request body arriving too slowly")


def test_a_steady_body_above_the_floor_is_served(server: ServerProcess) -> None:
    """4 KiB in 40 pieces over 2 s (about 2 KiB/s) passes the 100 bytes/s floor."""
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n")
        for _ in range(40):
            assert conn.quiet(0.05)
            conn.send(b"z" * 102)
        conn.send(b"z" * (4096 - 40 * 102))
        response = conn.read_response()
    assert response.status == 200 and response.json()["body"] == "z" * 4096


def test_a_client_that_stops_reading_is_aborted_after_the_send_timeout(server: ServerProcess) -> None:
    total = 256 * MiB
    with Conn(server.port, timeout=10, rcvbuf=65536) as conn:
        conn.send(b"GET /big-stream?total=%d HTTP/1.1\r\nHost: t\r\n\r\n" % total)
        wait_event(server.port, "big-stream-blocked")
        started = time.monotonic()
        server.wait_for_line(r"Client did not read the response for 1s; aborting the connection", timeout=5)
        assert time.monotonic() - started < 3
        # The app's send() returned and its later sends were dropped: it finished.
        deadline = time.monotonic() + 5
        while not get(server.port, "/big-stream/progress").json()["done"]:
            assert time.monotonic() < deadline, "the app stayed blocked in send() after the abort"
            time.sleep(0.05)
        received = 0
        try:
            while chunk := conn.sock.recv(MiB):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < total
    assert get(server.port, "/fixed").status == 200  # the server keeps serving


def test_idle_keep_alive_connections_do_not_count_against_the_limit(server: ServerProcess) -> None:
    """Ten idle keep-alive connections with --limit-concurrency 2: a request still gets 200."""
    idle = [Conn(server.port) for _ in range(10)]
    try:
        for conn in idle:  # each served one request and now sits idle, kept alive
            assert conn.request("GET", "/fixed").status == 200
        assert get(server.port, "/fixed").status == 200
        assert idle[0].request("GET", "/fixed").status == 200
    finally:
        for conn in idle:
            conn.sock.close()


def test_requests_in_flight_beyond_the_limit_get_503(server: ServerProcess) -> None:
    """Two held requests fill --limit-concurrency 2: the third concurrent one gets 503."""
    port = server.port
    with Conn(port) as first, Conn(port) as second, Conn(port) as idle:
        assert idle.request("GET", "/fixed").status == 200  # idle from now on: does not count
        first.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        second.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert first.quiet(0.1) and second.quiet(0.1)
        assert idle.request("GET", "/fixed").status == 503
        first.sock.close()
        second.sock.shutdown(socket.SHUT_WR)  # both holds end with http.disconnect
        deadline = time.monotonic() + 5
        while (status := get(port, "/fixed").status) == 503:
            assert time.monotonic() < deadline, "the limit did not free up"
            time.sleep(0.01)
        assert status == 200
