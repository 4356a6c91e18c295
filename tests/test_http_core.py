"""HTTP/1.1 core end to end, on both parsers: framing, keep-alive, pipelining, response encoding,
errors from the app, default headers, the ASGI scope.

One palfrey process per parser (module-scoped, the `http_server` fixture of conftest.py) runs
``tests/apps/http_apps.py``; tests route on the path with the raw client of tests/support.py (`Conn`).
"""

from __future__ import annotations

import calendar
import select
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import HTTP_APP as APP
from tests.support import (  # noqa: F401  (Closed, Response, clear_event: re-exported for older imports)
    PARSERS,
    Closed,
    Conn,
    Response,
    ServerProcess,
    clear_event,
    get,
    run_server,
    set_event,
    wait_event,
)

TIMEOUT = 5.0  # bound on every socket wait


# ----------------------------------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(http_server: ServerProcess) -> ServerProcess:
    """This module's name for conftest's `http_server` (one process per parser)."""
    return http_server


@pytest.fixture(scope="module", params=PARSERS)
def options_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(
        APP,
        "--http",
        request.param,
        "--workers",
        "1",
        "--root-path",
        "/api",
        "--no-server-header",
        "--no-date-header",
        "--no-access-log",
    ) as process:
        yield process


# ----------------------------------------------------------------------------------------------------
# Keep-alive and pipelining
# ----------------------------------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        for i in range(5):
            response = conn.request("GET", f"/echo?i={i}")
            assert response.status == 200
            assert response.json()["query_string"] == f"i={i}"
            assert response.header("connection") is None
        response = conn.request("POST", "/echo", b"body on the same connection")
        assert response.json()["body"] == "body on the same connection"
        assert not conn.closed(timeout=0.05)


def test_keep_alive_with_httpx(server: ServerProcess) -> None:
    ports = set()
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for i in range(5):
            response = client.post("/echo", content=b"x" * i)
            assert response.status_code == 200
            ports.add(tuple(response.json()["client"]))
    assert len(ports) == 1, "httpx should have reused one connection"


def test_pipelined_requests_in_one_write_are_answered_in_order(server: ServerProcess) -> None:
    requests = (
        b"GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /echo?n=3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        b"GET /stream?n=2&size=3 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"HEAD /fixed HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo?n=6 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
    )
    with Conn(server.port) as conn:
        conn.send(requests)
        first = conn.read_response().json()
        second = conn.read_response().json()
        third = conn.read_response().json()
        stream = conn.read_response()
        head = conn.read_response(head=True)
        last = conn.read_response().json()
        assert (first["query_string"], first["body"]) == ("n=1", "")
        assert (second["query_string"], second["body"]) == ("n=2", "hello")
        assert (third["query_string"], third["body"]) == ("n=3", "abcde")
        assert stream.body == b"aaabbb"
        assert head.status == 200 and head.header("content-length") == "10"
        assert (last["query_string"], last["body"]) == ("n=6", "xyz")
        assert conn.request("GET", "/echo?after").status == 200


