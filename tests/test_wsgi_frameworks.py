"""Real WSGI frameworks on palfrey: the docs_src/wsgi examples (a Flask app, a Django project),
started as their docstrings say, serving real pages."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServerProcess, raw_request, run_server

pytest.importorskip("flask")
pytest.importorskip("django")

FLASK = "docs_src.wsgi.flask_app:app"
DJANGO = ("mysite.wsgi:application", "--app-dir", "docs_src/wsgi/django_project")
MB = 1024 * 1024


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    block = b"u" * size
    for _ in range(total // size):
        yield block


# Flask


@pytest.fixture(scope="module")
def flask_server() -> Iterator[ServerProcess]:
    with run_server(FLASK) as server:
        yield server


@pytest.fixture(scope="module")
def flask(flask_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=flask_server.url, timeout=20) as client:
        yield client


def test_flask_page(flask: httpx.Client) -> None:
    response = flask.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Hello, Flask!</h1>" in response.text
    assert 'href="/hello/palfrey"' in response.text
    assert "<h1>Hello, palfrey!</h1>" in flask.get("/hello/palfrey").text
    assert flask.get("/nowhere").status_code == 404


def test_flask_head(flask: httpx.Client) -> None:
    head = flask.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(flask.get("/").content))


def test_flask_streamed_and_chunked_uploads(flask: httpx.Client) -> None:
    assert flask.post("/upload", content=b"a" * (3 * MB)).json() == {"received": 3 * MB}
    # A generator body goes out chunked, without Content-Length: Flask reads it to its end.
    assert flask.post("/upload", content=chunks(8 * MB)).json() == {"received": 8 * MB}


def test_flask_multipart_form(flask: httpx.Client) -> None:
    response = flask.post(
        "/form", data={"name": "hay"}, files={"attachment": ("bale.bin", b"\x00\x01" * 50000)}
    )
    assert response.json() == {"name": "hay", "filename": "bale.bin", "size": 100000}


def test_flask_streaming_response_is_chunked(flask: httpx.Client) -> None:
    with flask.stream("GET", "/count") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.read() == b"1\n2\n3\n4\n5\n"


def test_flask_sees_proxy_headers(flask: httpx.Client) -> None:
    info = flask.get(
        "/client", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    ).json()
    assert info["scheme"] == "https"
    assert info["remote_addr"] == "198.51.100.7"
    assert info["url"].startswith("https://")


def test_flask_view_error_is_a_500(flask_server: ServerProcess, flask: httpx.Client) -> None:
    assert flask.get("/boom").status_code == 500
    flask_server.wait_for_line("RuntimeError: an error inside a view")


def test_flask_under_a_root_path() -> None:
    with run_server(FLASK, "--interface", "wsgi", "--root-path", "/site") as server:
        page = httpx.get(f"{server.url}/", timeout=20).text
    assert 'href="/site/hello/palfrey"' in page


# Django


@pytest.fixture(scope="module")
def django_server() -> Iterator[ServerProcess]:
    with run_server(*DJANGO) as server:
        yield server


@pytest.fixture(scope="module")
def django(django_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=django_server.url, timeout=20) as client:
        yield client


def test_django_page(django_server: ServerProcess, django: httpx.Client) -> None:
    response = django.get("/")
    assert response.status_code == 200
    assert "<h1>Hello, Django!</h1>" in response.text
    assert 'href="/hello/palfrey/"' in response.text
    assert "Secure: no" in response.text
    assert "<h1>Hello, palfrey!</h1>" in django.get("/hello/palfrey/").text
    assert django.get("/nowhere/").status_code == 404
    # close() was called on every response: Django sends request_finished from it.
    django_server.wait_for_line("django: request finished")


def test_django_https_behind_a_proxy(django: httpx.Client) -> None:
    page = django.get("/", headers={"X-Forwarded-Proto": "https"}).text
    assert "Secure: yes" in page


def test_django_large_multipart_upload(django: httpx.Client) -> None:
    payload = os.urandom(64 * 1024) * 80  # 5 MB: above Django's in-memory limit, spooled to disk
    response = django.post("/upload/", data={"name": "hay"}, files={"attachment": ("big.bin", payload)})
    assert response.status_code == 200
    assert response.json() == {"name": "hay", "size": len(payload)}


def test_django_streaming_and_file_responses(django: httpx.Client) -> None:
    with django.stream("GET", "/count/") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.read() == b"1\n2\n3\n4\n5\n"
    source = django.get("/source/")
    with open("docs_src/wsgi/django_project/mysite/views.py", "rb") as views:
        assert source.content == views.read()
    assert source.headers["content-length"] == str(len(source.content))


def test_django_head_and_bad_host(django_server: ServerProcess) -> None:
    head = raw_request(django_server.port, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    bad = raw_request(
        django_server.port, b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert bad.startswith(b"HTTP/1.1 400 ")  # ALLOWED_HOSTS, decided from HTTP_HOST


def test_django_under_a_root_path() -> None:
    with run_server(*DJANGO, "--root-path", "/site") as server:
        page = httpx.get(f"{server.url}/", timeout=20).text
    assert 'href="/site/hello/palfrey/"' in page
