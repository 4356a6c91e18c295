"""palfrey's sans-IO HTTP/2 server state machine (palfrey/http2/wire/machine.py) driven by the `h2`
library's client as the peer, in process: requests and responses, flow control both ways (an app
that does not read stalls only its stream), settings, refused and reset streams, GOAWAY, and a
long connection that keeps no per-request state."""

from __future__ import annotations

import base64
import random
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from palfrey.http2.wire import frames as f
from palfrey.http2.wire import machine as m
from palfrey.http2.wire.errors import H2ConnectionError
from palfrey.http2.wire.writer import frame_head

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"t")]
POST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo"), (b":authority", b"t")]


class Pair:
    """An h2 client and the machine, with the bytes between them carried by hand."""

    def __init__(self, **settings: Any) -> None:
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.server = m.ServerMachine(**settings)
        self.server.initiate()
        self.client.initiate_connection()
        self.to_server()
        self.to_client()
        self.to_server()  # the client's SETTINGS ACK

    def to_server(self) -> list[m.Event]:
        return self.server.receive(self.client.data_to_send())

    def to_client(self) -> list[Any]:
        return self.client.receive_data(self.server.data_to_send())

    def respond(self, stream_id: int, body: bytes = b"ok") -> None:
        self.server.send_headers(
            stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
        )
        self.server.send_data(stream_id, body, end_stream=True)


