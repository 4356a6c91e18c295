"""Flow control, `Expect: 100-continue`, unread request bodies and `http.disconnect`, on both parsers
and both event loops.

The app (``tests/apps/http_apps.py``) reports what happened inside the server through named events
that the test awaits (``/event/wait``), so no test sleeps to let something happen. The only timed
waits prove that something does *not* happen (a 100 sent too early, a sender that cannot go on).
"""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support import HTTP_APP as APP
from tests.support import PARSERS, Conn, ServerProcess, get, run_server, set_event, wait_event

MiB = 1024 * 1024


SERVERS = [(http, loop) for http in PARSERS for loop in ("uvloop", "asyncio")]


@pytest.fixture(scope="module", params=SERVERS, ids=[f"{http}-{loop}" for http, loop in SERVERS])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """Flow control leans on the transport (pause/resume, write buffer limits, write_eof): both
    event loops are exercised here."""
    http, loop = request.param
    with run_server(APP, "--http", http, "--loop", loop, "--workers", "1", "--no-access-log") as process:
        yield process


def rss(port: int) -> int:
    return int(get(port, "/rss").body)


# ----------------------------------------------------------------------------------------------------
# Read flow control
# ----------------------------------------------------------------------------------------------------


def test_large_upload_to_a_slow_reader_is_not_buffered(server: ServerProcess) -> None:
    """64 MiB offered to an app that reads one message and waits: the server stops reading (the
    sender blocks), the app never gets more than about 64 KiB + one socket read in one message,
    and the server's memory does not grow with the upload. Released, the app gets every byte."""
    total = 64 * MiB
    body = bytes(range(256)) * (total // 256)
    before = rss(server.port)
    with Conn(server.port) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.send(b"POST /slow-reader HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
        view = memoryview(body)
        conn.send(view[:4096])
        wait_event(server.port, "slow-reader-waiting")
        sent = 4096
        conn.sock.setblocking(False)
        deadline = time.monotonic() + 10
        while sent < total and time.monotonic() < deadline:
            # Blocked for half a second: the server is not reading.
            if not select.select([], [conn.sock], [], 0.5)[1]:
                break
            try:
                sent += conn.sock.send(view[sent : sent + MiB])
            except BlockingIOError:
                continue
        assert sent < total, "the whole upload was accepted: the server does not pause reading"
        grown = rss(server.port) - before
        assert grown < 16 * MiB, f"server memory grew by {grown} bytes while the app did not read"
        set_event(server.port, "release-reader")
        conn.sock.setblocking(True)
        conn.sock.sendall(view[sent:])
        response = conn.read_response()
    assert response.body == b"%d" % total
    result = get(server.port, "/slow-reader/result").json()
    assert result["total"] == total
    assert result["largest"] < MiB, f"one body message of {result['largest']} bytes: reading did not pause"


# ----------------------------------------------------------------------------------------------------
# Write flow control
# ----------------------------------------------------------------------------------------------------


def test_streaming_to_a_client_that_does_not_read_gets_back_pressure(server: ServerProcess) -> None:
    total = 64 * MiB
    with Conn(server.port, rcvbuf=65536) as conn:
        conn.send(b"GET /big-stream?total=%d HTTP/1.1\r\nHost: t\r\n\r\n" % total)
        # The app sets this event once one of its send() calls had to wait.
        wait_event(server.port, "big-stream-blocked")
        progress = get(server.port, "/big-stream/progress").json()
        assert progress["in_send"] and not progress["done"]
        assert progress["sent"] < 16 * MiB, f"the app could send {progress['sent']} bytes unread"
        response = conn.read_response()
    assert len(response.body) == total
    assert get(server.port, "/big-stream/progress").json()["done"]


# ----------------------------------------------------------------------------------------------------
# Expect: 100-continue
# ----------------------------------------------------------------------------------------------------

EXPECT_HEAD = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"


def test_100_continue_is_sent_when_the_app_first_reads(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(EXPECT_HEAD % b"/read-after")
        assert conn.quiet(0.2), "100 Continue sent before the app asked for the body"
        set_event(server.port, "release-read")
        status, _ = conn.read_head()
        assert status == 100
        conn.send(b"hello")
        response = conn.read_response()
        assert (response.status, response.body, response.interim) == (200, b"read 5", [])
        assert conn.request("GET", "/fixed").status == 200, "the connection stays usable"


def test_no_100_continue_when_the_app_answers_without_reading(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(EXPECT_HEAD % b"/no-read")
        response = conn.read_response()
        assert response.interim == []
        assert response.body == b"answered without reading"
        # The body may or may not follow: the connection cannot be reused.
        assert response.header("connection") == "close"
        assert conn.closed()


def test_100_continue_with_curl(server: ServerProcess, tmp_path: object) -> None:
    result = subprocess.run(
        [
            "/usr/bin/curl",
            "-sS",
            "-i",
            "--max-time",
            "10",
            "--expect100-timeout",
            "5",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "x" * 5000,
            f"http://127.0.0.1:{server.port}/echo",
        ],
        capture_output=True,
        timeout=15,
        check=True,
    )
    out = result.stdout
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), out[:200]
    assert b'"body": "' + b"x" * 5000 + b'"' in out


# ----------------------------------------------------------------------------------------------------
# Request bodies the app does not read
# ----------------------------------------------------------------------------------------------------


def test_unread_body_that_arrived_whole_keeps_the_connection(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        response = conn.request("POST", "/no-read", b"x" * 100)
        assert response.status == 200 and response.header("connection") is None
        assert conn.request("POST", "/echo", b"next").json()["body"] == "next"


def test_unread_large_body_does_not_lose_the_response(server: ServerProcess) -> None:
    """The app answers at once; the client is still sending 8 MiB. The server keeps reading and
    discarding (a lingering close), so the upload is not reset and the response arrives whole."""
    body = b"y" * (8 * MiB)
    with Conn(server.port) as conn:
        conn.send(b"POST /no-read HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        conn.send(body)
        response = conn.read_response()
        assert response.body == b"answered without reading"
        assert conn.closed()
    assert get(server.port, "/fixed").status == 200


# ----------------------------------------------------------------------------------------------------
# http.disconnect
# ----------------------------------------------------------------------------------------------------


def test_disconnect_reaches_an_app_waiting_for_the_body(server: ServerProcess) -> None:
    with Conn(server.port) as conn:
        conn.send(b"POST /wait-disconnect HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
        wait_event(server.port, "waiting-in-receive")
    assert get(server.port, "/wait-disconnect/result").body == b"disconnect during body"


def test_disconnect_reaches_an_app_waiting_after_the_body(server: ServerProcess) -> None:
    """After the last body message, receive() blocks until the client leaves (it must not return
    more empty body messages, which would make a disconnect listener spin)."""
    with Conn(server.port) as conn:
        conn.send(b"POST /wait-disconnect HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody")
        wait_event(server.port, "body-read")
        assert conn.quiet(0.1)
    assert get(server.port, "/wait-disconnect/result").body == b"disconnect after body"
