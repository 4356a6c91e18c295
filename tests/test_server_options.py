"""Server-wide options seen by clients and apps: --root-path (prefixes path and raw_path, as uvicorn
does), --header / --no-server-header / --no-date-header, and every --loop / --http choice serving.

Each test starts its own server through conftest's `serve` factory, which stops it afterwards."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Conn, ServerFactory

APP = "tests.apps.server_apps:app"


def test_root_path_prefixes_path_and_raw_path(serve: ServerFactory) -> None:
    server = serve(APP, "--root-path", "/api")
    with httpx.Client() as client:
        body = client.get(server.url + "/items/a%20b?x=1").json()
        assert body["root_path"] == "/api"
        assert body["path"] == "/api/items/a b"
        assert body["raw_path"] == "/api/items/a%20b"
        assert body["query_string"] == "x=1"
        # The app routes below root_path: its /state route is still found.
        assert client.get(server.url + "/state").json()["started"] == "yes"
    server.wait_for_line(r'"GET /api/items/a%20b\?x=1 HTTP/1\.1" 200')


def test_custom_headers_and_default_headers(serve: ServerFactory) -> None:
    server = serve(APP, "-H", "x-frame-options: DENY", "--header", "x-team:palfrey")
    response = httpx.get(server.url + "/")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-team"] == "palfrey"
    assert response.headers["server"] == "palfrey"
    assert "date" in response.headers


def test_no_server_and_date_headers(serve: ServerFactory) -> None:
    server = serve(APP, "--no-server-header", "--no-date-header")
    with Conn(server.port) as conn:
        response = conn.request("GET", "/")
    assert response.status == 200
    assert response.header("server") is None and response.header("date") is None


def test_custom_server_header_replaces_the_default(serve: ServerFactory) -> None:
    server = serve(APP, "-H", "server: edge")
    response = httpx.get(server.url + "/")
    assert response.headers.get_list("server") == ["edge"]


@pytest.mark.parametrize(
    ("loop", "http"),
    [("asyncio", "h11"), ("asyncio", "httptools"), ("uvloop", "h11"), ("uvloop", "httptools")],
)
def test_loop_and_http_implementations(serve: ServerFactory, loop: str, http: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    if http == "httptools":
        pytest.importorskip("httptools")
    server = serve(APP, "--loop", loop, "--http", http)
    with httpx.Client() as client:
        assert client.post(server.url + "/impl", content=b"x" * 100_000).json()["path"] == "/impl"
        assert client.get(server.url + "/state").json()["started"] == "yes"