def kinds(events: list[Any]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_get_round_trip() -> None:
    pair = Pair()
    pair.client.send_headers(1, GET, end_stream=True)
    assert pair.to_server() == [(m.REQUEST, 1, GET, True)]
    pair.respond(1, b"hello")
    events = pair.to_client()
    assert kinds(events) == ["ResponseReceived", "DataReceived", "StreamEnded"]
    assert (
        events[0].headers == [(b":status", b"200"), (b"content-length", b"5")] and events[1].data == b"hello"
    )
    assert pair.server.streams == {}


def test_post_body_and_credit_follows_the_app() -> None:
    """Connection credit comes back as data arrives; a stream's only when the app consumed it."""
    pair = Pair()
    pair.client.send_headers(1, POST)
    pair.client.send_headers(3, POST)
    pair.to_server()
    for start in range(0, 65535, 16384):
        pair.client.send_data(1, b"a" * min(16384, 65535 - start))
    for start in range(0, 40000, 16384):
        pair.client.send_data(3, b"b" * min(16384, 40000 - start))
    events = pair.to_server()
    received: dict[int, int] = {}
    for kind, stream_id, data, _ in events:
        assert kind == m.BODY
        received[stream_id] = received.get(stream_id, 0) + len(data)
    assert received == {1: 65535, 3: 40000}
    pair.to_client()
    assert pair.client.local_flow_control_window(1) == 0  # stream 1's app has not read: stalled
    assert pair.client.local_flow_control_window(3) == 65535 - 40000  # stream 3 is not affected
    pair.server.consumed(3, 40000)
    pair.to_client()
    assert pair.client.local_flow_control_window(3) == 65535
    assert pair.client.local_flow_control_window(1) == 0
    pair.client.send_data(3, b"c", end_stream=True)
    assert pair.to_server() == [(m.BODY, 3, b"c", True)]


def test_send_side_windows() -> None:
    pair = Pair()
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    assert (m.CONTROL, 0, f.SETTINGS, False) in pair.to_server()
    pair.to_client()
    pair.client.send_headers(1, GET, end_stream=True)
    pair.to_server()
    pair.server.send_headers(1, [(b":status", b"200")])
    assert pair.server.sendable(1) == 10
    pair.server.send_data(1, b"0123456789")
    assert pair.server.sendable(1) == 0
    with pytest.raises(ValueError):
        pair.server.send_data(1, b"x")
    events = pair.to_client()
    pair.client.acknowledge_received_data(10, 1)
    pair.client.increment_flow_control_window(5, stream_id=1)
    assert (m.WINDOW, 1, 5, False) in pair.to_server()
    assert pair.server.sendable(1) == 15
    pair.server.send_data(1, b"done", end_stream=True)
    events = pair.to_client()
    assert "StreamEnded" in kinds(events)


def test_concurrent_stream_limit_refuses_only_the_extra_stream() -> None:
    pair = Pair(max_concurrent_streams=2)
    for stream_id in (1, 3):
        pair.client.send_headers(stream_id, GET, end_stream=True)
    pair.to_server()
    # the h2 client honours the limit itself: the third stream is sent raw
    encoded = pair.client.encoder.encode(GET)
    raw = frame_head(len(encoded), f.HEADERS, f.END_HEADERS | f.END_STREAM, 5) + encoded
    assert pair.server.receive(raw) == [(m.REFUSED, 5, None, False)]
    assert pair.server.data_to_send() == frame_head(4, f.RST_STREAM, 0, 5) + (7).to_bytes(4, "big")
    pair.respond(1)
    assert "StreamEnded" in kinds(pair.to_client())  # the streams within the limit carry on


def test_header_list_over_the_limit_leaves_the_stream_for_a_431() -> None:
    pair = Pair(max_header_list_size=1000)
    pair.client.send_headers(1, [*GET, (b"x-big", b"v" * 2000)], end_stream=True)
    assert pair.to_server() == [(m.TOO_LARGE, 1, None, True)]
    pair.server.send_headers(1, [(b":status", b"431")], end_stream=True)
    assert kinds(pair.to_client()) == ["ResponseReceived", "StreamEnded"]
    pair.client.send_headers(3, GET, end_stream=True)
    assert pair.to_server() == [(m.REQUEST, 3, GET, True)]  # HPACK state still in step


def test_body_longer_than_content_length_resets_the_stream() -> None:
    pair = Pair()
    pair.client.send_headers(1, [*POST, (b"content-length", b"3")])
    pair.to_server()
    pair.server.expect_length(1, 3)
    raw = frame_head(4, f.DATA, f.END_STREAM, 1) + b"abcd"  # h2's client would refuse to send it
    assert pair.server.receive(raw) == [(m.RESET, 1, 0x1, False)]
    assert [e.error_code for e in pair.to_client() if isinstance(e, h2.events.StreamReset)] == [1]


def test_ping_settings_reset_and_goaway() -> None:
    pair = Pair()
    pair.client.ping(b"12345678")
    assert pair.to_server() == [(m.CONTROL, 0, f.PING, False)]
    assert kinds(pair.to_client()) == ["PingAckReceived"]
    pair.client.send_headers(1, POST)
    pair.to_server()
    pair.client.reset_stream(1, 8)
    assert pair.to_server() == [(m.RESET, 1, 8, False)]
    assert pair.server.streams == {}
    pair.client.send_headers(3, GET, end_stream=True)
    pair.to_server()
    pair.respond(3)
    pair.server.goaway()
    encoded = pair.client.encoder.encode(GET)
    late = frame_head(len(encoded), f.HEADERS, f.END_HEADERS | f.END_STREAM, 5) + encoded
    assert pair.server.receive(late) == []  # a stream after our GOAWAY is ignored (§6.8)
    events = pair.to_client()
    terminated = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert terminated[0].last_stream_id == 3
    pair.client.close_connection(0)
    assert pair.to_server() == [(m.GOAWAY, 0, (0, 0), False)]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame_head(1, f.DATA, 0, 9) + b"x", 0x1),  # DATA on an idle stream
        (frame_head(4, f.WINDOW_UPDATE, 0, 9) + b"\x00\x00\x00\x01", 0x1),  # idle stream
        (frame_head(4, f.RST_STREAM, 0, 9) + b"\x00\x00\x00\x08", 0x1),  # idle stream
        (frame_head(1, f.DATA, 0, 2) + b"x", 0x1),  # even: a stream only the server could open
        (frame_head(1, f.HEADERS, f.END_HEADERS, 2) + b"\x82", 0x1),  # even stream id
        (frame_head(4, f.WINDOW_UPDATE, 0, 0) + (2**31 - 1).to_bytes(4, "big"), 0x3),  # overflow
    ],
)
def test_connection_errors(raw: bytes, code: int) -> None:
    pair = Pair()
    with pytest.raises(H2ConnectionError) as error:
        pair.server.receive(raw)
    assert error.value.code == code


