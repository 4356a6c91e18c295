"""WebSocket pings and back-pressure, end to end on both parsers and both engines.

- Pings: a client that stops answering is disconnected (1011) within interval + timeout; one that
  answers stays connected.
- Slow client: an app that sends faster than the client reads waits in `send()`; the server does
  not buffer the difference.
- Fast client, slow app: once `--ws-max-queue` messages wait for the app, the server stops reading;
  the client's sends block and nothing is lost once the app reads again.

Waits are bounded; "the sender has stalled" is read as "no progress for STALL seconds" because a
blocked send has no event to await. Memory is checked with the server's RSS (GET /rss).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServerProcess, run_server
from tests.websocket_support import APP, BINARY, CLOSE, COMBOS, PING, TEXT, RawWebSocket, frame

INTERVAL = 0.5  # --ws-ping-interval and --ws-ping-timeout
MAX_QUEUE = 4
SIZE = 60_000  # message size for the flow tests (a 4-byte frame length header)
STALL = 1.0
MiB = 1 << 20


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{h}-{w}" for h, w in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture(scope="module")
def server(combo: tuple[str, str]) -> Iterator[ServerProcess]:
    """Default pings (20 s): the back-pressure tests' clients do not read, so they cannot answer any."""
    http, ws = combo
    options = ("--ws-max-queue", str(MAX_QUEUE), "--no-access-log")
    with run_server(APP, "--http", http, "--ws", ws, *options) as proc:
        yield proc


@pytest.fixture(scope="module")
def ping_server(combo: tuple[str, str]) -> Iterator[ServerProcess]:
    http, ws = combo
    options = ("--ws-ping-interval", str(INTERVAL), "--ws-ping-timeout", str(INTERVAL), "--no-access-log")
    with run_server(APP, "--http", http, "--ws", ws, *options) as proc:
        yield proc


def get(server: ServerProcess, path: str) -> str:
    return httpx.get(f"{server.url}{path}", timeout=10).text


def rss(server: ServerProcess) -> int:
    return int(get(server, "/rss"))


def test_client_that_stops_answering_pings_is_disconnected(ping_server: ServerProcess) -> None:
    server = ping_server
    before = server.output().count("did not answer a ping")
    with RawWebSocket(server.port) as raw:
        raw.handshake("/wait")
        start = time.monotonic()
        # The client reads nothing and answers nothing from here on.
        server.wait_for_matches(r"did not answer a ping within 0.5s", before + 1, timeout=5)
        elapsed = time.monotonic() - start
        opcode, _, _ = raw.recv_frame()
        assert opcode == PING
        assert raw.closed()
    assert 2 * INTERVAL - 0.1 <= elapsed < 2 * INTERVAL + 1.5
    server.wait_for_line(r"ws-disconnect /wait 1011 keepalive ping timeout")


def test_client_that_answers_pings_stays(ping_server: ServerProcess) -> None:
    server = ping_server
    with RawWebSocket(server.port) as raw:
        raw.handshake("/echo")
        for _ in range(3):  # each ping arrives about INTERVAL after the previous pong
            opcode, _, payload = raw.recv_frame()
            assert opcode == PING
            raw.send(frame(0xA, payload))
        raw.send(frame(TEXT, b"still here"))
        assert raw.recv_data() == (TEXT, b"still here")


def test_slow_client_makes_send_wait(server: ServerProcess) -> None:
    count = 800  # 48 MB: far more than socket buffers hold
    base_sent = json.loads(get(server, "/flood-status"))["sent"]
    base_rss = rss(server)
    with RawWebSocket(server.port, rcvbuf=16384) as raw:
        raw.handshake(f"/flood?count={count}&size={SIZE}")
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + 15
        while time.monotonic() - since < STALL:  # until send() has made no progress for STALL
            assert time.monotonic() < deadline, "the app's sends never stalled"
            sent = json.loads(get(server, "/flood-status"))["sent"] - base_sent
            if sent != last:
                last, since = sent, time.monotonic()
            time.sleep(0.1)
        assert last < 16 * MiB, f"the app got {last} bytes out to a client that reads nothing"
        assert rss(server) - base_rss < 24 * MiB
        expected = count * (SIZE + 4)  # every message arrives once the client reads
        received = len(raw.buffer)
        raw.buffer = b""
        while received < expected:
            chunk = raw.sock.recv(1 << 20)
            assert chunk, "closed early"
            received += len(chunk)
        assert received == expected
        raw.send(frame(CLOSE, b"\x03\xe8"))
        assert raw.closed()


def test_fast_client_is_paused_at_max_queue(server: ServerProcess) -> None:
    count = 1500  # 90 MB
    message = frame(BINARY, bytes(SIZE), zero_key=True)
    base_rss = rss(server)
    with RawWebSocket(server.port) as raw:
        raw.handshake("/slow-read")  # the app does not read until `release-read` is set
        raw.sock.setblocking(False)
        stream = memoryview(message * count)
        sent, since = 0, time.monotonic()
        deadline = time.monotonic() + 15
        while sent < len(stream) and time.monotonic() - since < STALL:
            assert time.monotonic() < deadline
            try:
                sent += raw.sock.send(stream[sent : sent + (1 << 20)])
                since = time.monotonic()
            except BlockingIOError:
                time.sleep(0.05)
        assert sent < len(stream), "the server kept reading for an app that reads nothing"
        assert rss(server) - base_rss < 24 * MiB
        get(server, "/event/set?name=release-read")
        raw.sock.setblocking(True)
        raw.sock.settimeout(15)
        raw.sock.sendall(stream[sent:])
        raw.send(frame(TEXT, b"end"))
        opcode, payload = raw.recv_data()
        assert opcode == TEXT
        assert json.loads(payload) == {"count": count, "bytes": count * SIZE}


def test_server_keeps_serving_while_a_client_is_paused(server: ServerProcess) -> None:
    """A paused connection is only that connection: others are served meanwhile."""
    with RawWebSocket(server.port) as paused:
        paused.handshake("/wait")
        paused.send(b"".join(frame(BINARY, bytes(SIZE), zero_key=True) for _ in range(MAX_QUEUE + 2)))
        with RawWebSocket(server.port) as other:
            other.handshake("/echo")
            other.send(frame(TEXT, b"hello"))
            assert other.recv_data() == (TEXT, b"hello")
