"""Timeouts, request-head limits, --limit-concurrency and many idle connections, on both parsers.

Timeouts are set to 1 s; the server sweeps deadlines every 0.25 s, so each expiry is checked to
land within [0.9, 2.5] s. Those waits are the point of the tests; nothing else sleeps.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import HTTP_APP as APP
from tests.support import PARSERS, Conn, ServerProcess, get, run_server

LINE, FIELDS, FIELD_SIZE = 512, 10, 256


@pytest.fixture(scope="module", params=PARSERS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(
        APP,
        "--http",
        request.param,
        "--workers",
        "1",
        "--no-access-log",
        "--timeout-keep-alive",
        "1",
        "--timeout-request-header",
        "1",
        "--timeout-request-body",
        "1",
        "--limit-request-line",
        str(LINE),
        "--limit-request-fields",
        str(FIELDS),
        "--limit-request-field-size",
        str(FIELD_SIZE),
    ) as process:
        yield process


@pytest.fixture(scope="module", params=PARSERS)
def limited_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(
        APP, "--http", request.param, "--workers", "1", "--no-access-log", "--limit-concurrency", "2"
    ) as process:
        yield process


def assert_expires(started: float) -> None:
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= 2.5, f"closed after {elapsed:.2f}s, expected about 1s"


# ----------------------------------------------------------------------------------------------------
# Timeouts
# ----------------------------------------------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        assert conn.request("GET", "/fixed").status == 200
        started = time.monotonic()
        assert conn.closed(timeout=3), "the idle connection was not closed"
        assert_expires(started)


def test_keep_alive_deadline_restarts_with_each_request(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        for _ in range(3):
            assert not conn.closed(timeout=0.45)  # 3 x 0.45 s > the 1 s timeout
            assert conn.request("GET", "/fixed").status == 200


def test_slowloris_head_gets_408_then_close(server: ServerProcess) -> None:
    head = b"GET /fixed HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
    with Conn(server.port) as conn:
        started = time.monotonic()
        for byte in head:  # one byte every 50 ms: never complete in time
            if not conn.quiet(0.05):
                break
            conn.send(bytes([byte]))
        response = conn.read_response()
        assert response.status == 408
        assert response.header("connection") == "close"
        assert conn.closed()
        assert_expires(started)


def test_connection_that_sends_nothing_is_closed_without_a_response(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        started = time.monotonic()
        assert conn.closed(timeout=3)
        assert_expires(started)


def test_body_that_stops_arriving_gets_408(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part of it")
        started = time.monotonic()
        response = conn.read_response()
        assert response.status == 408
        assert conn.closed()
        assert_expires(started)
    server.wait_for_line("Request body not received in time")


def test_slow_but_steady_body_is_not_cut(server: ServerProcess) -> None:
    """The body deadline restarts with each piece: 1.5 s in total, but never 1 s without data."""
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n")
        for byte in b"abcdef":
            assert conn.quiet(0.25)
            conn.send(bytes([byte]))
        assert conn.read_response().json()["body"] == "abcdef"


# ----------------------------------------------------------------------------------------------------
# Request-head limits: one write and byte by byte
# ----------------------------------------------------------------------------------------------------


def request_line(length: int) -> bytes:
    """A request line of exactly `length` bytes, without its CRLF."""
    return b"GET /echo?" + b"q" * (length - len(b"GET /echo? HTTP/1.1")) + b" HTTP/1.1"


def fields(count: int) -> bytes:
    return b"Host: t\r\n" + b"".join(b"X-F%d: %d\r\n" % (i, i) for i in range(1, count))


def field_line(length: int) -> bytes:
    return b"X-Big: " + b"b" * (length - len(b"X-Big: "))


CASES = {
    "request_line_at_limit": (request_line(LINE) + b"\r\nHost: t\r\n\r\n", 200),
    "request_line_over_limit": (request_line(LINE + 1) + b"\r\nHost: t\r\n\r\n", 414),
    "fields_at_limit": (b"GET /echo HTTP/1.1\r\n" + fields(FIELDS) + b"\r\n", 200),
    "fields_over_limit": (b"GET /echo HTTP/1.1\r\n" + fields(FIELDS + 1) + b"\r\n", 431),
    "field_at_limit": (b"GET /echo HTTP/1.1\r\nHost: t\r\n" + field_line(FIELD_SIZE) + b"\r\n\r\n", 200),
    "field_over_limit": (
        b"GET /echo HTTP/1.1\r\nHost: t\r\n" + field_line(FIELD_SIZE + 1) + b"\r\n\r\n",
        431,
    ),
    "endless_request_line": (b"GET /" + b"a" * 50 * LINE, 414),
    "endless_field": (b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 50 * FIELD_SIZE, 431),
    "endless_fields": (b"GET /echo HTTP/1.1\r\n" + fields(50 * FIELDS), 431),
}


@pytest.mark.parametrize("step", [None, 1], ids=["one_write", "byte_by_byte"])
@pytest.mark.parametrize("case", list(CASES))
def test_head_limits(server: ServerProcess, case: str, step: int | None) -> None:
    data, status = CASES[case]
    with Conn(server.port) as conn:
        if step is None:
            try:
                conn.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            conn.trickle(data, step)
        response = conn.read_response()
        assert response.status == status, response.body
        if status == 200:
            assert conn.request("GET", "/fixed").status == 200
        else:
            assert response.header("connection") == "close"
            assert conn.closed()


# ----------------------------------------------------------------------------------------------------
# Concurrency limit and idle connections
# ----------------------------------------------------------------------------------------------------


def test_limit_concurrency_answers_503_beyond_the_limit(limited_server: ServerProcess) -> None:
    port = limited_server.port
    with Conn(port) as first, Conn(port) as second:
        first.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        second.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert first.quiet(0.1) and second.quiet(0.1)
        with Conn(port) as third:
            response = third.request("GET", "/fixed")
            assert response.status == 503
            assert response.header("connection") == "close"
            assert third.closed()
        first.sock.close()  # its request ends with http.disconnect: one slot frees up
        deadline = time.monotonic() + 5
        while (status := get(port, "/event/set?name=release-hold").status) == 503:
            assert time.monotonic() < deadline, "the limit did not free up after a client left"
            time.sleep(0.01)
        assert status == 200
        assert second.read_response().body == b"held"


def test_many_idle_connections_do_not_delay_a_request(server: ServerProcess) -> None:
    idle = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            idle.append(sock)
        started = time.monotonic()
        with Conn(server.port) as conn:
            for _ in range(3):
                assert conn.request("GET", "/fixed").status == 200
        assert time.monotonic() - started < 2.0
        # The idle ones hit the header deadline together: all closed by one sweep, silently.
        for sock in idle:
            sock.settimeout(3)
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