def test_data_beyond_the_stream_window_is_a_stream_error() -> None:
    pair = Pair(initial_window_size=65535)
    pair.client.send_headers(1, POST)
    pair.to_server()
    chunk = frame_head(16384, f.DATA, 0, 1) + b"z" * 16384
    events = pair.server.receive(chunk * 5)  # 81,920 bytes into a 65,535-byte window
    assert events[-2:] == [(m.RESET, 1, 0x3, False), (m.CONTROL, 0, f.DATA, False)]  # 5th: stream gone
    assert pair.server.receive(chunk) == [(m.CONTROL, 0, f.DATA, False)]  # late DATA: dropped, counted


def test_many_requests_keep_no_state() -> None:
    pair = Pair()
    for i in range(3000):
        stream_id = 1 + 2 * i
        pair.client.send_headers(stream_id, GET, end_stream=True)
        assert pair.to_server() == [(m.REQUEST, stream_id, GET, True)]
        pair.respond(stream_id)
        assert "StreamEnded" in kinds(pair.to_client())
    assert pair.server.streams == {} and pair.server.highest_id == 5999
    assert len(pair.server.decoder.blocks) <= 2 and len(pair.server.encoder.heads) <= 2


def test_trailers_and_headers_on_ended_streams() -> None:
    pair = Pair()
    pair.client.send_headers(1, POST)
    pair.client.send_data(1, b"body")
    pair.client.send_headers(1, [(b"x-checksum", b"abc")], end_stream=True)
    assert pair.to_server() == [
        (m.REQUEST, 1, POST, False),
        (m.BODY, 1, b"body", False),
        (m.TRAILERS, 1, [(b"x-checksum", b"abc")], True),
    ]
    encoded = pair.client.encoder.encode([(b"x-more", b"1")])
    again = frame_head(len(encoded), f.HEADERS, f.END_HEADERS | f.END_STREAM, 1) + encoded
    assert pair.server.receive(again) == [(m.RESET, 1, 0x5, False)]  # STREAM_CLOSED: half-closed (remote)
    pair.client.send_headers(3, POST)
    pair.to_server()
    encoded = pair.client.encoder.encode([(b"x-t", b"1")])
    open_trailers = frame_head(len(encoded), f.HEADERS, f.END_HEADERS, 3) + encoded
    assert pair.server.receive(open_trailers) == [(m.RESET, 3, 0x1, False)]  # trailers must end the stream
    encoded = pair.client.encoder.encode(GET)
    closed = frame_head(len(encoded), f.HEADERS, f.END_HEADERS | f.END_STREAM, 3) + encoded
    assert pair.server.receive(closed) == [(m.CONTROL, 0, f.HEADERS, False)]  # forgotten: RST_STREAM only
    assert pair.server.data_to_send().endswith(frame_head(4, f.RST_STREAM, 0, 3) + (5).to_bytes(4, "big"))


def test_padding_is_credited_back_without_the_app() -> None:
    pair = Pair(initial_window_size=65535)
    pair.client.send_headers(1, POST)
    pair.to_server()
    payload = bytes([200]) + b"d" * 100 + bytes(200)  # Pad Length 200, 100 data bytes, padding
    events = pair.server.receive(frame_head(len(payload), f.DATA, f.PADDED, 1) + payload)
    assert events == [(m.BODY, 1, b"d" * 100, False)]
    stream = pair.server.streams[1]
    assert stream.window == 65535 - 301 and stream.unacked == 201
    pair.server.consumed(1, 100)
    assert stream.unacked == 301  # below half the window: batched, no WINDOW_UPDATE yet


