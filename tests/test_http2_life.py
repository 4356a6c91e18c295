"""An HTTP/2 connection's life against a real server, at the frame level (the `h2` library on a raw
socket): its deadlines (the first request's head, a stalled header block, keep-alive, zero-window
stalls on a stream and on the connection), requests refused on their own stream (malformed heads,
bodies at odds with their content-length, --limit-request-body) while the other streams carry on,
--timeout-request, the `tls` extension, --shutdown-delay, recycling by --limit-max-requests with
nothing lost, and a long connection whose per-stream tables stay flat."""

from __future__ import annotations

import json
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.errors
import h2.events
import httpx
import pytest
from hyperframe.frame import GoAwayFrame, HeadersFrame

from tests.h2_client import Client, FrameReader, get_json, h2c_upgrade
from tests.support import ServerProcess, run_server

APP = "tests.apps.http2_apps:app"
BASE = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"t")]


def status(client: Client, stream_id: int) -> bytes | None:
    for event in client.events:
        if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
            return dict(event.headers)[b":status"]  # type: ignore[no-any-return]
    return None


def reset_code(client: Client, stream_id: int) -> int | None:
    for event in client.events:
        if isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
            return int(event.error_code)
    return None


def wait_closed(client: Client, timeout: float) -> float:
    """Read (acknowledging nothing) until the server closes; how long that took."""
    start = time.monotonic()
    client.read_until(lambda: client.closed, timeout=timeout)
    return time.monotonic() - start


# Deadlines


@pytest.fixture(scope="module")
def short_keep_alive() -> Iterator[ServerProcess]:
    with run_server(APP, "--http2", "--timeout-keep-alive", "1", "--timeout-request-header", "30") as process:
        yield process


@pytest.fixture(scope="module")
def short_head() -> Iterator[ServerProcess]:
    with run_server(APP, "--http2", "--timeout-keep-alive", "30", "--timeout-request-header", "1") as process:
        yield process


def test_idle_connection_gets_goaway_after_keep_alive(short_keep_alive: ServerProcess) -> None:
    client = Client(short_keep_alive.port)
    slow = client.request("/sleep", flush=False)
    client.h2.send_headers(  # the query string is the sleep: longer than the keep-alive timeout
        slow + 2,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/sleep?1.5"), (b":authority", b"t")],
        end_stream=True,
    )
    client.flush()
    client.read_until(lambda: client.ended(slow) and client.ended(slow + 2))
    assert client.body(slow + 2) == b"slept"  # an open stream is never idle
    elapsed = wait_closed(client, timeout=15)
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert goaway.last_stream_id == slow + 2  # nothing the client sent was dropped
    assert 0.5 < elapsed < 10  # 1 s keep-alive, not the 30 s head deadline (bound loose for a loaded machine)
    client.close()


def test_no_request_in_time_closes_the_connection(short_head: ServerProcess) -> None:
    client = Client(short_head.port)  # the preface and SETTINGS, then nothing
    elapsed = wait_closed(client, timeout=15)
    goaway = client.goaway()
    assert goaway is not None and goaway.last_stream_id == 0
    assert elapsed < 10  # the 1 s head deadline, not the 30 s keep-alive
    client.close()


def test_stalled_header_block_closes_the_connection(short_head: ServerProcess) -> None:
    client = Client(short_head.port)
    first = client.request("/")
    client.read_until(lambda: client.ended(first))
    frame = HeadersFrame(first + 2)  # no END_HEADERS: CONTINUATION frames owed, never sent
    frame.data = client.h2.encoder.encode(BASE)
    client.sock.sendall(frame.serialize())
    elapsed = wait_closed(client, timeout=15)
    assert client.goaway() is not None and client.goaway().last_stream_id == first
    assert elapsed < 10  # the header deadline, not the 30 s keep-alive
    client.close()


@pytest.fixture(scope="module")
def short_send() -> Iterator[ServerProcess]:
    with run_server(APP, "--http2", "--timeout-send", "1") as process:
        yield process


