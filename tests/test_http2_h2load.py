"""h2load (nghttp2's load client) against palfrey --http2: thousands of requests over many
concurrent streams, over cleartext with prior knowledge and over TLS with ALPN, and thousands on one
connection. Every request must succeed: 0 failed, 0 errored, every one answered 2xx. No timing is
asserted here (the h2load rows of `make bench` measure speed); this is the real-client counterpart of
tests/test_http2_frames.py. h2load comes from Debian's nghttp2-client (`make test-tools`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from benchmarks.bench.h2load import H2loadResult, parse
from tests.support import HTTP_APP, ServerProcess, run_server

pytest.importorskip("h2")

LIMIT_S = 120  # a bound on one h2load run on a loaded 2-core machine, never a speed assertion


def h2load(url: str, *args: str, data: Path | None = None) -> tuple[H2loadResult, str]:
    """Run h2load to completion and return its parsed counters and its raw report."""
    binary = shutil.which("h2load")
    assert binary, "h2load is missing: `make test-tools` installs nghttp2-client"
    argv = [binary, *args, *(["-d", str(data)] if data else []), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT_S, check=False)
    return parse(done.stdout), done.stdout


def assert_all_succeeded(result: H2loadResult, report: str, requests: int, server: ServerProcess) -> None:
    counts = (result.done, result.succeeded, result.failed, result.errored, result.timeouts)
    assert counts == (requests, requests, 0, 0, 0), report
    assert result.status_errors == 0, report
    assert "Traceback" not in server.output(), server.output()[-3000:]


def protocol(report: str) -> str:
    match = re.search(r"^Application protocol: (\S+)", report, re.MULTILINE)
    return match.group(1) if match else ""


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[ServerProcess]:
    with run_server(HTTP_APP, "--http2") as server:
        yield server


def test_h2c_many_streams_on_many_connections(h2c_server: ServerProcess) -> None:
    result, report = h2load(h2c_server.url + "/fixed", "-n", "4000", "-c", "4", "-m", "16")
    assert protocol(report) == "h2c"
    assert_all_succeeded(result, report, 4000, h2c_server)


def test_h2c_thousands_of_requests_on_one_connection(h2c_server: ServerProcess) -> None:
    """A legitimate client with many requests on one connection is not a flood (issue 15)."""
    result, report = h2load(h2c_server.url + "/fixed", "-n", "5000", "-c", "1", "-m", "16")
    assert_all_succeeded(result, report, 5000, h2c_server)


def test_h2c_post_bodies(h2c_server: ServerProcess, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"p" * 4096)
    result, report = h2load(h2c_server.url + "/echo", "-n", "2000", "-c", "2", "-m", "16", data=body)
    assert_all_succeeded(result, report, 2000, h2c_server)


def test_tls_alpn_h2(tls_certs: tuple[trustme.CA, Path, Path]) -> None:
    _, cert_file, key_file = tls_certs
    tls = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    with run_server(HTTP_APP, "--http2", *tls) as server:
        result, report = h2load(server.url + "/fixed", "-n", "3000", "-c", "4", "-m", "16")
        assert protocol(report) == "h2"  # negotiated by ALPN, not HTTP/1.1
        assert_all_succeeded(result, report, 3000, server)


def test_under_the_master_with_two_workers() -> None:
    with run_server(HTTP_APP, "--http2", "--workers", "2") as server:
        result, report = h2load(server.url + "/fixed", "-n", "3000", "-c", "8", "-m", "16")
        assert_all_succeeded(result, report, 3000, server)


def test_client_goaway_with_requests_in_the_same_read_is_quiet() -> None:
    """What h2load does when a timed run ends on a busy server: its last requests and its GOAWAY
    arrive in one read. The client has gone; nothing should be logged as an app failure."""
    import socket

    import h2.config
    import h2.connection

    peer = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    peer.initiate_connection()
    for stream_id in (1, 3, 5):
        peer.send_headers(
            stream_id,
            [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/fixed")],
            end_stream=True,
        )
    peer.close_connection()
    with run_server(HTTP_APP, "--http2") as server:  # its own server: this one's log gets tracebacks
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(peer.data_to_send())
            while sock.recv(65536):  # until the server closes (bounded by the socket timeout)
                pass
        marker = "/fixed?after-goaway"
        result, report = h2load(server.url + marker, "-n", "1", "-c", "1")
        assert result.succeeded == 1, report
        server.wait_for_line(re.escape(marker), timeout=10)  # access log: earlier work is logged by now
        assert "Traceback" not in server.output()