def test_mutated_byte_streams_only_raise_protocol_errors() -> None:
    """Random corruptions of a valid 20-request connection: the machine answers or raises
    H2ConnectionError (GOAWAY), never an unexpected exception (bounded, seeded)."""
    rng = random.Random(5)
    pair = Pair()
    for i in range(20):
        pair.client.send_headers(1 + 2 * i, [*POST, (b"x-n", str(i).encode())])
        pair.client.send_data(1 + 2 * i, b"body", end_stream=True)
    valid = pair.client.data_to_send()
    for _ in range(400):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        server = m.ServerMachine(preface=False)
        server.reader.want_settings = False  # the stream starts after the handshake
        try:
            for start in range(0, len(data), 37):
                for kind, stream_id, _, end_stream in server.receive(bytes(data[start : start + 37])):
                    if kind in (m.REQUEST, m.BODY) and end_stream:
                        server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        except H2ConnectionError:
            pass


def test_h2c_upgrade_makes_the_request_stream_1() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100}
    )
    http2_settings = client.initiate_upgrade_connection()  # the HTTP2-Settings header's value
    server = m.ServerMachine()
    server.initiate()
    server.upgrade(base64.urlsafe_b64decode(http2_settings + b"=" * (-len(http2_settings) % 4)))
    assert server.sendable(1) == 100  # the client's settings apply at once
    server.send_headers(1, [(b":status", b"200")])
    server.send_data(1, b"upgraded", end_stream=True)
    assert server.streams == {}
    events = client.receive_data(server.data_to_send())
    assert kinds(events) == [
        "RemoteSettingsChanged",
        "WindowUpdated",
        "ResponseReceived",
        "DataReceived",
        "StreamEnded",
    ]
    client.send_headers(3, GET, end_stream=True)
    assert server.receive(client.data_to_send()) == [
        (m.CONTROL, 0, f.SETTINGS, False),
        (m.REQUEST, 3, GET, True),
    ]


def test_a_small_stream_window_applies_once_acknowledged() -> None:
    """Until the client acknowledges our SETTINGS it may use the default 65,535 per stream; then
    the streams already open shrink by the difference (RFC 9113 §6.9.2)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    server = m.ServerMachine(initial_window_size=1000)
    server.initiate()
    client.initiate_connection()
    client.send_headers(1, POST)
    server.receive(client.data_to_send())  # preface, SETTINGS, HEADERS before our SETTINGS arrived
    assert server.streams[1].window == 65535
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send())  # the client's SETTINGS ACK
    assert server.streams[1].window == 1000
    client.send_headers(3, POST)
    server.receive(client.data_to_send())
    assert server.streams[3].window == 1000


def test_respond_fast_path_and_its_fallback() -> None:
    pair = Pair()
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4})
    pair.to_server()
    pair.to_client()
    pair.client.send_headers(1, GET, end_stream=True)
    pair.client.send_headers(3, POST)
    pair.to_server()
    head = [(b":status", b"200")]
    assert not pair.server.respond(1, head, b"too long")  # over the stream window: nothing queued
    assert pair.server.data_to_send() == b"" and 1 in pair.server.streams
    assert pair.server.respond(1, head, b"ok")
    assert pair.server.respond(3, head, b"")  # before the request body ended: RST_STREAM NO_ERROR
    events = pair.to_client()
    assert kinds(events) == [
        "ResponseReceived",
        "DataReceived",
        "StreamEnded",
        "ResponseReceived",
        "DataReceived",  # an empty DATA frame carries END_STREAM
        "StreamEnded",
        "StreamReset",
    ]
    assert pair.server.streams == {}
