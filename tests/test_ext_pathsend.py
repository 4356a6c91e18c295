"""`http.response.pathsend` / `zerocopysend` on real servers: sendfile on plain TCP (asyncio and
uvloop), the read loop under TLS, both parsers; framing, HEAD, keep-alive after it, a missing file,
Content-Length mismatches, a client that stops reading (no whole-file buffering, --timeout-send),
and what `scope["extensions"]` advertises."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support import PARSERS, Conn, ServerProcess, run_server

APP = "tests.apps.ext_apps:app"
EXTENSIONS = ["http.response.pathsend", "http.response.zerocopysend"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pathsend") / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pathsend-big") / "big.bin"
    with open(path, "wb") as file:  # 64 MiB, sparse: cheap to create, as large as any to send
        file.truncate(64 * 1024 * 1024)
    return path


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def tls_conn(port: int, ca: trustme.CA, timeout: float = 10.0, rcvbuf: int | None = None) -> Conn:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return Conn.over(context.wrap_socket(raw, server_hostname="127.0.0.1"), timeout)


def tls_args(tls_certs: tuple[trustme.CA, Path, Path]) -> tuple[str, ...]:
    _, cert_file, key_file = tls_certs
    return ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("http", PARSERS)
def test_pathsend_keep_alive_and_head(http: str, loop: str, data_file: Path) -> None:
    expected = data_file.read_bytes()
    with (
        run_server(APP, "--http", http, "--loop", loop, "--no-access-log") as server,
        Conn(server.port) as conn,
    ):
        for _ in range(2):  # the same connection serves the file twice, then a plain request
            response = conn.request("GET", f"/file?p={data_file}")
            assert response.status == 200 and response.header("content-length") == str(len(expected))
            assert response.body == expected
        head = conn.request("HEAD", f"/file?p={data_file}")
        assert head.status == 200 and head.header("content-length") == str(len(expected))
        assert conn.request("GET", "/ok").body == b"ok"
        zero_copy = conn.request("GET", f"/file?p={data_file}&zc=1&skip=7")
        assert zero_copy.body == expected[7:] and zero_copy.header("content-length") is None
        parts = conn.request("GET", f"/parts?p={data_file}")
        assert parts.header("transfer-encoding") == "chunked" and parts.chunks == [1000, 5, 3]
        assert parts.body == expected[10:1010] + expected[:5] + b"end"
        assert conn.request("GET", "/ext").json() == EXTENSIONS


@pytest.mark.parametrize(("http", "loop"), [("httptools", "uvloop"), ("h11", "asyncio")])
def test_pathsend_over_tls(
    http: str, loop: str, data_file: Path, tls_certs: tuple[trustme.CA, Path, Path]
) -> None:
    expected = data_file.read_bytes()
    with (
        run_server(APP, "--http", http, "--loop", loop, "--no-access-log", *tls_args(tls_certs)) as server,
        tls_conn(server.port, tls_certs[0]) as conn,
    ):
        for target in (f"/file?p={data_file}", f"/file?p={data_file}&zc=1"):
            response = conn.request("GET", target)
            assert response.body == expected
        parts = conn.request("GET", f"/parts?p={data_file}")
        assert parts.body == expected[10:1010] + expected[:5] + b"end"
        assert conn.request("GET", "/ext").json() == [*EXTENSIONS, "tls"]


@pytest.mark.parametrize("http", PARSERS)
def test_missing_file_and_length_mismatches(http: str, data_file: Path, tmp_path: Path) -> None:
    size = data_file.stat().st_size
    with run_server(APP, "--http", http) as server:
        with Conn(server.port) as conn:
            missing = conn.request("GET", f"/file?p={tmp_path / 'gone.bin'}")
            assert missing.status == 500 and missing.header("connection") == "close"
            assert conn.closed(timeout=5)
        server.wait_for_line(r"FileNotFoundError")
        with Conn(server.port) as conn:  # Content-Length 100: 100 bytes, then the connection closes
            short = conn.request("GET", f"/file?p={data_file}&cl=100")
            assert short.body == data_file.read_bytes()[:100] and conn.closed(timeout=5)
        server.wait_for_line(r"Response content longer than Content-Length")
        with Conn(server.port) as conn:  # more promised than the file has: what it has, then a close
            conn.send(f"GET /file?p={data_file}&cl={size + 10} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers = conn.read_head()
            assert status == 200 and dict(headers)["content-length"] == str(size + 10)
            assert len(conn.read_to_close()) == size
        server.wait_for_line(rf"Response content shorter than Content-Length \({size} of {size + 10} bytes\)")
        with Conn(server.port) as conn:  # a range past the end of the file: what it has, then a close
            conn.send(f"GET /file?p={data_file}&count={size + 5} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers = conn.read_head()
            assert status == 200 and dict(headers)["content-length"] == str(size + 5)
            assert conn.read_to_close() == data_file.read_bytes()
        server.wait_for_line(rf"RuntimeError: The file ended after {size} of {size + 5} bytes")
        with Conn(server.port) as conn:  # a directory cannot be opened: 500
            assert conn.request("GET", f"/file?p={tmp_path}").status == 500


def wait_until_sending(server: ServerProcess, conn: Conn, target: str) -> int:
    conn.send(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    status, headers = conn.read_head()
    assert status == 200
    return int(dict(headers)["content-length"])


@pytest.mark.parametrize("tls", [False, True], ids=["sendfile", "tls-read-loop"])
def test_a_client_that_stops_reading_gets_back_pressure(
    tls: bool, big_file: Path, tls_certs: tuple[trustme.CA, Path, Path]
) -> None:
    args = tls_args(tls_certs) if tls else ()
    with run_server(APP, "--no-access-log", *args) as server:
        before = rss_kib(server.proc.pid)
        conn = tls_conn(server.port, tls_certs[0], rcvbuf=65536) if tls else Conn(server.port, 10, 65536)
        with conn:
            length = wait_until_sending(server, conn, f"/file?p={big_file}")
            time.sleep(1.0)  # the client reads nothing: the server must hold, not buffer the file
            growth = rss_kib(server.proc.pid) - before
            assert growth < 16 * 1024, f"server grew {growth} KiB for a client that does not read"
            received = len(conn.buffer)
            conn.buffer.clear()
            while received < length:  # then everything arrives, intact in length
                chunk = conn.sock.recv(1 << 20)
                assert chunk, f"closed after {received} of {length} bytes"
                received += len(chunk)
            assert received == length
            assert conn.request("GET", "/ok").body == b"ok"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_timeout_send_ends_a_stalled_sendfile(loop: str, big_file: Path) -> None:
    with run_server(APP, "--no-access-log", "--loop", loop, "--timeout-send", "1") as server:
        with Conn(server.port, 10, 65536) as conn:
            length = wait_until_sending(server, conn, f"/file?p={big_file}")
            server.wait_for_line(r"Client did not read the response for 1s; aborting")
            received = len(conn.buffer)
            deadline = time.monotonic() + 5
            try:
                while time.monotonic() < deadline:
                    chunk = conn.sock.recv(1 << 20)
                    if not chunk:
                        break
                    received += len(chunk)
            except ConnectionResetError:
                pass
            assert received < length, "the stalled transfer was aborted"
        with Conn(server.port) as conn:
            assert conn.request("GET", "/ok").body == b"ok", "the server serves on"


@pytest.mark.parametrize("http", PARSERS)
def test_starlette_file_response_uses_pathsend(http: str, data_file: Path) -> None:
    expected = data_file.read_bytes()
    with (
        run_server("tests.apps.ext_starlette:app", "--http", http, "--log-level", "trace") as server,
        Conn(server.port) as conn,
    ):
        response = conn.request("GET", f"/file?p={data_file}")
        assert response.status == 200 and response.body == expected
        assert response.header("content-length") == str(len(expected))
        server.wait_for_line(r"Send \{'type': 'http\.response\.pathsend', 'path': ")
        assert conn.request("HEAD", f"/file?p={data_file}").header("content-length") == str(len(expected))


def test_pathsend_on_an_http2_stream(data_file: Path) -> None:
    """HTTP/2 scopes advertise the extensions, and a stream serves them (the read loop)."""
    expected = data_file.read_bytes()
    with (
        run_server(APP, "--http2", "--no-access-log") as server,
        httpx.Client(http1=False, http2=True, timeout=10) as client,
    ):
        advertised = client.get(f"{server.url}/ext")
        assert advertised.http_version == "HTTP/2"
        assert advertised.json() == ["http.response.pathsend", "http.response.zerocopysend"]
        response = client.get(f"{server.url}/file?p={data_file}")
        assert response.http_version == "HTTP/2" and response.content == expected
        assert response.headers["content-length"] == str(len(expected))
        parts = client.get(f"{server.url}/parts?p={data_file}")
        assert parts.content == expected[10:1010] + expected[:5] + b"end"
        head = client.head(f"{server.url}/file?p={data_file}")
        assert head.headers["content-length"] == str(len(expected)) and head.content == b""
