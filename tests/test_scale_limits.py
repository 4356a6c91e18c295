"""--limit-request-body and --timeout-request, end to end on both parsers, ASGI and WSGI.

The body limit is 1000 bytes. The request timeout is 1 s, swept every 0.25 s (the sweep stamps a
request's deadline the first time it sees it), so a timeout lands within [0.7, 2.5] s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import PARSERS, Conn, ServerProcess, run_server

APP = "tests.apps.scale_apps:app"
WSGI_APP = "tests.apps.scale_apps:wsgi_app"
LIMIT = 1000
OPTIONS = ("--workers", "1", "--no-access-log", "--limit-request-body", str(LIMIT), "--timeout-request", "1")


@pytest.fixture(scope="module", params=PARSERS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(
        APP, "--http", request.param, *OPTIONS, "--metrics", "--metrics-bind", "127.0.0.1:0"
    ) as process:
        yield process


@pytest.fixture(scope="module", params=PARSERS)
def wsgi_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(WSGI_APP, "--interface", "wsgi", "--http", request.param, *OPTIONS) as process:
        yield process


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def post_head(path: str, framing: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n".encode()


def count(server: ServerProcess, text: str) -> int:
    return server.output().count(text)


# ----------------------------------------------------------------------------------------------------
# --limit-request-body
# ----------------------------------------------------------------------------------------------------


def test_content_length_within_the_limit_is_served(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("POST", "/echo", b"x" * LIMIT)
        assert (response.status, response.body) == (200, b"1000")
        server.wait_for_line("SCALE body complete 1000")


def test_content_length_over_the_limit_is_413_before_the_app_runs(server: ServerProcess) -> None:
    before = count(server, "SCALE body")
    with Conn(server.port) as conn:
        conn.send(post_head("/echo", f"Content-Length: {LIMIT + 1}") + b"x" * (LIMIT + 1))
        response = conn.read_response()
        assert response.status == 413
        assert response.header("connection") == "close"
        assert conn.closed(timeout=3)
    # The app never ran: a following request's line is the next one printed.
    with Conn(server.port) as conn:
        assert conn.request("POST", "/echo", b"abc").status == 200
    server.wait_for_line("SCALE body complete 3")
    assert count(server, "SCALE body") == before + 1, server.output()


def test_chunked_body_within_the_limit_is_served(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(post_head("/echo", "Transfer-Encoding: chunked") + chunked(b"a" * 600, b"b" * 400))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"1000")


def test_chunked_body_passing_the_limit_is_413_and_the_app_sees_a_disconnect(server: ServerProcess) -> None:
    before = count(server, "SCALE body disconnect")
    reading = count(server, "SCALE reading")
    with Conn(server.port) as conn:
        conn.send(post_head("/echo", "Transfer-Encoding: chunked") + b"258\r\n" + b"a" * 600 + b"\r\n")
        server.wait_for_matches("SCALE reading", reading + 1)  # the app waits in receive()
        conn.send(chunked(b"b" * 600))
        response = conn.read_response()
        assert response.status == 413
        assert conn.closed(timeout=3)
    match = server.wait_for_matches(r"SCALE body disconnect (\d+)", before + 1)[-1]
    assert int(match.group(1)) <= LIMIT
    assert "SCALE body complete 600" not in server.output()  # no truncated body that looks whole


def test_chunked_body_passing_the_limit_after_the_response_began_closes(server: ServerProcess) -> None:
    before = count(server, "SCALE body disconnect")
    with Conn(server.port) as conn:
        conn.send(post_head("/early", "Transfer-Encoding: chunked"))
        status, headers = conn.read_head()
        assert status == 200 and ("transfer-encoding", "chunked") in headers
        conn.send(chunked(b"a" * 700, b"b" * 700))
        rest = conn.read_to_close()
        assert not rest.endswith(b"0\r\n\r\n"), "a response cut short must not look complete"
    server.wait_for_matches("SCALE body disconnect", before + 1)
    assert "SCALE body complete 1400" not in server.output()


def test_wsgi_body_limit(wsgi_server: ServerProcess) -> None:
    with Conn(wsgi_server.port) as conn:
        conn.send(post_head("/echo", f"Content-Length: {LIMIT + 1}") + b"x" * (LIMIT + 1))
        assert conn.read_response().status == 413
    reading = count(wsgi_server, "SCALE wsgi reading")
    with Conn(wsgi_server.port) as conn:
        conn.send(post_head("/echo", "Transfer-Encoding: chunked") + b"258\r\n" + b"a" * 600 + b"\r\n")
        wsgi_server.wait_for_matches("SCALE wsgi reading", reading + 1)  # the app reads wsgi.input
        conn.send(chunked(b"b" * 600))
        assert conn.read_response().status == 413
    # The app's read raises (the bridge's ClientDisconnected): never a body that looks complete.
    wsgi_server.wait_for_line(r"SCALE wsgi body error ClientDisconnected \d+")
    with Conn(wsgi_server.port) as conn:
        response = conn.request("POST", "/echo", b"y" * LIMIT)
        assert (response.status, response.body) == (200, b"1000")
    assert "wsgi body complete 1001" not in wsgi_server.output()
    assert "wsgi body complete 1200" not in wsgi_server.output()


# ----------------------------------------------------------------------------------------------------
# --timeout-request
# ----------------------------------------------------------------------------------------------------


def test_request_timeout_answers_504_and_cancels_the_app(server: ServerProcess) -> None:
    url = server.wait_for_line(r"Metrics on (http://\S+/metrics)").group(1)
    with Conn(server.port) as conn:
        started = time.monotonic()
        response = conn.request("GET", "/sleep?s=30")
        elapsed = time.monotonic() - started
        assert response.status == 504
        assert 0.7 <= elapsed <= 2.5, elapsed
        assert response.header("connection") == "close"
        assert conn.closed(timeout=3)
    server.wait_for_line("SCALE sleep cancelled")
    server.wait_for_line(r"Request timeout: GET /sleep did not start its response within 1s")
    text = httpx.get(url, timeout=5).text
    assert "palfrey_request_timeouts_total 1.0" in text, text


def test_a_request_answered_in_time_is_not_timed_out(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        for _ in range(3):
            response = conn.request("GET", "/sleep?s=0.3")
            assert (response.status, response.body) == (200, b"slept")


def test_wsgi_request_timeout_abandons_the_response(wsgi_server: ServerProcess) -> None:
    with Conn(wsgi_server.port) as conn:
        started = time.monotonic()
        response = conn.request("GET", "/sleep?s=2.5")
        assert response.status == 504
        assert 0.7 <= time.monotonic() - started <= 2.4
    # The thread cannot be cancelled: it finishes its call, and its result is discarded.
    wsgi_server.wait_for_line("SCALE wsgi sleep returned", timeout=5)
    with Conn(wsgi_server.port) as conn:
        assert conn.request("GET", "/sleep?s=0").status == 200


def test_body_limit_refusals_are_counted(server: ServerProcess) -> None:
    url = server.wait_for_line(r"Metrics on (http://\S+/metrics)").group(1)
    with Conn(server.port) as conn:
        conn.send(post_head("/echo", f"Content-Length: {LIMIT + 5}"))
        assert conn.read_response().status == 413
    lines = [line for line in httpx.get(url, timeout=5).text.splitlines() if 'status="413"' in line]
    assert lines and 'reason="request_body_over_the_limit"' in lines[0], lines
    assert float(lines[0].rsplit(" ", 1)[1]) >= 1