def test_pipelined_requests_sent_byte_by_byte(server: ServerProcess) -> None:
    requests = (
        b"POST /echo?n=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
        b"GET /echo?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    with Conn(server.port) as conn:
        for byte in requests:
            conn.send(bytes([byte]))
        assert conn.read_response().json()["body"] == "a"
        assert conn.read_response().json()["query_string"] == "n=2"


# ----------------------------------------------------------------------------------------------------
# Request bodies
# ----------------------------------------------------------------------------------------------------

TAB_CHUNKED = b"POST /echo?n=%d HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\t\r\n\r\n"


@pytest.mark.parametrize("step", [None, 1, 7], ids=["one_write", "byte_by_byte", "sliced"])
def test_chunked_followed_by_tab_then_pipelined_request(server: ServerProcess, step: int | None) -> None:
    """`chunked<TAB>` is plain chunked (OWS); llhttp does not see it, so palfrey decodes that body
    itself and hands what follows to a fresh llhttp parser: framing must stay exact."""
    data = (
        TAB_CHUNKED % 1
        + b"5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n"
        + TAB_CHUNKED % 2
        + b"3\r\nabc\r\n0\r\n\r\n"
        + b"GET /echo?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    with Conn(server.port) as conn:
        if step is None:
            conn.send(data)
        else:
            for start in range(0, len(data), step):
                conn.send(data[start : start + step])
        bodies = [conn.read_response().json() for _ in range(3)]
        assert [(b["query_string"], b["body"]) for b in bodies] == [
            ("n=1", "hello"),
            ("n=2", "abc"),
            ("n=3", ""),
        ]
        assert conn.request("GET", "/fixed").status == 200


def test_bad_chunk_after_tab_chunked_is_rejected(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(TAB_CHUNKED % 1 + b"5 \r\nhello\r\n0\r\n\r\n")
        assert conn.read_response().status == 400
        assert conn.closed()


def test_content_length_body_is_streamed_to_the_app_in_pieces(server: ServerProcess) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    with Conn(server.port) as conn:
        echo = conn.request("POST", "/echo", body).json()
    assert echo["body"].encode("latin-1") == body
    assert len(echo["body_messages"]) > 1, "the body should reach the app in several messages"
    assert sum(echo["body_messages"]) == len(body)


def test_chunked_body_is_streamed_to_the_app_in_pieces(server: ServerProcess) -> None:
    piece = bytes(range(256)) * 64  # 16 KiB
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(64))
    with Conn(server.port) as conn:
        conn.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        )
        echo = conn.read_response().json()
    assert echo["body"].encode("latin-1") == piece * 64
    assert len(echo["body_messages"]) > 1
    assert sum(echo["body_messages"]) == len(piece) * 64


def test_body_sent_in_separate_writes(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        assert conn.quiet(0.05)
        conn.send(b"56789")
        assert conn.read_response().json()["body"] == "0123456789"


# ----------------------------------------------------------------------------------------------------
# Response framing
# ----------------------------------------------------------------------------------------------------


def test_head_has_no_body_but_keeps_the_apps_content_length(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        head = conn.request("HEAD", "/fixed")
        assert head.status == 200
        assert head.header("content-length") == "10"
        # An app that sends a body to HEAD without a length: the length is reported, no body sent.
        head = conn.request("HEAD", "/status?code=200&body=hello")
        assert head.header("content-length") == "5"
        head = conn.request("HEAD", "/stream?n=2&size=4")
        assert head.header("transfer-encoding") is None
        # Nothing of those bodies is on the wire: the next response starts right away.
        assert conn.request("GET", "/fixed").body == b"0123456789"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(server: ServerProcess, code: int) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", f"/status?code={code}&body=should-not-be-sent")
        assert response.status == code
        assert response.header("transfer-encoding") is None
        assert response.header("content-length") in (None, "0")
        assert conn.request("GET", "/fixed").body == b"0123456789"


def test_informational_status_as_final_response_has_no_body(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /status?code=103&body=nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = conn.read_to_close()
    assert raw.startswith(b"HTTP/1.1 103 ")
    assert raw.endswith(b"\r\n\r\n") and b"nope" not in raw


def test_streamed_response_without_length_is_chunked(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/stream?n=3&size=5")
        assert response.header("transfer-encoding") == "chunked"
        assert response.header("content-length") is None
        assert response.chunks == [5, 5, 5]
        assert response.body == b"aaaaabbbbbccccc"
        assert conn.request("GET", "/fixed").status == 200


def test_content_length_added_for_a_single_body_message(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/status?code=200&body=hello")
        assert response.all("content-length") == ["5"]
        assert response.header("transfer-encoding") is None
        assert response.body == b"hello"
        empty = conn.request("GET", "/status?code=200")
        assert empty.all("content-length") == ["0"] and empty.body == b""


def test_small_response_is_one_write(server: ServerProcess) -> None:
    """Head and body of a small response arrive together (one transport.write, TCP_NODELAY)."""
    with Conn(server.port) as conn:
        conn.send(b"GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n")
        assert select.select([conn.sock], [], [], TIMEOUT)[0]
        first = conn.sock.recv(65536)
    assert first.endswith(b"\r\n\r\n0123456789")


def test_response_longer_than_content_length_closes_and_logs(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /too-long HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers = conn.read_head()
        assert status == 200 and ("content-length", "5") in headers
        assert len(conn.read_to_close()) <= 5
    server.wait_for_line("Response content longer than Content-Length")
    assert get(server.port, "/fixed").status == 200


def test_response_shorter_than_content_length_closes_and_logs(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /too-short HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers = conn.read_head()
        assert status == 200 and ("content-length", "10") in headers
        assert conn.read_to_close() == b"01234"
    server.wait_for_line(r"Response content shorter than Content-Length \(5 of 10 bytes\)")


# ----------------------------------------------------------------------------------------------------
# HTTP/1.0 and Connection: close
# ----------------------------------------------------------------------------------------------------


def test_http10_closes_by_default(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /echo HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.json()["http_version"] == "1.0"
        assert response.header("connection") == "close"
        assert conn.closed()


def test_http10_keep_alive_is_honoured(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        for _ in range(2):
            conn.send(b"GET /fixed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = conn.read_response()
            assert response.body == b"0123456789"
            assert response.header("connection") == "keep-alive"
        assert not conn.closed(timeout=0.05)


def test_http10_streamed_response_is_close_delimited(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /stream?n=3&size=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = conn.read_response()
        assert response.header("transfer-encoding") is None
        assert response.header("content-length") is None
        assert response.header("connection") == "close"
        assert response.body == b"aabbcc"


def test_connection_close_from_the_client(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/fixed", headers="Connection: close\r\n")
        assert response.header("connection") == "close"
        assert response.body == b"0123456789"
        assert conn.closed()


def test_connection_close_request_ends_a_pipeline(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(
            b"GET /echo?n=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            b"GET /echo?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = conn.read_response()
        assert response.json()["query_string"] == "n=1"
        assert response.header("connection") == "close"
        assert conn.closed(), "requests after Connection: close are not answered"


def test_http10_expect_100_continue_is_ignored(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
        response = conn.read_response()
        assert response.interim == [] and response.json()["body"] == "hi"


def test_connection_close_from_the_app(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/status?code=200&body=bye&close=1")
        assert response.all("connection") == ["close"]
        assert response.body == b"bye"
        assert conn.closed()


# ----------------------------------------------------------------------------------------------------
# Default headers
# ----------------------------------------------------------------------------------------------------


def test_server_date_and_custom_headers(server: ServerProcess) -> None:
    response = get(server.port, "/fixed")
    assert response.all("server") == ["palfrey"]
    (date,) = response.all("date")
    sent = calendar.timegm(time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT"))
    assert abs(sent - time.time()) < 5
    assert response.all("x-a") == ["b"]
    assert response.all("x-b") == ["c d"]


def test_app_server_and_date_headers_are_not_duplicated(server: ServerProcess) -> None:
    response = get(server.port, "/own-headers")
    assert response.all("server") == ["my-server"]
    assert response.all("date") == ["Thu, 01 Jan 1970 00:00:00 GMT"]
    assert response.all("x-a") == ["b"]


def test_no_server_and_no_date_header(options_server: ServerProcess) -> None:
    response = get(options_server.port, "/fixed")
    assert response.status == 200
    assert response.header("server") is None
    assert response.header("date") is None


# ----------------------------------------------------------------------------------------------------
# App errors
# ----------------------------------------------------------------------------------------------------


def test_exception_before_the_response_is_a_500(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/raise-before")
        assert response.status == 500
        assert response.header("connection") == "close"
        assert conn.closed()
    server.wait_for_line("RuntimeError: boom before the response")
    assert "Exception in ASGI application" in server.output()
    assert get(server.port, "/fixed").status == 200  # the worker keeps serving


def test_exception_after_the_response_started_closes_the_connection(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"GET /raise-after HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers = conn.read_head()
        assert status == 200 and ("transfer-encoding", "chunked") in headers
        rest = conn.read_to_close()
        assert rest == b"7\r\npartial\r\n", "no terminating chunk: the client sees a broken response"
    server.wait_for_line("RuntimeError: boom after the response started")
    assert get(server.port, "/fixed").status == 200


@pytest.mark.parametrize("route", ["/no-response", "/no-body-message"])
def test_app_returning_without_a_response_is_a_500(server: ServerProcess, route: str) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", route)
        assert response.status == 500
        assert conn.closed()
    server.wait_for_line("ASGI callable returned without (starting|completing) response")
    assert get(server.port, "/fixed").status == 200


# ----------------------------------------------------------------------------------------------------
# The scope
# ----------------------------------------------------------------------------------------------------


def test_scope(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(
            b"PATCH /echo/caf%C3%A9/a%2Fb%20c?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n"
            b"X-Mixed-Case: Value With Case\r\nx-dup: 1\r\nX-Dup: 2\r\nContent-Length: 2\r\n\r\nhi"
        )
        echo = conn.read_response().json()
        local = conn.local_port
    assert echo["type"] == "http"
    assert echo["asgi"]["version"] == "3.0"
    assert echo["asgi"]["spec_version"] in ("2.3", "2.4")
    assert echo["http_version"] == "1.1"
    assert echo["method"] == "PATCH"
    assert echo["scheme"] == "http"
    assert echo["path"] == "/echo/café/a/b c"
    assert echo["raw_path"] == "/echo/caf%C3%A9/a%2Fb%20c"
    assert echo["query_string"] == "x=1&y=%20"
    assert echo["root_path"] == ""
    assert echo["headers"] == [
        ["host", "example.com"],
        ["x-mixed-case", "Value With Case"],
        ["x-dup", "1"],
        ["x-dup", "2"],
        ["content-length", "2"],
    ]
    assert echo["client"] == ["127.0.0.1", local]
    assert echo["server"] == ["127.0.0.1", server.port]
    assert echo["body"] == "hi"


def test_root_path_prefixes_path_and_raw_path(options_server: ServerProcess) -> None:
    echo = get(options_server.port, "/echo/x%20y?q=1").json()
    assert echo["root_path"] == "/api"
    assert echo["path"] == "/api/echo/x y"
    assert echo["raw_path"] == "/api/echo/x%20y"
    assert echo["query_string"] == "q=1"


def test_state_is_a_shallow_copy_per_request(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        for _ in range(2):
            seen = conn.request("GET", "/state").json()
            assert seen == {"greeting": "hello", "items": ["lifespan"]}


# ----------------------------------------------------------------------------------------------------
# Upgrade requests to a protocol palfrey does not speak (WebSockets: tests/test_websocket*.py)
# ----------------------------------------------------------------------------------------------------


def test_upgrade_palfrey_does_not_take_is_served_as_plain_http_on_a_usable_connection(
    server: ServerProcess,
) -> None:
    """`Upgrade: h2c` (JDK HttpClient sends it on ordinary requests) is ignored (RFC 9110 §7.8): the
    request is answered in HTTP/1.1 without `Connection: close` and the next request is answered too."""
    with Conn(server.port) as conn:
        conn.send(
            b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
            b"GET /echo?next HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = conn.read_response()
        assert response.status == 200
        assert response.json()["path"] == "/echo"
        assert response.header("connection") is None
        following = conn.read_response()
        assert following.status == 200 and following.json()["path"] == "/echo"


def test_upgrade_header_without_connection_upgrade_is_ordinary(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("GET", "/echo", headers="Upgrade: websocket\r\n")
        assert response.status == 200 and response.header("connection") is None
        assert conn.request("GET", "/fixed").status == 200