def test_zero_window_stream_is_reset_and_its_app_released(short_send: ServerProcess) -> None:
    before = get_json(short_send.port, "/counters")["big_done"]
    client = Client(short_send.port)
    client.h2.increment_flow_control_window(2**30)  # the connection window stays open
    client.flush()
    big = client.request("/big")  # 1 MiB; its stream window (64 KiB) is never opened again
    client.read_until(lambda: reset_code(client, big) is not None, ack=False, timeout=15)
    assert reset_code(client, big) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(client.body(big)) == 65535
    other = client.request("/echo", body=b"still served")  # the connection carries on
    client.read_until(lambda: client.ended(other))
    assert client.body(other) == b"still served" and client.goaway() is None
    state = client.request("/state")
    client.read_until(lambda: client.ended(state))
    tables = json.loads(client.body(state))
    assert tables["streams"] == 1 and tables["blocked"] == 0  # only /state itself: nothing held
    client.close()
    deadline = time.monotonic() + 5
    while get_json(short_send.port, "/counters")["big_done"] == before:  # the app's send() returned
        assert time.monotonic() < deadline, "the app's task is still held by the stalled stream"
        time.sleep(0.05)


def test_zero_connection_window_closes_the_connection(short_send: ServerProcess) -> None:
    client = Client(short_send.port)
    big = client.request("/big")  # the connection window (64 KiB) is never opened either
    start = time.monotonic()
    client.read_until(lambda: client.closed, ack=False, timeout=15)
    assert time.monotonic() - start < 10
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(client.body(big)) == 65535
    client.close()


@pytest.fixture(scope="module")
def slow_body() -> Iterator[ServerProcess]:
    with run_server(
        APP,
        "--http2",
        "--timeout-request-body",
        "1",
        "--limit-request-body-rate",
        "1000",
        "--limit-request-body-rate-grace",
        "1",
    ) as process:
        yield process


@pytest.mark.parametrize("trickle", [False, True])
def test_body_deadline_and_rate_floor_per_stream(slow_body: ServerProcess, trickle: bool) -> None:
    """No body for --timeout-request-body, or one under the rate floor: 408 on that stream only."""
    before = get_json(slow_body.port, "/counters")
    client = Client(slow_body.port)
    stalled = client.request("/echo", body=b"", end=False)
    other = client.request("/sleep?0.2")  # served meanwhile; the connection is not the one timed
    start = time.monotonic()
    while status(client, stalled) is None:
        assert time.monotonic() - start < 15, "no 408"
        if trickle:  # 10 bytes every 0.2 s: never a 1 s gap, far below 1000 bytes/s
            client.h2.send_data(stalled, b"t" * 10)
            client.flush()
        client.read_for(0.2, lambda: status(client, stalled) is not None)
    client.read_until(lambda: client.ended(stalled) and client.ended(other))
    assert status(client, stalled) == b"408" and client.body(other) == b"slept"
    assert 0.8 < time.monotonic() - start < 10  # 1 s, never the 60 s defaults
    again = client.request("/echo", body=b"fine")
    client.read_until(lambda: client.ended(again))
    assert client.body(again) == b"fine" and client.goaway() is None
    client.close()
    after = get_json(slow_body.port, "/counters")
    assert after["echo_disconnects"] == before["echo_disconnects"] + 1
    reason = "Request body too slow" if trickle else "Request body timeout"
    slow_body.wait_for_line(reason)


# Requests refused on their own stream


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--http2", "--limit-request-body", "1000", "--timeout-request", "1") as process:
        yield process


def raw_client(port: int) -> Client:
    """A client that sends header fields exactly as given (h2 would lowercase and check them)."""
    client = Client(port)
    client.h2.config.validate_outbound_headers = False
    client.h2.config.normalize_outbound_headers = False
    return client


