"""HTTP/2 end to end with real clients (--http2): httpx with prior knowledge and over TLS (ALPN),
curl with --http2-prior-knowledge and --http2 (the h2c upgrade), in one process and under the
master with two workers. The same ASGI cases as over HTTP/1.1: echo of a POST body, a streaming
response, errors before and after the response starts, lifespan state, and HTTP/1.1 still served
on the same port."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support import HTTP_APP, ServerProcess, run_server

pytest.importorskip("h2")

CURL = shutil.which("curl")


@pytest.fixture(scope="module", params=["1", "2"], ids=["single", "workers2"])
def h2_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server(HTTP_APP, "--http2", "--workers", request.param) as server:
        yield server


def h2c_client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=5.0)  # prior knowledge over cleartext


def test_echo_post_body(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        response = client.post(h2_server.url + "/echo/a%20b?x=1", content=b"hello body")
    assert response.http_version == "HTTP/2"
    body = response.json()
    assert body["http_version"] == "2"
    assert body["method"] == "POST"
    assert body["path"] == "/echo/a b"
    assert body["raw_path"] == "/echo/a%20b"
    assert body["query_string"] == "x=1"
    assert body["scheme"] == "http"
    assert body["body"] == "hello body"
    headers = dict(body["headers"])
    assert headers["host"] == h2_server.url.removeprefix("http://")  # :authority as a host header
    assert not any(name.startswith(":") for name in headers)
    assert response.headers["server"] == "palfrey"
    assert "date" in response.headers


def test_many_requests_on_one_connection(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        for i in range(50):
            response = client.post(h2_server.url + "/echo", content=b"%d" % i)
            assert response.json()["body"] == str(i)


def test_streaming_response(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        response = client.get(h2_server.url + "/stream?n=16&size=1000")
    assert response.status_code == 200
    assert response.content == b"".join(bytes([97 + i]) * 1000 for i in range(16))
    assert "content-length" not in response.headers and "transfer-encoding" not in response.headers


def test_large_body_both_ways(h2_server: ServerProcess) -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB: past every initial window
    with h2c_client() as client:
        response = client.post(h2_server.url + "/echo", content=payload)
    assert response.json()["body"].encode("latin-1") == payload


def test_app_error_before_response_is_500(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        response = client.get(h2_server.url + "/raise-before")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        assert client.get(h2_server.url + "/fixed").text == "0123456789"  # the connection lives on


def test_app_error_after_response_start_resets_the_stream_only(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(h2_server.url + "/raise-after").read()
        assert client.get(h2_server.url + "/fixed").text == "0123456789"


def test_response_longer_than_content_length_resets_the_stream(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(h2_server.url + "/too-long").read()
        assert client.get(h2_server.url + "/fixed").status_code == 200


def test_lifespan_state(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        assert client.get(h2_server.url + "/state").json() == {"greeting": "hello", "items": ["lifespan"]}


def test_head_and_no_body_statuses(h2_server: ServerProcess) -> None:
    with h2c_client() as client:
        head = client.head(h2_server.url + "/fixed")
        assert head.status_code == 200 and head.content == b""
        assert client.get(h2_server.url + "/status?code=204").content == b""


def test_http11_still_served_on_the_same_port(h2_server: ServerProcess) -> None:
    with httpx.Client() as client:
        response = client.post(h2_server.url + "/echo", content=b"one")
    assert response.http_version == "HTTP/1.1"
    assert response.json()["http_version"] == "1.1"


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
@pytest.mark.parametrize("mode", ["--http2-prior-knowledge", "--http2"])
def test_curl(h2_server: ServerProcess, mode: str) -> None:
    """--http2 on cleartext is the RFC 7540 §3.2 upgrade: the POST and its body are stream 1."""
    result = subprocess.run(
        [
            str(CURL),
            "-sS",
            mode,
            "--max-time",
            "5",
            "-w",
            "\n%{http_version}",
            "-d",
            "curl body",
            h2_server.url + "/echo",
        ],
        capture_output=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    body, _, version = result.stdout.rpartition(b"\n")
    assert version == b"2"
    echoed = json.loads(body)
    assert echoed["body"] == "curl body" and echoed["method"] == "POST" and echoed["http_version"] == "2"
    assert not {"upgrade", "http2-settings", "connection"} & {name for name, _ in echoed["headers"]}


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_upgrade_with_h11_parser() -> None:
    with run_server(HTTP_APP, "--http2", "--http", "h11") as server:
        result = subprocess.run(
            [
                str(CURL),
                "-sS",
                "--http2",
                "--max-time",
                "5",
                "-w",
                "\n%{http_version}",
                "-d",
                "h11 body",
                server.url + "/echo",
            ],
            capture_output=True,
            timeout=10,
        )
    body, _, version = result.stdout.rpartition(b"\n")
    assert version == b"2" and json.loads(body)["body"] == "h11 body"


def test_without_flag_nothing_changes(serve: object) -> None:
    with run_server(HTTP_APP) as server, h2c_client() as client:
        with pytest.raises(httpx.HTTPError):
            client.get(server.url + "/fixed")
        assert httpx.get(server.url + "/fixed").http_version == "HTTP/1.1"


def test_tls_alpn(tls_certs: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert_file, key_file = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with run_server(
        HTTP_APP, "--http2", "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)
    ) as server:
        with httpx.Client(http2=True, verify=context, timeout=5.0) as client:
            response = client.post(server.url + "/echo", content=b"secret")
            assert response.http_version == "HTTP/2"
            assert response.json()["scheme"] == "https" and response.json()["body"] == "secret"
        with httpx.Client(verify=context, timeout=5.0) as client:  # no h2 offered: HTTP/1.1
            assert client.get(server.url + "/fixed").http_version == "HTTP/1.1"
