"""Server-wide options seen by clients and apps: --root-path (prefixes path and raw_path, as uvicorn
does), --header / --no-server-header / --no-date-header, and every --loop / --http choice serving."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.support import read_response, run_server

APP = "tests.apps.server_apps:app"


def test_root_path_prefixes_path_and_raw_path() -> None:
    with run_server(APP, "--root-path", "/api") as server:
        with httpx.Client() as client:
            body = client.get(server.url + "/items/a%20b?x=1").json()
            assert body["root_path"] == "/api"
            assert body["path"] == "/api/items/a b"
            assert body["raw_path"] == "/api/items/a%20b"
            assert body["query_string"] == "x=1"
            # The app routes below root_path: its /state route is still found.
            assert client.get(server.url + "/state").json()["started"] == "yes"
        server.wait_for_line(r'"GET /api/items/a%20b\?x=1 HTTP/1\.1" 200')


def test_custom_headers_and_default_headers() -> None:
    with run_server(APP, "-H", "x-frame-options: DENY", "--header", "x-team:palfrey") as server:
        response = httpx.get(server.url + "/")
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-team"] == "palfrey"
        assert response.headers["server"] == "palfrey"
        assert "date" in response.headers


def test_no_server_and_date_headers() -> None:
    with run_server(APP, "--no-server-header", "--no-date-header") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = read_response(sock)
        assert status == 200
        assert "server" not in headers and "date" not in headers


def test_custom_server_header_replaces_the_default() -> None:
    with run_server(APP, "-H", "server: edge") as server:
        response = httpx.get(server.url + "/")
        assert response.headers.get_list("server") == ["edge"]


@pytest.mark.parametrize(
    ("loop", "http"),
    [("asyncio", "h11"), ("asyncio", "httptools"), ("uvloop", "h11"), ("uvloop", "httptools")],
)
def test_loop_and_http_implementations(loop: str, http: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    if http == "httptools":
        pytest.importorskip("httptools")
    with run_server(APP, "--loop", loop, "--http", http) as server, httpx.Client() as client:
        assert client.post(server.url + "/impl", content=b"x" * 100_000).json()["path"] == "/impl"
        assert client.get(server.url + "/state").json()["started"] == "yes"