MALFORMED = {
    "connection": [*BASE, (b"connection", b"keep-alive")],
    "keep-alive": [*BASE, (b"keep-alive", b"timeout=5")],
    "proxy-connection": [*BASE, (b"proxy-connection", b"keep-alive")],
    "transfer-encoding": [*BASE, (b"transfer-encoding", b"chunked")],
    "upgrade": [*BASE, (b"upgrade", b"websocket")],
    "te-gzip": [*BASE, (b"te", b"gzip")],
    "uppercase-name": [*BASE, (b"X-Upper", b"1")],
    "missing-path": [BASE[0], BASE[1], BASE[3]],
    "missing-scheme": [BASE[0], BASE[2], BASE[3]],
    "missing-method": BASE[1:],
    "duplicate-method": [*BASE, (b":method", b"POST")],
    "pseudo-after-regular": [*BASE[:3], (b"x-a", b"1"), BASE[3]],
    "unknown-pseudo": [*BASE, (b":protocol", b"websocket")],
    "response-pseudo": [*BASE, (b":status", b"200")],
    "value-with-newline": [*BASE, (b"x-a", b"1\n2")],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_resets_only_its_stream(server: ServerProcess, case: str) -> None:
    before = get_json(server.port, "/counters")
    client = raw_client(server.port)
    slow = client.request("/sleep?0.3")  # in flight on the same connection throughout
    bad = client.h2.get_next_available_stream_id()
    client.h2.send_headers(bad, MALFORMED[case], end_stream=True)
    client.flush()
    good = client.request("/echo", body=b"fine")
    client.read_until(
        lambda: client.ended(good) and client.ended(slow) and reset_code(client, bad) is not None
    )
    assert reset_code(client, bad) == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert client.body(good) == b"fine" and client.body(slow) == b"slept"
    assert client.goaway() is None
    client.close()
    assert get_json(server.port, "/counters")["echoed"] == before["echoed"] + 1


def test_stream_past_the_concurrency_setting_is_refused_alone() -> None:
    with run_server(APP, "--http2", "--http2-max-concurrent-streams", "2") as process:
        client = Client(process.port)  # sends before it reads the server's SETTINGS: nothing stops it
        first, second = client.request("/sleep?0.5"), client.request("/sleep?0.5")
        third = client.request("/echo", body=b"x" * 100)  # a body too: its DATA must not break anything
        client.read_until(lambda: reset_code(client, third) is not None)
        assert reset_code(client, third) == h2.errors.ErrorCodes.REFUSED_STREAM  # not processed: retry
        client.read_until(lambda: client.ended(first) and client.ended(second))
        fourth = client.request("/echo", body=b"retried")
        client.read_until(lambda: client.ended(fourth))
        assert client.body(fourth) == b"retried" and client.goaway() is None
        client.close()


def test_te_trailers_is_allowed(server: ServerProcess) -> None:
    client = raw_client(server.port)
    stream_id = client.h2.get_next_available_stream_id()
    client.h2.send_headers(stream_id, [*BASE, (b"te", b"trailers")], end_stream=True)
    client.flush()
    client.read_until(lambda: client.ended(stream_id))
    assert status(client, stream_id) == b"200"
    client.close()


@pytest.mark.parametrize(("declared", "sent"), [(5, b"0123456789"), (10, b"01234"), (5, b"")])
def test_body_at_odds_with_content_length_resets_only_its_stream(
    server: ServerProcess, declared: int, sent: bytes
) -> None:
    before = get_json(server.port, "/counters")
    client = Client(server.port)
    slow = client.request("/sleep?0.3")
    bad = client.h2.get_next_available_stream_id()
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo"), (b":authority", b"t")]
    client.h2.send_headers(bad, [*headers, (b"content-length", b"%d" % declared)])
    client.flush()
    time.sleep(0.1)  # the app is running and waits for the body
    client.h2.send_data(bad, sent, end_stream=True)
    client.flush()
    good = client.request("/echo", body=b"fine")
    client.read_until(
        lambda: client.ended(good) and client.ended(slow) and reset_code(client, bad) is not None
    )
    assert reset_code(client, bad) == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert client.body(good) == b"fine" and client.goaway() is None
    client.close()
    after = get_json(server.port, "/counters")
    assert after["echoed"] == before["echoed"] + 1  # only the good one: never the broken body
    assert after["echo_disconnects"] == before["echo_disconnects"] + 1  # the app was told


def test_content_length_over_the_body_limit_is_413_before_the_app(server: ServerProcess) -> None:
    before = get_json(server.port, "/counters")
    client = Client(server.port)
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo"), (b":authority", b"t")]
    big = client.h2.get_next_available_stream_id()
    client.h2.send_headers(big, [*headers, (b"content-length", b"5000")])
    client.flush()
    client.read_until(lambda: client.ended(big))
    assert status(client, big) == b"413"
    good = client.request("/echo", body=b"fine")
    client.read_until(lambda: client.ended(good))
    assert client.body(good) == b"fine"
    client.close()
    after = get_json(server.port, "/counters")
    assert after["echo_disconnects"] == before["echo_disconnects"]  # the app never ran for it


@pytest.mark.parametrize("path", ["/echo", "/start-then-echo"])
def test_streamed_body_over_the_limit(server: ServerProcess, path: str) -> None:
    before = get_json(server.port, "/counters")
    client = Client(server.port)
    stream_id = client.request(path, body=b"", end=False)
    time.sleep(0.1)  # the app waits for the body (and, for /start-then-echo, its response began)
    for _ in range(3):
        client.h2.send_data(stream_id, b"x" * 400)  # no content-length: 1200 bytes pass the 1000 limit
        client.flush()
    client.read_until(lambda: client.ended(stream_id) or reset_code(client, stream_id) is not None)
    if path == "/echo":
        assert status(client, stream_id) == b"413"
    else:
        assert status(client, stream_id) == b"200" and client.body(stream_id) == b"started "
        client.read_until(lambda: reset_code(client, stream_id) is not None)
        assert reset_code(client, stream_id) == h2.errors.ErrorCodes.CANCEL
    good = client.request("/echo", body=b"fine")
    client.read_until(lambda: client.ended(good))
    assert client.body(good) == b"fine" and client.goaway() is None
    client.close()
    after = get_json(server.port, "/counters")
    assert after["echoed"] == before["echoed"] + 1  # the good one; the app never got a cut body as whole
    assert after["echo_disconnects"] == before["echo_disconnects"] + 1


def test_h2c_upgrade_body_follows_the_body_limit(server: ServerProcess) -> None:
    head, client = h2c_upgrade(server.port, [b"x" * 600, b"y" * 600])  # 1200 > --limit-request-body 1000
    assert head.startswith(b"HTTP/1.1 413 ")
    client.close()
    head, client = h2c_upgrade(server.port, [b"x" * 600])
    assert head.startswith(b"HTTP/1.1 101 ")
    client.flush()
    client.read_until(lambda: client.ended(1))
    assert client.body(1) == b"x" * 600
    client.close()


def test_timeout_request_answers_504_and_cancels_the_app(server: ServerProcess) -> None:
    before = get_json(server.port, "/counters")["cancelled"]
    client = Client(server.port)
    hang = client.request("/hang")
    other = client.request("/sleep?0.2")
    client.read_until(lambda: client.ended(hang) and client.ended(other), timeout=15)
    assert status(client, hang) == b"504" and client.body(other) == b"slept"
    again = client.request("/")  # the connection goes on
    client.read_until(lambda: client.ended(again))
    client.close()
    assert get_json(server.port, "/counters")["cancelled"] == before + 1


def test_tls_extension_in_http2_scopes(tls_certs: tuple[Any, Path, Path]) -> None:
    ca, cert_file, key_file = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        run_server(
            APP, "--http2", "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)
        ) as process,
        httpx.Client(http2=True, verify=context, timeout=5.0) as client,
    ):
        response = client.get(process.url + "/tls")
    assert response.http_version == "HTTP/2"
    info = response.json()
    assert info["http_version"] == "2" and info["tls_version"] in (0x0303, 0x0304)


