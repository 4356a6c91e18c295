"""HTTP behaviour a switching uvicorn user relies on (issue 13), end to end on both parsers: a real
client's `Upgrade: h2c` POST keeps its body, `--h11-max-incomplete-event-size` means what it means in
uvicorn, and `--limit-request-head` bounds the whole head. The byte-level cases are in the corpus."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from tests.support import read_response, run_server

ECHO = "tests.apps.echo:app"
PARSERS = ["httptools", "h11"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_curl_h2c_upgrade_post_keeps_its_body(http: str, chunked: bool) -> None:
    """`curl --http2` on http:// sends `Connection: Upgrade, HTTP2-Settings` + `Upgrade: h2c`, as JDK
    HttpClient does: palfrey answers in HTTP/1.1 with the body read, then reuses the connection."""
    extra = ["-H", "Transfer-Encoding: chunked"] if chunked else []
    with run_server(ECHO, "--http", http) as server:
        result = subprocess.run(
            [
                *("curl", "-sSv", "--max-time", "5", "--http2", *extra, "--data-binary", "hello h2c"),
                *(server.url + "/one", "--next", "--http2", server.url + "/two"),
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        first, second = (json.loads(part) for part in result.stdout.replace("}{", "}\n{").splitlines())
        headers = dict(first["headers"])
        assert headers["upgrade"] == "h2c", "the request really asked for h2c"
        assert (first["method"], first["path"], first["body"]) == ("POST", "/one", "hello h2c")
        assert second["path"] == "/two"
        assert "Re-using existing connection" in result.stderr, "the connection stayed usable"


@pytest.mark.parametrize("http", PARSERS)
def test_h2c_post_on_one_connection_then_another_request(http: str) -> None:
    head = (
        b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 4\r\n\r\nbody"
    )
    with (
        run_server(ECHO, "--http", http) as server,
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        sock.sendall(head)
        status, headers, body = read_response(sock)
        assert status == 200 and json.loads(body)["body"] == "body"
        assert headers.get("connection") != "close"
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["path"] == "/next"


def _one_write(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return read_response(sock)[0]


def test_h11_max_incomplete_event_size_as_in_uvicorn() -> None:
    """uvicorn (h11) serves a 3 KB header arriving whole with --h11-max-incomplete-event-size 1024."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"
    with run_server(ECHO, "--http", "h11", "--h11-max-incomplete-event-size", "1024") as server:
        assert _one_write(server.port, request) == 200


@pytest.mark.parametrize("http", PARSERS)
def test_limit_request_head_option(http: str) -> None:
    fields = b"".join(b"X-%d: %s\r\n" % (n, b"v" * 1000) for n in range(3))
    request = b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    with run_server(ECHO, "--http", http, "--limit-request-head", "2048") as server:
        assert _one_write(server.port, request) == 431
        assert (
            _one_write(
                server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-0: " + b"v" * 1000 + b"\r\n" + b"\r\n"
            )
            == 200
        )
