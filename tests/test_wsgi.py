"""PEP 3333 end to end: plain WSGI callables served by a real palfrey process.

environ contents, `wsgi.input` reading styles, `start_response` / `write()` / iterable semantics,
HEAD, framing, and errors before and after the response head went out.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, raw_request, read_response, run_server

APP = "tests.apps.wsgi_apps:app"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--interface", "wsgi") as server:
        yield server


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def request(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        return read_response(sock)


# environ


def test_environ_core_keys(server: ServerProcess) -> None:
    status, _, body = request(
        server.port,
        "POST /environ/caf%C3%A9/x%2Fy?q=%20a&b=1 HTTP/1.1\n"
        "Host: example.com:1234\n"
        "Content-Type: text/plain\n"
        "Content-Length: 3\n"
        "X-Multi: one\n"
        "X-Multi: two\n"
        "Cookie: a=1\n"
        "Cookie: b=2\n"
        "X_Smuggled: yes\n",
        b"abc",
    )
    assert status == 200
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    # Percent-decoded bytes as latin-1 (PEP 3333), so the app can re-decode as UTF-8.
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9/x/y"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/environ/café/x/y"
    assert env["QUERY_STRING"] == "q=%20a&b=1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["HTTP_HOST"] == "example.com:1234"
    assert env["HTTP_X_MULTI"] == "one,two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SMUGGLED" not in env  # names with "_" are dropped: they would alias "-" names
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["file_wrapper"] and env["input_read"] and env["errors_write"]
    assert {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"} <= set(env["keys"])


def test_environ_without_body_and_http10(server: ServerProcess) -> None:
    status, _, body = request(server.port, "GET /environ HTTP/1.0\n")
    env = json.loads(body)
    assert status == 200
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["QUERY_STRING"] == ""
    assert env["CONTENT_LENGTH"] == "" and env["CONTENT_TYPE"] == ""


def test_url_scheme_and_remote_addr_honour_trusted_proxy_headers(client: httpx.Client) -> None:
    env = client.get(
        "/environ", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    ).json()
    assert env["wsgi.url_scheme"] == "https"
    assert env["REMOTE_ADDR"] == "203.0.113.9"


def test_root_path_is_script_name_and_threads_set_multithread() -> None:
    with run_server(APP, "--root-path", "/mount", "--threads", "1") as server:
        env = httpx.get(f"{server.url}/environ/page", timeout=10).json()
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/environ/page"
    assert env["wsgi.multithread"] is False


@pytest.mark.parametrize("target", ["tests.apps.wsgi_apps:app", "tests.apps.wsgi_apps:instance_app"])
def test_plain_wsgi_callables_are_detected(target: str) -> None:
    with run_server(target) as server:
        response = httpx.get(f"{server.url}/no-read", timeout=10)
    assert response.status_code == 200
    assert response.text in ("did not read", "instance app")


# wsgi.input

BODY = b"ab\ncd\n\nefgh"


@pytest.mark.parametrize(
    ("mode", "parts"),
    [
        ("read", ["ab\ncd\n\nefgh"]),
        ("readn", ["ab\n", "cd\n", "\nef", "gh"]),
        ("readline", ["ab\n", "cd\n", "\n", "efgh"]),
        ("readline_limit", ["ab\n", "cd\n", "\n", "efgh"]),
        ("readlines", ["ab\n", "cd\n", "\n", "efgh"]),
        ("iter", ["ab\n", "cd\n", "\n", "efgh"]),
    ],
)
def test_input_reading_styles(client: httpx.Client, mode: str, parts: list[str]) -> None:
    result = client.post(f"/echo?mode={mode}", content=BODY).json()
    assert result == {"parts": parts, "after": ""}


def test_input_readline_with_limit_splits_long_lines(client: httpx.Client) -> None:
    result = client.post("/echo?mode=readline_limit", content=b"abcdefghij\nk").json()
    assert result["parts"] == ["abcd", "efgh", "ij\n", "k"]


def test_input_chunked_request_body_reads_to_its_end(server: ServerProcess) -> None:
    status, _, body = request(
        server.port,
        "POST /echo?mode=readline HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
        b"3\r\nab\n\r\n4\r\ncd\ne\r\n2\r\nfg\r\n0\r\n\r\n",
    )
    assert status == 200
    assert json.loads(body)["parts"] == ["ab\n", "cd\n", "efg"]


def test_expect_100_continue_is_answered_when_the_app_reads(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, _, body = read_response(sock)
    assert status == 200
    assert json.loads(body)["parts"] == ["hello"]


def test_expect_100_continue_is_not_sent_when_the_app_does_not_read(server: ServerProcess) -> None:
    data = raw_request(
        server.port,
        b"POST /no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"100 Continue" not in data
    assert data.endswith(b"did not read")


# Responses


def test_write_callable_then_iterable(client: httpx.Client) -> None:
    response = client.get("/write")
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "written 1\nwritten 2\nreturned\n"


def test_generator_without_length_is_chunked_and_closed(server: ServerProcess, client: httpx.Client) -> None:
    response = client.get("/stream?chunks=3&size=10&tag=chunked")
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.content == b"x" * 30
    server.wait_for_line("app: closed chunked")


def test_app_content_length_is_kept(client: httpx.Client) -> None:
    response = client.get("/stream?chunks=3&size=10&length=30")
    assert response.headers["content-length"] == "30"
    assert "transfer-encoding" not in response.headers
    assert response.content == b"x" * 30


def test_list_response_gets_content_length(client: httpx.Client) -> None:
    response = client.get("/no-read")
    assert response.headers["content-length"] == str(len(b"did not read"))
    assert "transfer-encoding" not in response.headers


def test_head(server: ServerProcess) -> None:
    get = httpx.get(f"{server.url}/no-read", timeout=10)
    head = httpx.head(f"{server.url}/no-read", timeout=10)
    assert head.status_code == 200
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == b""
    # A large streamed body is not produced for HEAD, and its iterable is still closed.
    data = raw_request(
        server.port,
        b"HEAD /stream?chunks=100000&size=65536&tag=head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n")
    server.wait_for_line("app: closed head")


def test_no_content_and_lazy_start(client: httpx.Client) -> None:
    empty = client.get("/empty")
    assert empty.status_code == 204 and empty.content == b""
    assert "content-length" not in empty.headers
    lazy = client.get("/lazy-start")
    assert lazy.status_code == 201 and lazy.text == "lazy"


def test_file_wrapper(client: httpx.Client) -> None:
    response = client.get("/file")
    assert response.content == Path("tests/apps/wsgi_apps.py").read_bytes()


def test_wsgi_errors_goes_to_the_log(server: ServerProcess, client: httpx.Client) -> None:
    assert client.get("/errors").text == "logged"
    server.wait_for_line("message to wsgi.errors")


def test_exc_info_before_head_replaces_the_response(client: httpx.Client) -> None:
    response = client.get("/exc-info-early")
    assert response.status_code == 503
    assert response.text == "replaced"
    assert "x-original" not in response.headers


def test_exc_info_after_head_reraises_and_closes(server: ServerProcess) -> None:
    data = raw_request(server.port, b"GET /exc-info-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client can tell it is truncated
    server.wait_for_line("ValueError: late boom")


def test_exception_before_start_response_is_500_with_traceback(
    server: ServerProcess, client: httpx.Client
) -> None:
    response = client.get("/error-before")
    assert response.status_code == 500
    server.wait_for_line("RuntimeError: error before start_response")
    assert "Traceback (most recent call last)" in server.output()


def test_exception_after_head_closes_connection(server: ServerProcess) -> None:
    data = raw_request(server.port, b"GET /error-after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"some data" in data
    assert not data.endswith(b"0\r\n\r\n")
    server.wait_for_line("RuntimeError: error after the head was sent")
    server.wait_for_line("app: error_after closed")


def test_missing_start_response_is_500(server: ServerProcess, client: httpx.Client) -> None:
    assert client.get("/no-start").status_code == 500
    server.wait_for_line("without calling start_response")


def test_keep_alive_serves_many_requests_on_one_connection(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for _ in range(20):
            sock.sendall(b"GET /no-read HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(sock)
            assert (status, body) == (200, b"did not read")


def test_http10_streamed_response_is_close_delimited(server: ServerProcess) -> None:
    data = raw_request(server.port, b"GET /stream?chunks=3&size=10&tag=http10 HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"x" * 30
    server.wait_for_line("app: closed http10")
