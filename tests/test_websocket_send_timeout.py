"""--timeout-send for WebSockets: a client that stops reading while the app sends is disconnected.

A `send()` that waits on write back-pressure longer than the timeout aborts the connection (the
connection's one deadline, swept by the server tick): the app's `send` raises an OSError and its
next `receive` is `websocket.disconnect` with code 1006, while the server keeps serving other
connections. Both parsers, both engines; every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support import ServerProcess, run_server
from tests.websocket_support import APP, COMBOS, TEXT, RawWebSocket, frame

SEND_TIMEOUT = 1.0
TICK = 0.25  # the server's deadline sweep


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{h}-{w}" for h, w in COMBOS])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    http, ws = request.param
    options = ("--timeout-send", str(SEND_TIMEOUT), "--no-access-log")
    with run_server(APP, "--http", http, "--ws", ws, *options) as proc:
        yield proc


def echo(server: ServerProcess, text: bytes) -> None:
    with RawWebSocket(server.port) as other:
        other.handshake("/echo")
        other.send(frame(TEXT, text))
        assert other.recv_data() == (TEXT, text)


def test_client_that_stops_reading_is_disconnected_after_the_send_timeout(server: ServerProcess) -> None:
    before = server.output().count("flood send raised")
    with RawWebSocket(server.port, rcvbuf=16384) as stalled:
        start = time.monotonic()
        stalled.handshake("/flood-until-error?size=60000")
        # The client reads nothing more: the app's sends fill the buffers, then wait on back-pressure.
        echo(server, b"served while another client stalls")
        server.wait_for_matches(r"flood send raised ClientDisconnected", before + 1, timeout=10)
        elapsed = time.monotonic() - start
        assert stalled.closed(), "the stalled connection was not closed"
    assert SEND_TIMEOUT - 0.1 <= elapsed < SEND_TIMEOUT + 4 * TICK + 3
    server.wait_for_line(r"read nothing for 1s while the app was sending")
    server.wait_for_line(r"ws-disconnect /flood-until-error 1006")
    echo(server, b"still serving")
    assert "Exception in ASGI application" not in server.output()


def test_slow_reader_within_the_timeout_is_not_disconnected(server: ServerProcess) -> None:
    """Back-pressure that keeps being relieved is not a stall: only a send that waits too long counts."""
    with RawWebSocket(server.port, rcvbuf=16384) as reader:
        reader.handshake("/flood?count=60&size=60000")  # 3.6 MB: many drain waits
        expected = 60 * (60000 + 4)
        received = len(reader.buffer)
        reader.buffer = b""
        while received < expected:
            time.sleep(0.002)  # slower than the server, far faster than the timeout
            chunk = reader.sock.recv(1 << 16)
            assert chunk, "closed early"
            received += len(chunk)
        assert received == expected
