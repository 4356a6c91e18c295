"""HTTP/2 at the frame level, played with the `h2` library on a raw socket against a real server:
flow control per stream both ways, GOAWAY on a graceful shutdown with a stream in flight, and the
floods the first cut refuses (rapid reset, PING, CONTINUATION)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.support import ServerProcess, run_server

h2_connection = pytest.importorskip("h2.connection")
import h2.config  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
from hyperframe.frame import ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame  # noqa: E402

from tests.h2_client import Client, h2c_upgrade, raw_frames  # noqa: E402

APP = "tests.apps.http2_apps:app"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--http2") as process:
        yield process


def started(port: int) -> int:
    client = Client(port)
    try:
        stream_id = client.request("/started")
        client.read_until(lambda: client.ended(stream_id))
        return int(client.body(stream_id))
    finally:
        client.close()


def test_app_that_does_not_read_stops_only_its_streams_window(server: ServerProcess) -> None:
    client = Client(server.port)
    client.h2.increment_flow_control_window(2**30)  # our connection window never limits the server
    stalled = client.request("/no-read", body=b"", end=False)
    sent = 0

    def fill() -> bool:
        nonlocal sent
        while (window := client.h2.local_flow_control_window(stalled)) > 0:
            client.h2.send_data(stalled, b"s" * min(16384, window))
            sent += min(16384, window)
        client.flush()
        return False

    # Send while the server gives credit: it stops once the app holds its high-water mark unread.
    client.read_for(1.0, fill)
    fill()
    # Meanwhile another stream uploads four windows' worth and gets all of it echoed.
    payload = b"e" * 65536 * 4
    other = client.h2.get_next_available_stream_id()
    client.h2.send_headers(
        other, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo"), (b":authority", b"t")]
    )
    offset = 0

    def pump() -> bool:
        nonlocal offset
        while offset < len(payload) and client.h2.local_flow_control_window(other) > 0:
            size = min(16384, client.h2.local_flow_control_window(other), len(payload) - offset)
            client.h2.send_data(
                other, payload[offset : offset + size], end_stream=offset + size == len(payload)
            )
            offset += size
        client.flush()
        return client.ended(other)

    client.read_until(pump)
    assert client.body(other) == payload
    assert 65535 < sent <= 65536 + 65535  # one window past the cycle's 64 KiB high-water mark
    assert client.h2.local_flow_control_window(stalled) == 0  # still no credit for the stalled stream
    client.close()


def test_client_that_does_not_read_blocks_only_its_stream(server: ServerProcess) -> None:
    client = Client(server.port)
    client.h2.increment_flow_control_window(2**30)  # connection window open, stream windows 64 KiB
    client.flush()
    big = client.request("/big")  # 1 MiB response, never acknowledged on its stream
    client.read_until(lambda: len(client.body(big)) >= 65535, ack=False)
    small = client.request("/echo", body=b"still served")
    client.read_until(lambda: client.ended(small), ack=False)
    assert client.body(small) == b"still served"
    assert len(client.body(big)) == 65535 and not client.ended(big)
    client.close()


def count(port: int, path: str) -> int:
    client = Client(port)
    try:
        stream_id = client.request(path)
        client.read_until(lambda: client.ended(stream_id))
        return int(client.body(stream_id))
    finally:
        client.close()


@pytest.mark.parametrize("how", ["reset", "close"])
def test_client_disconnect_reaches_the_app(server: ServerProcess, how: str) -> None:
    before = count(server.port, "/disconnects")
    client = Client(server.port)
    stream_id = client.request("/wait-disconnect")
    server.wait_for_matches("waiting for disconnect", count=before + 1)
    if how == "reset":
        client.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()
    else:
        client.close()
    deadline = time.monotonic() + 5
    while count(server.port, "/disconnects") == before:
        assert time.monotonic() < deadline, "the app never saw http.disconnect"
        time.sleep(0.05)
    client.close()


def test_rapid_reset_is_cut_off_and_costs_no_app_work(server: ServerProcess) -> None:
    before = started(server.port)
    client = Client(server.port)
    for _ in range(300):
        stream_id = client.request("/counted", flush=False)
        client.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()  # HEADERS and RST_STREAM in one write, as the attack sends them
    try:
        client.flush()
        client.read_until(lambda: client.goaway() is not None or client.closed)
    except (ConnectionError, AssertionError):
        pass  # the server may close before every frame was written
    assert client.goaway() is not None
    assert client.goaway().error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    client.close()
    # Streams reset in the same read as their HEADERS never reach the app.
    assert started(server.port) - before <= 5  # only a HEADERS split from its RST_STREAM by a read


def test_ping_flood_is_cut_off(server: ServerProcess) -> None:
    client = Client(server.port)
    try:
        for i in range(1500):
            client.h2.ping(b"%08d" % i)
            client.flush()
        client.read_until(lambda: client.goaway() is not None)
    except (ConnectionError, AssertionError):
        pass
    assert client.goaway() is not None
    assert client.goaway().error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    client.close()


def test_continuation_flood_is_bounded(server: ServerProcess) -> None:
    client = Client(server.port)
    headers = HeadersFrame(1)
    headers.data = client.h2.encoder.encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")])
    try:
        client.sock.sendall(headers.serialize())
        for _ in range(80):  # h2 allows 64 CONTINUATION frames per header block
            frame = ContinuationFrame(1)
            frame.data = client.h2.encoder.encode([(b"x-flood", b"y" * 1000)])
            client.sock.sendall(frame.serialize())
        client.read_until(lambda: client.goaway() is not None or client.closed)
    except (ConnectionError, AssertionError):
        pass
    assert client.goaway() is not None
    assert client.goaway().error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    client.close()
    assert started(server.port) >= 0  # the server is alive and serving


@pytest.mark.parametrize("workers", ["1", "2"])
def test_goaway_on_term_finishes_the_stream_in_flight(workers: str) -> None:
    with run_server(APP, "--http2", "--workers", workers) as process:
        client = Client(process.port)
        stream_id = client.request("/slow")
        process.wait_for_line("slow request started")
        process.signal(signal.SIGTERM)
        frames = raw_frames(client.sock)
        goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert len(goaway) == 1 and goaway[0].last_stream_id == stream_id and goaway[0].error_code == 0
        data = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == stream_id]
        assert b"".join(f.data for f in data) == b"slow done"
        assert "END_STREAM" in data[-1].flags
        # Completed first, then told: a connection with a stream in flight gets its GOAWAY at the
        # first moment it has none (the h2 library's client fails in-flight streams on a GOAWAY).
        assert frames.index(goaway[0]) > frames.index(data[-1])
        assert process.wait_exit(timeout=10) == 0
        client.close()


def test_limit_concurrency_counts_streams() -> None:
    with run_server(APP, "--http2", "--limit-concurrency", "1") as process:
        client = Client(process.port)
        slow = client.request("/slow")
        process.wait_for_line("slow request started")
        refused = client.request("/other")
        client.read_until(lambda: client.ended(refused) and client.ended(slow))
        statuses = {
            e.stream_id: dict(e.headers)[b":status"]
            for e in client.events
            if isinstance(e, h2.events.ResponseReceived)
        }
        assert statuses == {slow: b"200", refused: b"503"}
        client.close()


def test_h2c_upgrade_with_a_chunked_body(server: ServerProcess) -> None:
    head, client = h2c_upgrade(server.port, [b"chunk one,", b" chunk two"])
    assert head.startswith(b"HTTP/1.1 101 ")
    client.flush()  # the client preface, after the 101
    client.read_until(lambda: client.ended(1))
    assert client.body(1) == b"chunk one, chunk two"
    client.close()


def test_h2c_upgrade_body_over_the_limit_is_413(server: ServerProcess) -> None:
    head, client = h2c_upgrade(server.port, [b"x" * 65536] * 17)  # just over 1 MiB
    assert head.startswith(b"HTTP/1.1 413 ")
    client.close()