# Lifecycle


def test_shutdown_delay_keeps_serving_streams_then_goaway() -> None:
    with run_server(APP, "--http2", "--shutdown-delay", "1") as process:
        client = Client(process.port)
        first = client.request("/")
        client.read_until(lambda: client.ended(first))
        process.signal(signal.SIGTERM)
        process.wait_for_line("shutdown delay|serving for")
        during = client.request("/echo", body=b"during the delay")
        client.read_until(lambda: client.ended(during))
        assert client.body(during) == b"during the delay" and client.goaway() is None
        start = time.monotonic()
        client.read_until(lambda: client.goaway() is not None or client.closed, timeout=5)
        assert client.goaway() is not None and client.goaway().last_stream_id == during
        assert time.monotonic() - start > 0.3  # only after the delay
        client.read_until(lambda: client.closed, timeout=5)  # nothing in flight: the server closes
        client.close()
        assert process.wait_exit(timeout=10) == 0


def test_recycling_by_max_requests_loses_no_stream() -> None:
    """Four streams in flight at a time on one connection while the worker recycles every 7
    requests: each stream is answered, or refused (REFUSED_STREAM, or above the GOAWAY's last
    stream id: never processed) and retried on a new connection. Lost: 0. The client is never
    idle, so each GOAWAY comes when the drain bound (1 s) expires, new streams served until then:
    streams of 0.5 s keep that to ~15 per connection, so the 60 still span several recycles."""
    with run_server(APP, "--http2", "--workers", "1", "--limit-max-requests", "7") as process:
        wanted, answered, retried, recycles = 60, 0, 0, 0
        pending = list(range(wanted))
        while pending:
            client = Client(process.port)
            sock = client.sock
            reader = FrameReader(sock)
            open_streams: dict[int, int] = {}
            goaway: Any = None
            while (pending or open_streams) and goaway is None and not reader.closed:
                while pending and len(open_streams) < 4:
                    stream_id = client.request("/sleep?0.5")
                    open_streams[stream_id] = pending.pop()
                frame = reader.next(timeout=10)
                if frame is None:
                    break
                if isinstance(frame, GoAwayFrame):
                    goaway = frame
                elif frame.type == 0x0 and "END_STREAM" in frame.flags and frame.stream_id in open_streams:
                    open_streams.pop(frame.stream_id)
                    answered += 1
                elif frame.type == 0x3 and frame.stream_id in open_streams:  # RST_STREAM
                    assert frame.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                    pending.append(open_streams.pop(frame.stream_id))
                    retried += 1
            if goaway is not None:
                recycles += 1
                # The streams it promises are finished before the connection closes.
                while open_streams and (frame := reader.next(timeout=10)) is not None:
                    if frame.stream_id > goaway.last_stream_id:
                        continue
                    if frame.type == 0x0 and "END_STREAM" in frame.flags and frame.stream_id in open_streams:
                        open_streams.pop(frame.stream_id)
                        answered += 1
                for stream_id in [s for s in open_streams if s > goaway.last_stream_id]:
                    pending.append(open_streams.pop(stream_id))  # never processed: safe to retry
                    retried += 1
            assert not open_streams, (
                f"lost streams {sorted(open_streams)} (GOAWAY {goaway and goaway.last_stream_id})"
            )
            sock.close()
        assert answered == wanted
        assert recycles >= 3


def test_long_connection_forgets_closed_streams(server: ServerProcess) -> None:
    """5,000 sequential requests on one connection: the per-stream tables stay as they were."""
    client = Client(server.port)

    def run(count: int) -> None:
        for _ in range(count):
            stream_id = client.request("/")
            client.read_until(lambda sid=stream_id: client.ended(sid))
            client.events.clear()

    def tables() -> dict[str, int]:
        stream_id = client.request("/state")
        client.read_until(lambda: client.ended(stream_id))
        result: dict[str, int] = json.loads(client.body(stream_id))
        client.events.clear()
        return result

    run(1500)
    early = tables()
    run(3500)
    late = tables()
    assert late == early, (early, late)
    assert late["streams"] == 1 and late["blocked"] == 0 and late["length_errors"] == 0
    assert late["h2_streams"] <= 2 and late["h2_closed_streams"] <= 1024
    client.close()
